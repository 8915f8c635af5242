"""The tf.data pipeline: batches, offline 6x, online and upright random transforms that keep image and mask aligned."""

import cv2
import numpy as np
import pytest
from data_helpers import labelled_squares

from tf_resattn.data import DataError, augment_offline, pipeline
from tf_resattn.data.pipeline import make_dataset

VALUES = (0.25, 0.5, 0.75)


def _squares(n=6, size=32, seed=0):
    return labelled_squares(n, size, np.random.default_rng(seed), values=VALUES, square=8)


def _collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _symmetries(array):
    """The 8 rotations/flips of a `[H, W, ...]` array."""
    turns = [np.rot90(array, k, axes=(0, 1)) for k in range(4)]
    return turns + [np.fliplr(t) for t in turns]


def test_none_gives_the_slices_in_batches_with_int32_masks():
    images, masks = _squares(5)
    dataset = make_dataset(images, masks, 2)
    x, y = next(iter(dataset))
    assert x.shape == (2, 32, 32, 1) and x.dtype.name == "float32"
    assert y.shape == (2, 32, 32) and y.dtype.name == "int32"
    out_images, out_masks = _collect(dataset)
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_masks, masks)


def test_offline_gives_the_six_fold_set():
    images, masks = _squares(3)
    out_images, out_masks = _collect(make_dataset(images, masks, 4, augment="offline"))
    expected_images, expected_masks = augment_offline(images, masks)
    np.testing.assert_array_equal(out_images, expected_images)
    np.testing.assert_array_equal(out_masks, expected_masks)


def test_online_rotations_and_flips_move_image_and_mask_together(monkeypatch):
    monkeypatch.setattr(pipeline, "ONLINE_SCALE_PROBABILITY", 0.0)
    images, masks = _squares(8)
    out_images, out_masks = _collect(make_dataset(images, masks, 4, augment="online", seed=3))
    used = set()
    for i in range(len(images)):
        matches = [
            k
            for k, (im, m) in enumerate(zip(_symmetries(images[i]), _symmetries(masks[i])))
            if np.array_equal(out_images[i], im) and np.array_equal(out_masks[i], m)
        ]
        assert matches, f"slice {i} is not one rotation/flip applied to both image and mask"
        used.add(matches[0])
    assert len(used) > 1  # the transform is random


def test_online_scaling_keeps_alignment():
    images, masks = _squares(12, size=48)
    out_images, out_masks = _collect(make_dataset(images, masks, 6, augment="online", seed=1))
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    assert set(np.unique(out_masks)) <= {0, 1, 2, 3}
    exact = [any(np.array_equal(out_images[i], s) for s in _symmetries(images[i])) for i in range(12)]
    assert not all(exact)  # some slices were zoomed
    for label, value in enumerate(VALUES, start=1):
        on_label = out_images[..., 0][out_masks == label]
        assert np.mean(np.abs(on_label - value) < 0.05) > 0.7
        assert abs(np.median(on_label) - value) < 1e-3


def test_online_is_seeded_and_changes_every_epoch():
    images, masks = _squares(6)
    first = make_dataset(images, masks, 6, augment="online", shuffle=True, seed=5)
    again = make_dataset(images, masks, 6, augment="online", shuffle=True, seed=5)
    epoch_1, epoch_2 = _collect(first)[0], _collect(first)[0]
    np.testing.assert_array_equal(epoch_1, _collect(again)[0])
    assert not np.array_equal(epoch_1, epoch_2)


def test_upright_without_rotation_or_zoom_only_mirrors(monkeypatch):
    monkeypatch.setattr(pipeline, "ONLINE_SCALE_PROBABILITY", 0.0)
    monkeypatch.setattr(pipeline, "UPRIGHT_MAX_DEGREES", 0.0)
    images, masks = _squares(8)
    out_images, out_masks = _collect(make_dataset(images, masks, 4, augment="upright", seed=3))
    mirrored = []
    for i in range(len(images)):
        same = np.array_equal(out_images[i], images[i]) and np.array_equal(out_masks[i], masks[i])
        flipped = np.array_equal(out_images[i], np.fliplr(images[i])) and np.array_equal(
            out_masks[i], np.fliplr(masks[i])
        )
        assert same or flipped, f"slice {i} is neither itself nor its mirror image"
        mirrored.append(flipped)
    assert 0 < sum(mirrored) < len(images)  # the flip is random


def test_upright_keeps_front_at_the_front_and_masks_aligned():
    size = 48
    images = np.zeros((16, size, size, 1), np.float32)
    masks = np.zeros((16, size, size), np.uint8)
    images[:, 4:12, 14:34], masks[:, 4:12, 14:34] = 0.5, 1  # a bar along the top edge (the patient's front)
    images[:, 30:40, 18:30], masks[:, 30:40, 18:30] = 0.75, 2
    out_images, out_masks = _collect(make_dataset(images, masks, 8, augment="upright", seed=2))
    assert set(np.unique(out_masks)) <= {0, 1, 2}
    rows = np.arange(size)[None, :, None]
    for i in range(len(images)):
        front_row = (rows * (out_masks[i : i + 1] == 1)).sum() / max(1, (out_masks[i] == 1).sum())
        assert front_row < size / 2, f"slice {i}: the front bar moved to the lower half (row {front_row:.1f})"
    for label, value in ((1, 0.5), (2, 0.75)):
        on_label = out_images[..., 0][out_masks == label]
        assert np.mean(np.abs(on_label - value) < 0.05) > 0.7
    assert not all(np.array_equal(out_images[i], images[i]) for i in range(len(images)))


def test_rotation_about_the_centre_matches_opencv():
    yy, xx = np.mgrid[0:40, 0:52].astype(np.float32)
    image = (np.sin(yy / 5) * np.cos(xx / 7) * 0.5 + 0.5)[..., None]
    turned = pipeline.rotate_about_centre(image, np.float32(np.deg2rad(12.0)), "BILINEAR").numpy()[..., 0]
    matrix = cv2.getRotationMatrix2D(((52 - 1) / 2, (40 - 1) / 2), 12.0, 1.0)
    reference = cv2.warpAffine(image[..., 0], matrix, (52, 40), flags=cv2.INTER_LINEAR, borderValue=0.0)
    inside = np.zeros_like(reference, bool)
    inside[8:-8, 8:-8] = True
    np.testing.assert_allclose(turned[inside], reference[inside], atol=1e-2)


def test_bad_arguments_are_refused():
    images, masks = _squares(2)
    with pytest.raises(ValueError, match="augment must be one of"):
        make_dataset(images, masks, 2, augment="random")
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(images, masks, 0)
    with pytest.raises(DataError, match="same N, H, W"):
        make_dataset(images, masks[:1], 2)
