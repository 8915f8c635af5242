"""Acquisition augmentation: images change within [0, 1], masks never, the same seed gives the same change."""

import numpy as np
import pytest
import tensorflow as tf

from tf_resattn.data import acquisition
from tf_resattn.data.pipeline import make_dataset


@pytest.fixture
def slices():
    rng = np.random.default_rng(0)
    images = rng.random((12, 32, 32, 1)).astype(np.float32)
    masks = rng.integers(0, 4, (12, 32, 32)).astype(np.uint8)
    return images, masks


def batches(images, masks, seed, acquisition_on=True):
    dataset = make_dataset(images, masks, 4, augment="none", seed=seed, acquisition=acquisition_on)
    pairs = [(x.numpy(), y.numpy()) for x, y in dataset]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def test_masks_stay_exact_and_images_stay_in_range(slices):
    images, masks = slices
    shifted, labels = batches(images, masks, seed=3)
    np.testing.assert_array_equal(labels, masks.astype(np.int32))
    assert shifted.shape == images.shape and shifted.min() >= 0.0 and shifted.max() <= 1.0
    changed = [not np.allclose(a, b) for a, b in zip(shifted, images)]
    assert 3 <= sum(changed) <= 12  # each part has its own probability; most slices get some change


def test_same_seed_same_change_and_another_seed_another(slices):
    images, masks = slices
    np.testing.assert_array_equal(batches(images, masks, seed=5)[0], batches(images, masks, seed=5)[0])
    assert not np.allclose(batches(images, masks, seed=5)[0], batches(images, masks, seed=6)[0])
    np.testing.assert_array_equal(batches(images, masks, seed=5, acquisition_on=False)[0], images)


def test_gamma_and_window_follow_their_formulas():
    image = tf.constant(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4, 1))
    seed = tf.constant([1, 2], tf.int64)
    gamma = np.exp(tf.random.stateless_uniform([2], seed, np.log(0.5), np.log(2.0))[0].numpy())
    np.testing.assert_allclose(acquisition._gamma(image, seed).numpy(), image.numpy() ** gamma, rtol=1e-5, atol=1e-6)
    values = tf.random.stateless_uniform([2], seed, -0.15, 0.15).numpy()
    width = np.exp(tf.random.stateless_uniform([2], seed, np.log(0.7), np.log(1.4)).numpy()[1])
    expected = np.clip((image.numpy() - 0.5 - values[0]) / width + 0.5, 0, 1)
    np.testing.assert_allclose(acquisition._window(image, seed).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_equalisation_keeps_the_order_of_grey_levels():
    image = tf.constant(np.random.default_rng(1).random((8, 8, 1)).astype(np.float32) ** 3)
    equalised = acquisition._equalise(image, tf.constant([4, 4], tf.int64)).numpy().ravel()
    order = np.argsort(image.numpy().ravel())
    assert np.all(np.diff(equalised[order]) >= 0)


def test_equalized_views_are_opencv_equalisation_or_the_slice_itself():
    """share 1: every slice is equalised as cv2.equalizeHist does; share 0.5: each slice is either, about half."""
    import cv2

    rng = np.random.default_rng(2)
    grey = (255 * rng.random((40, 16, 16)) ** 2).round().astype(np.uint8)
    images = grey[..., None].astype(np.float32) / 255
    masks = rng.integers(0, 4, (40, 16, 16)).astype(np.uint8)
    expected = np.stack([cv2.equalizeHist(g) for g in grey])[..., None].astype(np.float32) / 255

    def views(share, seed=1):
        pairs = list(make_dataset(images, masks, 8, seed=seed, equalized_share=share))
        return np.concatenate([x.numpy() for x, _ in pairs]), np.concatenate([y.numpy() for _, y in pairs])

    every, labels = views(1.0)
    np.testing.assert_allclose(every, expected, atol=0.5 / 255)
    np.testing.assert_array_equal(labels, masks.astype(np.int32))
    np.testing.assert_array_equal(views(0.0)[0], images)
    half = views(0.5)[0]
    equalised = [np.allclose(h, e, atol=0.5 / 255) for h, e in zip(half, expected)]
    unchanged = [np.array_equal(h, x) for h, x in zip(half, images)]
    assert all(a != b for a, b in zip(equalised, unchanged))
    assert 10 <= sum(equalised) <= 30
    np.testing.assert_array_equal(views(0.5)[0], half)
    assert not np.array_equal(views(0.5, seed=2)[0], half)
