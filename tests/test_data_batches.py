"""`make_batches` / `ArrayBatches`: every slice once per epoch, seeded reshuffling, the 6x set, the TensorFlow dispatch."""

import numpy as np
import pytest
import tensorflow as tf

from tf_resattn.data import augment_offline
from tf_resattn.data.batches import ArrayBatches, make_batches


def _slices(n=10, size=8):
    rng = np.random.default_rng(0)
    images = rng.random((n, size, size, 1), dtype=np.float32)
    masks = rng.integers(0, 4, (n, size, size)).astype(np.uint8)
    return images, masks


def _epoch(batches):
    parts = [batches[i] for i in range(len(batches))]
    batches.on_epoch_end()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_every_slice_once_per_epoch_with_its_own_mask():
    images, masks = _slices()
    batches = ArrayBatches(images, masks, 4, shuffle=True, seed=3)
    assert len(batches) == 3
    for _ in range(2):
        got_images, got_masks = _epoch(batches)
        assert got_masks.dtype == np.int32
        rows = [int(np.flatnonzero((images == image).all(axis=(1, 2, 3)))[0]) for image in got_images]
        assert sorted(rows) == list(range(len(images)))
        np.testing.assert_array_equal(got_masks, masks[rows])


def test_shuffling_changes_every_epoch_and_repeats_with_the_seed():
    images, masks = _slices()
    first, again = (
        ArrayBatches(images, masks, 5, shuffle=True, seed=1),
        ArrayBatches(images, masks, 5, shuffle=True, seed=1),
    )
    epochs = [_epoch(first)[0] for _ in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(epochs[0], _epoch(again)[0])
    np.testing.assert_array_equal(_epoch(ArrayBatches(images, masks, 5))[0], images)


def test_offline_augmentation_is_the_six_fold_set():
    images, masks = _slices(n=3)
    want_images, want_masks = augment_offline(images, masks)
    got_images, got_masks = _epoch(ArrayBatches(images, masks, 4, augment="offline"))
    np.testing.assert_array_equal(got_images, want_images)
    np.testing.assert_array_equal(got_masks, want_masks)


def test_bad_arguments_are_refused():
    images, masks = _slices()
    with pytest.raises(ValueError, match="augment"):
        ArrayBatches(images, masks, 2, augment="online")
    with pytest.raises(ValueError, match="batch_size"):
        ArrayBatches(images, masks, 0)


def test_tensorflow_backend_gets_tf_data():
    images, masks = _slices()
    assert isinstance(make_batches(images, masks, 4), tf.data.Dataset)
