"""`tune.py` / `tf-resattn-tune`: flags into a `tune` call, the invoked name, one-line errors and exit statuses.

What a search computes and refuses is tested on `tune` itself (`test_tuning_search.py`, `test_tuning_tune.py`).
"""

import pytest
from tuning_helpers import tiny_args, tiny_config

from tf_resattn.tuning import cli
from tf_resattn.tuning.tune import TuningResult


def run_cli(argv):
    """`cli.main(argv)` as a command line would see it: argparse errors become status 2 too."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture
def recorded_tune(monkeypatch):
    """Replaces the search by a recorder of its arguments; `raises` makes it raise that instead."""
    calls = []

    def fake_tune(config, out, **kwargs):
        calls.append((config, out, kwargs))
        if fake_tune.raises:
            raise fake_tune.raises
        kwargs["notify"]("a notice")
        return fake_tune.result

    fake_tune.raises, fake_tune.result = None, None
    monkeypatch.setattr(cli, "tune", fake_tune)
    return calls, fake_tune


def test_flags_become_the_configuration_and_the_arguments_of_tune(tmp_path, recorded_tune, capsys, monkeypatch):
    calls, fake_tune = recorded_tune
    fake_tune.result = TuningResult(
        out=tmp_path / "search",
        tuner_id="tuner3",
        worker=True,
        trials=[],
        best_hparams=None,
        best_trial=None,
        best_score=None,
        seconds=1.0,
    )
    monkeypatch.setattr("sys.argv", ["/opt/bin/tf-resattn-tune"])
    assert (
        run_cli(tiny_args(tmp_path, tmp_path / "search", "--tuner", "random", "--max-trials", "3", "--fold", "1")) == 0
    )
    ((config, out, kwargs),) = calls
    assert config == tiny_config() and out == str(tmp_path / "search")
    assert {k: kwargs[k] for k in ("variant", "tuner", "max_trials", "fold", "factor", "overwrite")} == {
        "variant": "unet",
        "tuner": "random",
        "max_trials": 3,
        "fold": 1,
        "factor": 3,
        "overwrite": False,
    }
    assert kwargs["space"] == str(tmp_path / "tiny_space.json")
    captured = capsys.readouterr()
    assert captured.err == "tf-resattn-tune: note: a notice\n"
    assert "worker tuner3: no trials left, done" in captured.out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--tuner", "grid"], "invalid choice: 'grid'"),
        (["--epochs", "0"], "epochs must be >= 1, got 0"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, extra, words, monkeypatch):
    monkeypatch.setattr("sys.argv", ["scripts/tune.py"])
    assert run_cli(tiny_args(tmp_path, tmp_path / "search") + extra) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tune.py: error: ") and words in err, err
    assert not (tmp_path / "search").exists()


def test_an_interrupted_search_exits_130_with_the_resume_hint(tmp_path, recorded_tune, capsys):
    _, fake_tune = recorded_tune
    fake_tune.raises = KeyboardInterrupt()
    assert run_cli(tiny_args(tmp_path, tmp_path / "search")) == 130
    assert "run the same command with the same --out to resume" in capsys.readouterr().err


def test_help_names_the_command_as_invoked(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["/opt/bin/tf-resattn-tune"])
    assert run_cli(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: tf-resattn-tune ")
