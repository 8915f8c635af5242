"""The synthetic default data set: deterministic, all four classes, plausible Hounsfield units."""

import dataclasses

import numpy as np
import pytest

from tf_resattn.data import DataError, Preprocessing, load_slices, synthetic_hu_slices, synthetic_slices


def test_deterministic_per_seed_and_stable_in_n():
    a, b = synthetic_slices(n=6, image_size=48, seed=3), synthetic_slices(n=6, image_size=48, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    other = synthetic_slices(n=6, image_size=48, seed=4)
    assert not np.array_equal(a.masks, other.masks)
    longer = synthetic_slices(n=8, image_size=48, seed=3)
    np.testing.assert_array_equal(longer.images[:6], a.images)


def test_default_set_has_all_classes_and_varies():
    slices = load_slices("synthetic")
    assert slices.images.shape == (40, 128, 128, 1) and slices.images.dtype == np.float32
    assert slices.masks.dtype == np.uint8 and slices.input_kind == "hu"
    assert 0.0 <= slices.images.min() and slices.images.max() <= 1.0
    present = [(slices.masks == k).any(axis=(1, 2)) for k in range(4)]
    assert all(p.any() for p in present)  # every class somewhere
    assert not all(p.all() for p in present[1:])  # but some slices lack some classes
    np.testing.assert_allclose(slices.spacing_mm, [[350 / 128, 350 / 128]] * 40)


def test_slices_keep_the_preprocessing_that_made_them():
    slices = synthetic_slices(n=4, image_size=48, hu_window=(-900, 300))
    assert slices.preprocessing == Preprocessing("hu", (-900, 300), 48)
    assert slices.subset([0, 2]).preprocessing == slices.preprocessing
    with pytest.raises(DataError, match="preprocessing resizes to"):
        dataclasses.replace(slices, preprocessing=Preprocessing("hu", (-900, 300), 32))


def test_hu_values_are_plausible_per_tissue():
    hu, masks = synthetic_hu_slices(n=20, image_size=96, seed=0)
    assert hu.dtype == np.float32 and masks.shape == (20, 96, 96)
    assert np.median(hu[:, 0, 0]) < -900  # air in the corner
    assert -700 < np.median(hu[masks == 1]) < -350  # ground glass
    assert -150 < np.median(hu[masks == 2]) < 80  # consolidation
    assert -40 < np.median(hu[masks == 3]) < 60  # effusion
    lung = (masks == 0) & (hu < -700)
    assert lung.mean() > 0.1 and np.median(hu[lung]) < -750  # aerated lung


def test_windowing_matches_the_raw_generator():
    hu, masks = synthetic_hu_slices(n=3, image_size=(40, 56), seed=2)
    slices = synthetic_slices(n=3, image_size=(40, 56), seed=2, hu_window=(-1200, 600))
    np.testing.assert_allclose(slices.images[..., 0], np.clip((hu + 1200) / 1800, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(slices.masks, masks)
