"""The synthetic default data set: deterministic, all four classes, plausible HU, lesions placed as in real CT."""

import dataclasses

import cv2
import nibabel
import numpy as np
import pytest
from conftest import REPO_ROOT

from tf_resattn.data import DataError, Preprocessing, load_slices, synthetic_hu_slices, synthetic_slices

RELEASE_SAMPLE = REPO_ROOT / "saved_models" / "resattn_medseg100" / "samples" / "sample_ct.nii.gz"


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


@pytest.mark.parametrize(
    "version, ground_glass, consolidation, effusion",
    [
        (1, (-700, -350), (-150, 80), (-40, 60)),
        (2, (-700, -300), (-100, 50), (0, 20)),  # inside each lesion (its edge blurs into the lung)
    ],
)
def test_hu_values_are_plausible_per_tissue(version, ground_glass, consolidation, effusion):
    hu, masks = synthetic_hu_slices(n=20, image_size=96, seed=0, version=version)
    assert hu.dtype == np.float32 and masks.shape == (20, 96, 96)
    assert np.median(hu[:, 0, 0]) < -900  # air in the corner
    for label, (low, high) in zip((1, 2, 3), (ground_glass, consolidation, effusion)):
        assert low < np.median(hu[_interior(masks, label)]) < high, label
    lung = (masks == 0) & (hu < -700)
    assert lung.mean() > 0.1 and np.median(hu[lung]) < -750  # aerated lung


@pytest.mark.parametrize("version", [1, 2])
def test_windowing_matches_the_raw_generator(version):
    hu, masks = synthetic_hu_slices(n=3, image_size=(40, 56), seed=2, version=version)
    slices = synthetic_slices(n=3, image_size=(40, 56), seed=2, hu_window=(-1200, 600), version=version)
    np.testing.assert_allclose(slices.images[..., 0], np.clip((hu + 1200) / 1800, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(slices.masks, masks)


def test_the_training_set_is_version_2_and_the_raw_default_is_version_1():
    assert "version=2" in synthetic_slices(n=2, image_size=32).source
    default, first = synthetic_hu_slices(n=2, image_size=32), synthetic_hu_slices(n=2, image_size=32, version=1)
    np.testing.assert_array_equal(default[0], first[0])
    assert not np.array_equal(default[1], synthetic_hu_slices(n=2, image_size=32, version=2)[1])
    with pytest.raises(ValueError, match="version must be one of 1, 2, got 3"):
        synthetic_hu_slices(n=2, image_size=32, version=3)


def test_version_1_still_draws_the_released_sample():
    """`release_samples()` takes the default generator; its stored volume must stay what it was."""
    hu, _ = synthetic_hu_slices(n=3, image_size=(160, 144), seed=11)
    stored = np.asanyarray(nibabel.load(str(RELEASE_SAMPLE)).dataobj)  # data[x, y, z] = slice z transposed
    np.testing.assert_array_equal(np.transpose(stored, (2, 1, 0)), np.round(hu).astype(np.int16))


def test_version_2_places_effusion_between_the_lung_and_the_posterior_wall():
    hu, masks = synthetic_hu_slices(n=20, image_size=96, seed=0, version=2)
    effusion = masks == 3
    assert 0.4 < effusion.any(axis=(1, 2)).mean() < 1.0  # most slices, not all
    rows = np.nonzero(effusion)[1]
    assert rows.min() > 0.45 * 96  # dependent: the posterior half
    above, below = [], []
    for slice_hu, slice_labels, fluid in zip(hu, masks, effusion):
        for col in np.nonzero(fluid.any(axis=0))[0]:
            top, bottom = np.nonzero(fluid[:, col])[0][[0, -1]]
            above.append(slice_labels[top - 1, col] in (1, 2) or slice_hu[top - 1, col] < -300)  # lung or a lesion
            below.append(slice_labels[bottom + 1, col] == 0 and slice_hu[bottom + 1, col] > -300)  # the wall
    assert np.mean(above) > 0.95 and np.mean(below) > 0.95


def test_version_2_consolidation_is_mostly_posterior_with_air_bronchograms():
    for version, posterior in ((1, (0.0, 0.5)), (2, (0.6, 1.0))):
        hu, masks = synthetic_hu_slices(n=20, image_size=128, seed=0, version=version)
        rows = np.nonzero(masks == 2)[1]
        assert posterior[0] < (rows >= 64).mean() < posterior[1], version
    with_air = [slice_hu[inside].min() < -400 for slice_hu, inside in zip(hu, _interior(masks, 2)) if inside.any()]
    assert 0.3 < np.mean(with_air) < 0.9  # lines of air inside the dense patches of some slices, not all


def test_version_2_ground_glass_is_hazy_with_vessels_showing_through():
    hu, masks = synthetic_hu_slices(n=20, image_size=128, seed=0, version=2)
    ground_glass = hu[_interior(masks, 1)]
    assert np.median(ground_glass) < -300 and np.percentile(ground_glass, 99.5) > -150  # vessels inside
    edge = (masks == 1) & ~_interior(masks, 1)
    assert np.median(hu[edge]) < np.median(ground_glass) - 50  # the density fades out at the edge


def _interior(masks, label):
    """`[n, h, w]` bool: the pixels of `label` whose 3x3 neighbourhood is all `label` (away from blurred edges)."""
    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.erode((m == label).astype(np.uint8), kernel).astype(bool) for m in masks])
