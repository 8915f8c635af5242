"""The data a run names and the groups its folds keep together: one rule for cv_train.py and tune.py."""

import dataclasses

import numpy as np
import pytest
from data_helpers import write_png_set
from tuning_helpers import TINY_SPACE, tiny_config

from tf_resattn.data import synthetic_slices
from tf_resattn.training.config import ConfigError, resolve_config
from tf_resattn.training.cross_validation import cross_validate
from tf_resattn.training.run_data import fold_groups, load_data
from tf_resattn.tuning.tune import tune


@pytest.mark.parametrize(
    "group_folds, given, expected",
    [
        ("auto", ["a", "a", "b"], ["a", "a", "b"]),
        ("auto", None, None),
        ("yes", ["a", "a", "b"], ["a", "a", "b"]),
        ("no", ["a", "a", "b"], None),
        ("no", None, None),
    ],
)
def test_fold_groups(group_folds, given, expected):
    cfg = resolve_config("smoke", overrides={"group_folds": group_folds})
    slices = dataclasses.replace(synthetic_slices(n=3, image_size=8), groups=given)
    assert fold_groups(cfg, slices) == expected


def test_group_folds_yes_without_groups_is_the_same_error_in_training_and_tuning(tmp_path):
    cfg = resolve_config("smoke", overrides={"group_folds": "yes"})
    with pytest.raises(ConfigError, match="--group-folds yes, but synthetic gives no groups") as direct:
        fold_groups(cfg, load_data(cfg))
    with pytest.raises(ConfigError) as training:
        cross_validate(cfg, tmp_path / "cv")
    with pytest.raises(ConfigError) as tuning:
        tune(tiny_config(group_folds="yes"), tmp_path / "search", variant="unet", space=TINY_SPACE)
    assert str(training.value) == str(tuning.value) == str(direct.value)
    assert not (tmp_path / "cv").exists() and not (tmp_path / "search").exists()


def test_load_data_keeps_the_preprocessing_it_applied():
    cfg = resolve_config("smoke", overrides={"hu_window": [-900.0, 300.0]})
    slices = load_data(cfg)
    assert slices.preprocessing.to_config() == {
        "input_kind": "hu",
        "hu_window": [-900.0, 300.0],
        "image_size": [32, 32],
        "source_window": None,
        "lung_crop": None,
        "lung_constraint": None,
    }


def test_source_window_is_recorded_for_8_bit_slices_and_refused_for_hu(tmp_path):
    images = np.full((3, 32, 32), 59, np.uint8)  # air at grey 59, soft tissue at 234: about the lung window
    images[:, 6:26, 6:26] = 234
    masks = np.zeros((3, 32, 32), np.uint8)
    masks[:, 10:14, 10:14] = 1
    folder = write_png_set(tmp_path / "png", images, masks)
    given = load_data(resolve_config("smoke", overrides={"data": str(folder), "source_window": ["-1350", "150"]}))
    assert given.preprocessing.source_window == (-1350.0, 150.0)
    estimated = load_data(resolve_config("smoke", overrides={"data": str(folder), "source_window": "auto"}))
    low, high = estimated.preprocessing.source_window
    assert abs(low - -1351.0) < 30 and abs(high - 165.0) < 30  # the line through (59, -1000 HU) and (234, 40 HU)
    with pytest.raises(ConfigError, match="source_window must be LOW HIGH"):
        resolve_config("smoke", overrides={"source_window": [150, -1350]})
    with pytest.raises(ConfigError, match="--source-window is for 8-bit slices"):
        load_data(resolve_config("smoke", overrides={"source_window": [-1350, 150]}))  # synthetic slices are HU
