"""`cv_train.py` / `tf-resattn-cv`: flags into a configuration, the invoked name, one-line errors with status 2.

What a run computes is tested on `cross_validate` itself (`test_training_cross_validation.py`).
"""

import json

import pytest

from tf_resattn.training import cli
from tf_resattn.training.config import resolve_config
from tf_resattn.training.model_arguments import MODEL_KEYS


def run_cli(argv):
    """`cli.main(argv)` as a command line would see it: argparse errors become status 2 too."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


def test_every_model_argument_has_a_flag_that_reaches_the_configuration():
    args = cli.build_parser().parse_args(
        ["--norm", "batch", "--max-buckets", "128", "--attention-levels", "0,1", "--depth", "3"]
    )
    cfg = resolve_config("smoke", overrides=cli.settings_from_flags(args))
    assert (cfg.model["norm"], cfg.model["max_buckets"], cfg.model["attention_levels"], cfg.model["depth"]) == (
        "batch",
        128,
        [0, 1],
        3,
    )
    flags = {action.dest for action in cli.build_parser()._actions}
    assert set(MODEL_KEYS) <= flags


def test_help_names_the_command_as_invoked(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["/usr/local/bin/tf-resattn-cv"])
    assert run_cli(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: tf-resattn-cv ") and "--max-buckets" in help_text and "--norm" in help_text
    monkeypatch.setattr("sys.argv", ["scripts/cv_train.py"])
    assert run_cli(["--preset", "smoke", "--epochs", "0"]) == 2
    assert capsys.readouterr().err == "cv_train.py: error: epochs must be >= 1, got 0\n"


def _write(path, text):
    path.write_text(text)
    return path


BAD_INPUTS = {
    "unknown variant": (lambda t: ["--variants", "unet", "transformer"], "unknown variant 'transformer'"),
    "bad preset": (lambda t: ["--preset", "huge"], "invalid choice: 'huge'"),
    "unknown config key": (
        lambda t: ["--config", str(_write(t / "c.json", '{"epoch": 3}'))],
        "unknown setting(s) epoch",
    ),
    "unknown model key": (
        lambda t: ["--config", str(_write(t / "c.json", '{"model": {"dropout": 0.1}}'))],
        "unknown setting(s) dropout in the model mapping",
    ),
    "broken config": (lambda t: ["--config", str(_write(t / "c.yaml", "epochs: [1"))], "cannot parse config file"),
    "missing hparams": (lambda t: ["--hparams", str(t / "best_hparams.json")], "hparams file not found"),
    "bad norm": (lambda t: ["--norm", "instance"], "norm must be one of group, batch, got 'instance'"),
    "whole number": (lambda t: ["--max-buckets", "2.5"], "invalid int value: '2.5'"),
    "report of nothing": (lambda t: ["--report-only"], "--report-only needs --out"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    make_args, fragment = BAD_INPUTS[case]
    out = tmp_path / "run"
    argv = ["--preset", "smoke"] + make_args(tmp_path) + ([] if case == "report of nothing" else ["--out", str(out)])
    status = run_cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_a_model_mapping_in_a_config_file_reaches_the_run(tmp_path, capsys):
    config = _write(tmp_path / "c.json", json.dumps({"variants": ["unet"], "model": {"norm": "batch", "depth": 1}}))
    out = tmp_path / "run"
    assert (
        run_cli(
            [
                "--preset",
                "smoke",
                "--config",
                str(config),
                "--epochs",
                "1",
                "--no-figures",
                "--verbose",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "| Mean foreground Dice" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert (saved["model"]["norm"], saved["model"]["depth"], saved["variants"]) == ("batch", 1, ["unet"])
    assert run_cli(["--report-only", "--out", str(out)]) == 0
    assert "| Mean foreground Dice" in capsys.readouterr().out
