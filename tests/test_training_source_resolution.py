"""Test figures at the scans' own resolution: predictions resized back and scored against the original masks."""

import json

import numpy as np
import pytest
from data_helpers import labelled_squares, write_png_set

from tf_resattn.data import Preprocessing, SliceSet, load_slices
from tf_resattn.metrics import segmentation_report, segmentation_report_by_slice
from tf_resattn.training import cli
from tf_resattn.training.trainer import source_resolution_labels


def test_report_by_slice_of_mixed_sizes_counts_each_slice_once():
    small_true = np.zeros((4, 4), np.uint8)
    small_true[:2] = 1
    small_pred = np.zeros((4, 4), np.uint8)
    small_pred[:1] = 1  # 4 of the 8 class-1 pixels: Dice 2*4 / (8 + 4) = 2/3
    large_true = np.zeros((6, 8), np.uint8)
    large_true[:, :4] = 1
    large_true[0, 7] = 2
    large_pred = large_true.copy()  # perfect: Dice 1 for classes 1 and 2
    report = segmentation_report_by_slice([small_true, large_true], [small_pred, large_pred], 4)
    assert report["num_slices"] == 2
    assert report["dice"]["ground_glass"] == pytest.approx((2 / 3 + 1) / 2)
    assert report["dice"]["consolidation"] == pytest.approx(1.0)
    assert report["slices_with_class"] == {"ground_glass": 2, "consolidation": 1, "pleural_effusion": 0}


def test_report_by_slice_equals_the_stacked_report_for_one_size():
    rng = np.random.default_rng(4)
    y_true, y_pred = rng.integers(0, 4, (2, 3, 9, 7))
    assert segmentation_report_by_slice(list(y_true), list(y_pred), 4) == segmentation_report(y_true, y_pred, 4)
    with pytest.raises(ValueError, match="same number"):
        segmentation_report_by_slice([y_true[0]], [], 4)


def test_probabilities_are_resized_back_before_the_argmax():
    probabilities = np.zeros((1, 4, 4, 2), np.float32)
    probabilities[..., 0] = 1.0
    probabilities[0, :, 2:] = [0.0, 1.0]  # right half class 1 at the training size
    test = SliceSet(
        np.zeros((1, 4, 4, 1), np.float32),
        np.zeros((1, 4, 4), np.uint8),
        ["a"],
        Preprocessing(image_size=4),
        source_masks=[np.zeros((8, 12), np.uint8)],
    )
    (labels,) = source_resolution_labels(probabilities, test)
    assert labels.shape == (8, 12) and labels.dtype == np.uint8
    expected = np.zeros((8, 12), np.uint8)
    expected[:, 6:] = 1
    np.testing.assert_array_equal(labels, expected)


@pytest.fixture
def png_folder(tmp_path):
    images, masks = labelled_squares(8, 48, np.random.default_rng(0), square=12)
    return write_png_set(tmp_path / "data", list(np.round(images[..., 0] * 255).astype(np.uint8)), list(masks))


def test_loaded_slices_keep_their_original_masks(png_folder):
    slices = load_slices(png_folder, image_size=24)
    assert slices.masks.shape == (8, 24, 24)
    assert [m.shape for m in slices.source_masks] == [(48, 48)] * 8
    subset = slices.subset([5, 2])
    assert np.array_equal(subset.source_masks[0], slices.source_masks[5])


def test_fold_metrics_and_report_carry_both_resolutions(png_folder, tmp_path):
    out = tmp_path / "run"
    argv = [
        "--preset",
        "smoke",
        "--variants",
        "unet",
        "--data",
        str(png_folder),
        "--image-size",
        "24",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "unet" / "fold_0" / "metrics.json").read_text())
    predictions = np.load(out / "unet" / "fold_0" / "predictions.npz")
    assert predictions["y_pred"].shape[1:] == (24, 24)
    assert metrics["report"]["num_slices"] == metrics["report_source_resolution"]["num_slices"] == 4
    results = json.loads((out / "results.json").read_text())["variants"]["unet"]
    assert results["resolution"] == "source"
    assert results["folds"]["0"] == metrics["report_source_resolution"]
    assert results["folds_training_resolution"]["0"] == metrics["report"]
    report = (out / "results.md").read_text()
    assert "At the scans' own resolution (each test slice's prediction resized back" in report
    assert "At the training size (24x24, against the resized masks):" in report
