"""The data a run names and the groups its folds keep together: one rule for cv_train.py and tune.py."""

import dataclasses

import pytest

from tf_resattn.data import synthetic_slices
from tf_resattn.training.cli import main as cv_main
from tf_resattn.training.config import ConfigError, resolve_config
from tf_resattn.training.run_data import fold_groups, load_data
from tf_resattn.tuning.cli import main as tune_main
from tuning_helpers import tiny_args


@pytest.mark.parametrize("group_folds, given, expected", [
    ("auto", ["a", "a", "b"], ["a", "a", "b"]),
    ("auto", None, None),
    ("yes", ["a", "a", "b"], ["a", "a", "b"]),
    ("no", ["a", "a", "b"], None),
    ("no", None, None),
])
def test_fold_groups(group_folds, given, expected):
    cfg = resolve_config("smoke", overrides={"group_folds": group_folds})
    slices = dataclasses.replace(synthetic_slices(n=3, image_size=8), groups=given)
    assert fold_groups(cfg, slices) == expected


def test_group_folds_yes_without_groups_is_the_same_error_in_training_and_tuning(tmp_path, capsys):
    cfg = resolve_config("smoke", overrides={"group_folds": "yes"})
    with pytest.raises(ConfigError, match="--group-folds yes, but synthetic gives no groups"):
        fold_groups(cfg, load_data(cfg))

    assert cv_main(["--preset", "smoke", "--group-folds", "yes", "--out", str(tmp_path / "cv")]) == 2
    training = capsys.readouterr().err.strip()
    assert tune_main(tiny_args(tmp_path, tmp_path / "search", "--group-folds", "yes")) == 2
    tuning = capsys.readouterr().err.strip()
    assert training.startswith("cv_train.py: error: ") and tuning.startswith("tune.py: error: ")
    assert training.split(": error: ")[1] == tuning.split(": error: ")[1]
    assert "--group-folds yes" in training and len(training.splitlines()) == 1
    assert not (tmp_path / "cv").exists() and not (tmp_path / "search").exists()


def test_load_data_keeps_the_preprocessing_it_applied():
    cfg = resolve_config("smoke", overrides={"hu_window": [-900.0, 300.0]})
    slices = load_data(cfg)
    assert slices.preprocessing.to_config() == {"input_kind": "hu", "hu_window": [-900.0, 300.0], "image_size": [32, 32]}
