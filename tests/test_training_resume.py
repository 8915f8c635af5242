"""Resume after `kill -9`: the same command continues and, with --deterministic, ends with the same metrics."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def command(out, variant, epochs):
    return [
        sys.executable,
        str(REPO / "scripts" / "cv_train.py"),
        "--preset",
        "smoke",
        "--variants",
        variant,
        "--folds",
        "0",
        "--epochs",
        str(epochs),
        "--deterministic",
        "--verbose",
        "2",
        "--out",
        str(out),
    ]


def run_to_end(out, variant, epochs):
    done = subprocess.run(command(out, variant, epochs), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def kill_after_first_epoch(out, variant, epochs):
    """Starts the run and SIGKILLs it as soon as one epoch is checkpointed (before the last)."""
    state = out / variant / "fold_0" / "checkpoint" / "state.json"
    process = subprocess.Popen(
        command(out, variant, epochs), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return json.loads(state.read_text())["epoch"]


def history(out, variant):
    with open(out / variant / "fold_0" / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def report(out, variant):
    return json.loads((out / variant / "fold_0" / "metrics.json").read_text())["report"]


def check_resume(tmp_path, variant, epochs):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_to_end(reference, variant, epochs)
    killed_at = kill_after_first_epoch(resumed, variant, epochs)
    assert 1 <= killed_at < epochs
    assert not (resumed / variant / "fold_0" / "metrics.json").exists()
    output = run_to_end(resumed, variant, epochs).stdout
    assert f"Epoch {killed_at + 1}/{epochs}" in output and "Epoch 1/" not in output  # continued, not restarted
    assert [row["epoch"] for row in history(resumed, variant)] == [str(e) for e in range(1, epochs + 1)]
    assert history(resumed, variant) == history(reference, variant)
    assert report(resumed, variant) == report(reference, variant)


@pytest.mark.slow  # three command-line runs in fresh processes, one of them killed (about 35 s)
def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    check_resume(tmp_path, "unet", epochs=4)


@pytest.mark.slow
def test_killed_run_with_lsh_attention_resumes_to_the_same_metrics(tmp_path):
    check_resume(tmp_path, "resattn", epochs=4)
