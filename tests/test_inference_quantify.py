"""Quantification against hand-made masks with known areas, and the lung field on synthetic and real slices."""

import cv2
import numpy as np
import pytest

from tf_resattn.data import synthetic_hu_slices
from tf_resattn.inference.lung_field import (
    constrain_to_lung_field,
    lung_field,
    lung_field_slice,
    truth_inside_lung_field,
)
from tf_resattn.inference.quantify import format_table, quantify


@pytest.fixture
def hand_made():
    """Two 100x100 slices: ground glass 10x20 + 5x5, consolidation 4x6, effusion 3x3; the lung field a 50x60 box per slice."""
    labels = np.zeros((2, 100, 100), np.uint8)
    labels[0, 10:20, 10:30] = 1
    labels[1, 50:55, 50:55] = 1
    labels[0, 40:44, 40:46] = 2
    labels[1, 0:3, 0:3] = 3  # outside the lung field: does not count towards the burden
    lung = np.zeros_like(labels, dtype=bool)
    lung[:, 5:55, 5:65] = True
    return labels, lung


def test_areas_in_mm2_from_pixel_spacing(hand_made):
    labels, lung = hand_made
    q = quantify(labels, lung, 4, spacing_mm=(0.5, 0.8))
    assert q["unit"] == "mm^2"
    assert q["classes"]["ground_glass"] == {"pixels": 225, "amount": pytest.approx(225 * 0.4)}
    assert q["classes"]["consolidation"] == {"pixels": 24, "amount": pytest.approx(24 * 0.4)}
    assert q["classes"]["pleural_effusion"]["pixels"] == 9
    assert q["classes"]["background"]["pixels"] == 20000 - 225 - 24 - 9
    assert q["infection"]["pixels"] == 258
    assert q["lung_field"]["amount"] == pytest.approx(2 * 50 * 60 * 0.4)
    assert q["infection_burden_percent"] == pytest.approx(100 * (225 + 24) / 6000)
    assert "note" not in q


def test_volumes_in_ml_with_slice_distance(hand_made):
    labels, lung = hand_made
    q = quantify(labels, lung, 4, spacing_mm=(0.5, 0.8), thickness_mm=5.0)
    assert q["unit"] == "mL"
    assert q["classes"]["ground_glass"]["amount"] == pytest.approx(225 * 0.5 * 0.8 * 5.0 / 1000)


def test_pixels_when_spacing_unknown_and_said_so(hand_made):
    labels, lung = hand_made
    q = quantify(labels, lung, 4)
    assert q["unit"] == "pixels" and q["classes"]["ground_glass"]["amount"] == 225
    assert "no pixel spacing" in q["note"]


def test_empty_lung_field_has_no_burden(hand_made):
    labels, _ = hand_made
    assert quantify(labels, np.zeros_like(labels, dtype=bool), 4)["infection_burden_percent"] is None


def test_table_has_a_row_per_scan(hand_made):
    labels, lung = hand_made
    table = format_table([("a", quantify(labels, lung, 4)), ("b", quantify(labels, lung, 4, (1.0, 1.0)))])
    lines = table.splitlines()
    assert len(lines) == 3 and "burden_%" in lines[0] and "consolidation" in lines[0]
    assert lines[1].split()[:2] == ["a", "pixels"] and lines[2].split()[:2] == ["b", "mm^2"]


def test_hu_lung_field_covers_synthetic_lungs():
    """Synthetic CT: the field from the image alone holds nearly all labelled infection and little else."""
    hu, masks = synthetic_hu_slices(n=6, image_size=128, seed=4)
    field = lung_field(hu, "hu")
    infection = masks > 0
    assert (field & infection).sum() / infection.sum() >= 0.8  # 0.85 measured: edge consolidation is added from the labels
    assert 0.05 <= field.mean() <= 0.6
    with_labels = lung_field(hu, "hu", masks)
    assert np.all(with_labels[infection])


def test_lung_field_drops_outside_air():
    """A bright body with two dark lungs on dark air: the field is the two lungs only."""
    hu = np.full((100, 100), -1000.0, np.float32)
    hu[10:90, 5:95] = 40.0
    hu[25:75, 15:45] = -850.0
    hu[25:75, 55:85] = -850.0
    field = lung_field_slice(hu, "hu")
    assert field.sum() == 2 * 50 * 30
    assert field[50, 30] and field[50, 70] and not field[2, 2] and not field[50, 50]


@pytest.fixture
def two_lungs():
    """One 100x100 HU slice: dark air, a bright body (rows 10-89), two dark lungs of 50x30 pixels."""
    hu = np.full((1, 100, 100), -1000.0, np.float32)
    hu[0, 10:90, 5:95] = 40.0
    hu[0, 25:75, 15:45] = -850.0
    hu[0, 25:75, 55:85] = -850.0
    return hu


def test_constraint_clears_labels_outside_the_grown_field_only(two_lungs):
    labels = np.zeros((1, 100, 100), np.uint8)
    labels[0, 40:50, 20:30] = 1  # inside the left lung
    labels[0, 40:50, 45:47] = 2  # in the body, 0-1 pixels right of the left lung
    labels[0, 78:81, 20:40] = 3  # in the body, 4-6 pixels below the left lung
    labels[0, 0:5, 0:5] = 2  # air outside the body
    kept = constrain_to_lung_field(two_lungs, labels, "hu", margin=0)
    assert kept.dtype == labels.dtype
    np.testing.assert_array_equal(kept, np.where(lung_field(two_lungs, "hu"), labels, 0))
    assert (kept == 1).sum() == 100 and not (kept >= 2).any()
    grown = constrain_to_lung_field(two_lungs, labels, "hu", margin=2)
    assert (grown == 1).sum() == 100 and (grown == 2).sum() == 20 and not (grown == 3).any()
    assert (constrain_to_lung_field(two_lungs, labels, "hu", margin=5) == 3).sum() == 40  # rows 78-79
    wide = constrain_to_lung_field(two_lungs, labels, "hu", margin=10)
    np.testing.assert_array_equal(wide[0, 10:], labels[0, 10:])  # everything in the body kept
    assert not wide[0, :5, :5].any()


def test_truth_inside_field_shares_per_class(two_lungs):
    masks = np.zeros((1, 100, 100), np.uint8)
    masks[0, 40:50, 20:30] = 1  # 100 pixels inside
    masks[0, 70:80, 20:30] = 2  # 50 inside (rows 70-74), 50 below the lung
    shares = truth_inside_lung_field(two_lungs, masks, "hu", 0, 4)
    assert shares == {"ground_glass": 1.0, "consolidation": 0.5, "infection": pytest.approx(150 / 200),
                      "area": pytest.approx(3000 / 10000)}
    assert truth_inside_lung_field(two_lungs, masks, "hu", 3, 4)["consolidation"] == pytest.approx(0.8)  # rows 75-77


def test_8bit_lung_field_covers_labelled_infection_on_real_slices(medseg100_dir):
    infected = covered = 0
    fractions = []
    for mask_file in sorted((medseg100_dir / "masks").glob("mask_*.png")):
        mask = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
        image = cv2.imread(str(medseg100_dir / "images" / mask_file.name.replace("mask_", "img_")), cv2.IMREAD_GRAYSCALE)
        field = lung_field_slice(image, "uint8")
        infected += int((mask > 0).sum())
        covered += int(((mask > 0) & field).sum())
        fractions.append(field.mean())
        assert np.all(lung_field_slice(image, "uint8", mask > 0)[mask > 0])
    assert covered / infected >= 0.7  # from the image alone; the predicted infection is added at inference
    assert 0.01 <= np.median(fractions) <= 0.6
