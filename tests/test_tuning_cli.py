"""tune.py's refusals: one line on stderr, exit status 2, nothing written."""

import pytest

from tf_resattn.tuning.cli import main
from tuning_helpers import free_port, tiny_args


def run_refused(args, capsys):
    """Runs `main(args)` expecting status 2; returns the single stderr line."""
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse refusals
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("extra, space_text, words", [
    (["--tuner", "grid"], None, "invalid choice: 'grid'"),
    (["--tuner", "hyperband", "--max-trials", "3"], None, "--max-trials is for --tuner random or bayesian"),
    (["--tuner", "random", "--max-trials", "0"], None, "--max-trials must be >= 1"),
    ([], "{}", "is empty"),
    ([], '{"depth": {"values": []}}', "depth: empty search space"),
    ([], '{"depth": {"values": [2, 3]}, "attention_levels": {"values": ["2"]}}', "contradictory search space"),
    ([], '{"learning_rate": {"min": 0.1, "max": 0.01}}', "contradictory range"),
    (["--fold", "5"], None, "--folds 5: fold numbers run from 0 to 1"),
    (["--data", "/nonexistent/ct"], None, "/nonexistent/ct"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, extra, space_text, words):
    out = tmp_path / "search"
    args = tiny_args(tmp_path, out) + extra
    if space_text is not None:
        (tmp_path / "space.json").write_text(space_text)
        args += ["--space", str(tmp_path / "space.json")]
    assert words in run_refused(args, capsys)
    assert not out.exists()


def test_unreachable_chief_gives_up_after_the_timeout(tmp_path, capsys, monkeypatch):
    port = free_port()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    err = run_refused(tiny_args(tmp_path, tmp_path / "search", "--chief-timeout", "1.5"), capsys)
    assert f"cannot reach the tuning chief at 127.0.0.1:{port} within 1.5 s" in err
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT")
    assert "KERASTUNER_ORACLE_PORT" in run_refused(tiny_args(tmp_path, tmp_path / "search"), capsys)
    assert not (tmp_path / "search").exists()


def test_splits_of_other_data_are_refused(tmp_path, capsys):
    other = tmp_path / "other_splits.json"
    other.write_text('{"n_folds": 2, "seed": 0, "grouped": false, "names": ["a", "b"], "folds": []}')
    err = run_refused(tiny_args(tmp_path, tmp_path / "search", "--splits", str(other)), capsys)
    assert "was made for other slices" in err and not (tmp_path / "search").exists()
    err = run_refused(tiny_args(tmp_path, tmp_path / "search", "--splits", str(tmp_path / "missing.json")), capsys)
    assert "--splits file not found" in err
