"""Histogram equalisation inside the model: OpenCV's result, invariance to grey-level maps, save, load and TFLite."""

import cv2
import keras
import numpy as np
import pytest
from export_helpers import run_in_litert

import tf_resattn
from tf_resattn.layers import HistogramEqualization
from tf_resattn.training.config import resolve_config

HALF_LEVEL = 0.5 / 255 + 1e-6
"""OpenCV rounds its lookup table to 8 bits; the layer keeps the unrounded value."""


def _equalized(grey_uint8):
    """The layer on `[B, H, W]` 8-bit images, as `[B, H, W]` floats in [0, 1]."""
    images = grey_uint8[..., None].astype(np.float32) / 255
    return keras.ops.convert_to_numpy(HistogramEqualization()(images))[..., 0]


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, shape: rng.integers(0, 256, shape),
        lambda rng, shape: rng.beta(2, 6, shape) * 255,
        lambda rng, shape: np.where(rng.random(shape) < 0.6, 0, rng.normal(200, 20, shape)),  # CT: air, then tissue
        lambda rng, shape: rng.integers(40, 48, shape),  # few levels, none at 0
    ],
    ids=["uniform", "dark", "air-and-tissue", "narrow"],
)
@pytest.mark.parametrize("shape", [(3, 37, 29), (1, 128, 128)])
def test_matches_opencv_equalize_hist(draw, shape):
    grey = np.clip(np.round(draw(np.random.default_rng(0), shape)), 0, 255).astype(np.uint8)
    reference = np.stack([cv2.equalizeHist(image) for image in grey]) / 255
    np.testing.assert_allclose(_equalized(grey), reference, atol=HALF_LEVEL)


def test_channels_are_equalized_one_by_one():
    grey = np.random.default_rng(1).integers(0, 120, (2, 16, 12, 3)).astype(np.uint8)
    out = keras.ops.convert_to_numpy(HistogramEqualization()(grey.astype(np.float32) / 255))
    for channel in range(3):
        np.testing.assert_allclose(out[..., channel], _equalized(grey[..., channel]), atol=1e-6)


def test_another_window_and_gamma_give_the_same_image():
    """A strictly increasing map of the grey levels (another level, width and a curve) changes nothing."""
    grey = np.random.default_rng(2).integers(0, 100, (2, 40, 40)).astype(np.uint8)
    levels = np.arange(100)
    remapped_levels = np.round(30 + 1.4 * levels + 0.004 * levels**2).astype(np.uint8)  # 100 distinct levels, 30..208
    assert len(np.unique(remapped_levels)) == 100
    np.testing.assert_allclose(_equalized(remapped_levels[grey]), _equalized(grey), atol=1e-6)
    assert np.abs(remapped_levels[grey] / 255 - grey / 255).max() > 0.2


def test_image_of_one_grey_level_is_unchanged():
    flat = np.full((1, 6, 5, 1), 0.3, np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(HistogramEqualization()(flat)), flat)


def test_model_equalizes_its_input_and_survives_save_and_load(tmp_path):
    model = tf_resattn.build_model("unet", base_filters=4, depth=2, input_normalization="equalize")
    assert isinstance(model.get_layer("equalize"), HistogramEqualization)
    grey = np.random.default_rng(3).integers(0, 100, (2, 24, 20)).astype(np.uint8)
    stretched = np.round(grey * 2.5).astype(np.uint8)  # another window: the same ranks
    first, second = (
        keras.ops.convert_to_numpy(model(g[..., None].astype(np.float32) / 255)) for g in (grey, stretched)
    )
    np.testing.assert_allclose(first, second, atol=1e-5)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.get_config()["input_normalization"] == "equalize"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(grey[..., None] / 255.0)), first)
    plain = tf_resattn.build_model("unet", base_filters=4, depth=2)
    assert "equalize" not in [layer.name for layer in plain.layers]


def test_added_channel_holds_the_equalized_image():
    model = tf_resattn.build_model("unet", base_filters=4, depth=2, input_normalization="add_equalized")
    grey = np.random.default_rng(5).integers(0, 100, (2, 24, 20, 1)).astype(np.float32) / 255
    both = keras.Model(model.input, model.get_layer("add_equalized").output)(grey)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(both[..., :1]), grey)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(both[..., 1:]),
        _equalized(np.round(grey[..., 0] * 255).astype(np.uint8))[..., None],
        atol=1e-6,
    )


def test_build_model_refuses_an_unknown_normalization():
    with pytest.raises(ValueError, match="input_normalization"):
        tf_resattn.build_model(depth=2, input_normalization="zscore")


def test_training_configuration_hands_it_to_the_model():
    cfg = resolve_config("smoke", overrides={"input_normalization": "equalize"})
    model = tf_resattn.build_model("unet", input_shape=(32, 32, 1), **cfg.model_kwargs())
    assert isinstance(model.get_layer("equalize"), HistogramEqualization)
    with pytest.raises(ValueError, match="input_normalization must be one of none, equalize, add_equalized"):
        resolve_config("smoke", overrides={"input_normalization": "clahe"})


def test_tflite_file_equalizes_with_builtin_ops(tmp_path):
    """The TFLite export (builtin ops only) of an equalising model matches Keras in the litert interpreter."""
    from tf_resattn.export.tflite import convert, frozen_inference_function

    model = tf_resattn.build_model(
        "resattn",
        input_shape=(32, 32, 1),
        base_filters=4,
        depth=2,
        cardinality=2,
        bottleneck_width=2,
        num_heads=1,
        key_dim=4,
        bucket_size=16,
        n_hashes=1,
        input_normalization="equalize",
    )
    path = tmp_path / "model.tflite"
    path.write_bytes(convert(frozen_inference_function(model, (32, 32)), "fp32"))
    images = np.random.default_rng(4).integers(0, 90, (2, 32, 32, 1)).astype(np.float32) / 255
    np.testing.assert_allclose(run_in_litert(path, images), keras.ops.convert_to_numpy(model(images)), atol=1e-4)
