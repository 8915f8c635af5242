"""Quantification against hand-made masks with known areas, and the lung field on synthetic and real slices."""

import cv2
import numpy as np
import pytest

from tf_resattn.data import synthetic_hu_slices
from tf_resattn.inference.lung_field import lung_field, lung_field_slice
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
    assert (
        field & infection
    ).sum() / infection.sum() >= 0.8  # 0.85 measured: edge consolidation is added from the labels
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


def test_8bit_lung_field_covers_labelled_infection_on_real_slices(medseg100_dir):
    infected = covered = 0
    fractions = []
    for mask_file in sorted((medseg100_dir / "masks").glob("mask_*.png")):
        mask = cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE)
        image = cv2.imread(
            str(medseg100_dir / "images" / mask_file.name.replace("mask_", "img_")), cv2.IMREAD_GRAYSCALE
        )
        field = lung_field_slice(image, "uint8")
        infected += int((mask > 0).sum())
        covered += int(((mask > 0) & field).sum())
        fractions.append(field.mean())
        assert np.all(lung_field_slice(image, "uint8", mask > 0)[mask > 0])
    assert covered / infected >= 0.7  # from the image alone; the predicted infection is added at inference
    assert 0.01 <= np.median(fractions) <= 0.6
