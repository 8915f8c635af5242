"""Issue cases 1, 4 and the output paths of 7: `--overwrite` never costs the user a file, one run per output, one-line refusals."""

import os
import pathlib
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from hostile_helpers import leftovers, run_predict, snapshot, tiny_model

from tf_resattn.inference import output_folder as output_folder_module
from tf_resattn.inference.model_files import ExportError
from tf_resattn.inference.output_folder import MARKER, output_folder

LOCK_MODULE = pathlib.Path(output_folder_module.__file__).with_name("output_lock.py")


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"), "uint8")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """`tmp_path` as the current and home folder, holding `scans/` (two PNG slices), `notes/` and `file.txt`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "scans").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / "scans" / f"{name}.png"), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("the user's own work")
    (tmp_path / "notes" / "sub").mkdir()
    (tmp_path / "file.txt").write_text("a file, not a folder")
    return tmp_path


# (case, --input, --out, --overwrite, expected line, the paths that must come out byte for byte)
REFUSED = [
    ("out_is_input", "scans", "scans", True, "is the input", ["scans"]),
    ("out_holds_input", "scans/a.png", "scans", True, "holds the input", ["scans"]),
    ("out_inside_input", "scans", "scans/pred", False, "lies inside the input", ["scans"]),
    ("parent_by_dotdot", "scans", "notes/sub/..", True, "not written by tf_resattn", ["notes"]),
    ("existing_file", "scans", "file.txt", True, "is an existing file", ["file.txt"]),
    ("foreign_folder", "scans", "notes", True, "not written by tf_resattn", ["notes"]),
    ("foreign_folder_without_overwrite", "scans", "notes", False, "already exists", ["notes"]),
    ("dot", "scans", ".", True, "current folder", ["scans", "notes"]),
    ("dotdot", "scans", "..", True, "current folder or holds it", ["scans", "notes"]),
    ("home", "scans", "~", True, "home folder", ["home"]),
    ("root", "scans", "/", True, "filesystem root", ["scans"]),
]


@pytest.mark.parametrize("case, source, out, overwrite, expected, kept", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_outputs_leave_every_file_as_it_was(
    case, source, out, overwrite, expected, kept, workspace, grey_model, capsys
):
    (workspace / "home" / "mine.txt").write_text("the user's home")
    before = {path: snapshot(workspace / path) for path in kept}
    out = os.path.expanduser(out)
    argv = ["--model", grey_model, "--input", source, "--out", out, "--quiet"] + (["--overwrite"] if overwrite else [])
    status, stdout, stderr = run_predict(argv, capsys)
    assert status == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr
    assert {path: snapshot(workspace / path) for path in kept} == before
    assert not list(workspace.rglob(".*.partial")) and not list(workspace.rglob(".*.lock"))


def test_overwrite_replaces_only_an_earlier_result(workspace, grey_model, capsys):
    argv = ["--model", grey_model, "--input", "scans", "--out", "pred", "--quiet"]
    assert run_predict(argv, capsys)[0] == 0
    assert (workspace / "pred" / MARKER).is_file() and (workspace / "pred" / "labels" / "a.png").is_file()
    (workspace / "pred" / "stale.txt").write_text("from the earlier run's folder")
    assert run_predict(argv + ["--overwrite"], capsys)[0] == 0
    assert not (workspace / "pred" / "stale.txt").exists() and (workspace / "pred" / "report.json").is_file()
    assert leftovers(workspace, "pred") == []


def test_a_failed_run_leaves_the_old_result_byte_for_byte(tmp_path):
    out = tmp_path / "pred"
    with output_folder(out, overwrite=False) as partial:
        (partial / "report.json").write_text("old")
    before = snapshot(out)
    with pytest.raises(RuntimeError), output_folder(out, overwrite=True) as partial:
        (partial / "report.json").write_text("new, unfinished")
        raise RuntimeError("the run dies here")
    assert snapshot(out) == before and leftovers(tmp_path, "pred") == []


@pytest.mark.parametrize("in_one_step", [True, False], ids=["exchange", "two_renames"])
def test_the_new_folder_takes_the_old_ones_place(in_one_step, tmp_path, monkeypatch):
    from tf_resattn.inference import folder_swap

    if not in_one_step:
        monkeypatch.setattr(folder_swap, "exchange", lambda new, old: False)
    out = tmp_path / "pred"
    for text in ("old", "new"):
        with output_folder(out, overwrite=True) as partial:
            (partial / "report.json").write_text(text)
    assert (out / "report.json").read_text() == "new" and leftovers(tmp_path, "pred") == []


def test_exchange_swaps_two_folders_in_one_call(tmp_path):
    from tf_resattn.inference.folder_swap import exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "from_a").write_text("")
    if not exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here; the two-rename path is tested above")
    assert (tmp_path / "b" / "from_a").is_file() and not (tmp_path / "a" / "from_a").exists()


def deny_writes(monkeypatch, folder):
    """Makes `folder` read-only: by its mode, and (as root ignores modes) by what `os.access` reports for it."""
    folder.chmod(0o555)
    monkeypatch.setattr(
        output_folder_module.os, "access", lambda path, mode: os.path.realpath(path) != str(folder.resolve())
    )
    return folder


def test_an_output_that_cannot_be_deleted_is_refused_before_the_run(workspace, grey_model, capsys, monkeypatch):
    argv = ["--model", grey_model, "--input", "scans", "--out", "pred", "--quiet"]
    assert run_predict(argv, capsys)[0] == 0
    before = snapshot(workspace / "pred")
    deny_writes(monkeypatch, workspace / "pred" / "labels")
    try:
        status, _, stderr = run_predict(argv + ["--overwrite"], capsys)
    finally:
        (workspace / "pred" / "labels").chmod(0o755)
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and "is read-only" in stderr, stderr
    assert snapshot(workspace / "pred") == before and leftovers(workspace, "pred") == []


def test_a_read_only_parent_is_one_line(workspace, grey_model, capsys, monkeypatch):
    from tf_resattn.inference import output_lock

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    (workspace / "locked").mkdir(mode=0o555)
    if os.access(workspace / "locked", os.W_OK):  # root writes anywhere: the folder refuses as a read-only one would
        monkeypatch.setattr(output_lock, "_acquire", refuse)
    status, _, stderr = run_predict(["--model", grey_model, "--input", "scans", "--out", "locked/pred"], capsys)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "cannot write in folder" in stderr and "Permission denied" in stderr
    assert list((workspace / "locked").iterdir()) == []


HOLD_LOCK = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("output_lock", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
with module.output_lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(60)
"""


def hold_lock_in_another_process(out):
    """A second Python process (without TensorFlow) that holds `out`'s lock until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(LOCK_MODULE), str(out)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_run_fails_at_once_naming_the_first_and_a_killed_runs_lock_is_taken_over(
    workspace, grey_model, capsys
):
    from tf_resattn.inference.output_lock import OutputLocked, lock_path, output_lock

    out = workspace / "pred"
    first = hold_lock_in_another_process(out)
    try:
        with pytest.raises(OutputLocked) as locked:
            with output_lock(out):
                pass
        assert locked.value.pid == first.pid
        status, _, stderr = run_predict(["--model", grey_model, "--input", "scans", "--out", out, "--quiet"], capsys)
        assert status == 2 and len(stderr.strip().splitlines()) == 1 and f"pid {first.pid}" in stderr, stderr
        assert not out.exists() and lock_path(out).read_text().strip() == str(first.pid)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert lock_path(out).read_text().strip() == str(first.pid)  # the killed run's lock file stays behind ...
    status, _, stderr = run_predict(["--model", grey_model, "--input", "scans", "--out", out, "--quiet"], capsys)
    assert status == 0, stderr  # ... and is taken over
    assert (out / "report.json").is_file() and leftovers(workspace, "pred") == []


@pytest.mark.slow  # a second Python process loads TensorFlow and a model (about 10 s)
def test_a_real_predict_run_holds_its_output_until_done(workspace, grey_model, capsys):
    from tf_resattn.inference.output_lock import lock_path

    volume = workspace / "many"
    volume.mkdir()
    rng = np.random.default_rng(1)
    for k in range(300):
        cv2.imwrite(str(volume / f"s{k:03d}.png"), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    out = workspace / "pred"
    predict = "import sys; from tf_resattn.inference.predict_cli import main; sys.exit(main(sys.argv[1:]))"
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            predict,
            "--model",
            str(grey_model),
            "--input",
            str(volume),
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not lock_path(out).is_file() or not lock_path(out).read_text().strip():
        assert first.poll() is None, first.stderr.read()
    status, _, stderr = run_predict(["--model", grey_model, "--input", "scans", "--out", out, "--quiet"], capsys)
    assert status == 2 and f"pid {first.pid}" in stderr, stderr
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert len(list((out / "labels").iterdir())) == 300 and not list(workspace.glob(".pred.*"))


def test_output_folder_refusals_are_export_errors(tmp_path):
    (tmp_path / "input").mkdir()
    with (
        pytest.raises(ExportError, match="holds the input"),
        output_folder(tmp_path, overwrite=True, protected=[tmp_path / "input"]),
    ):
        pass
