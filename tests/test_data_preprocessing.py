"""Preprocessing: HU windowing, 8-bit scaling, resizing (labels stay exact), input-kind detection."""

import numpy as np
import pytest

from tf_resattn.data import DataError, Preprocessing, detect_input_kind
from tf_resattn.data.preprocessing import resize_image, resize_mask


def test_hu_window_maps_low_to_0_and_high_to_1():
    raw = np.array([[-2000.0, -1000.0, -300.0], [400.0, 1000.0, 50.0]])
    out = Preprocessing("hu", (-1000, 400)).apply(raw)
    assert out.shape == (2, 3, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], [[0, 0, 0.5], [1, 1, 1050 / 1400]], atol=1e-6)
    narrow = Preprocessing("hu", (-200, 200)).apply(raw)
    np.testing.assert_allclose(narrow[..., 0], [[0, 0, 0], [1, 1, 0.625]], atol=1e-6)


def test_uint8_scaled_by_255():
    raw = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(Preprocessing("uint8").apply(raw)[..., 0], [[0, 0.2, 1]], atol=1e-6)


def test_config_round_trip_and_validation():
    prep = Preprocessing("hu", (-1350, 150), 369)
    config = prep.to_config()
    assert config == {
        "input_kind": "hu",
        "hu_window": [-1350.0, 150.0],
        "image_size": [369, 369],
        "source_window": None,
        "lung_crop": None,
        "lung_constraint": None,
    }
    assert Preprocessing.from_config(config) == prep
    with pytest.raises(ValueError, match="input_kind"):
        Preprocessing("auto")
    with pytest.raises(ValueError, match="low < high"):
        Preprocessing("hu", (400, -1000))
    with pytest.raises(ValueError, match="image_size"):
        Preprocessing("uint8", image_size=(0, 4))


@pytest.mark.parametrize("size", [(37, 37), (128, 96), (13, 200)])
def test_resize_keeps_mask_labels_exact(size):
    rng = np.random.default_rng(0)
    mask = rng.choice(np.array([0, 1, 3], np.uint8), size=(100, 100))
    resized = resize_mask(mask, size)
    assert resized.shape == size and resized.dtype == np.uint8
    assert set(np.unique(resized)) <= {0, 1, 3}


@pytest.mark.parametrize("size", [(37, 37), (160, 160)])
def test_resized_mask_stays_on_the_resized_image(size):
    image = np.zeros((100, 100), np.float32)
    image[20:60, 30:90] = 1.0
    mask = (image > 0).astype(np.uint8) * 2
    square_in_image = resize_image(image, size) > 0.5
    square_in_mask = resize_mask(mask, size) == 2
    disagreement = np.logical_xor(square_in_image, square_in_mask).sum()
    assert disagreement <= 0.03 * square_in_mask.sum()


@pytest.mark.parametrize(
    "values, from_volume, expected",
    [
        (np.array([[0, 255]], np.uint8), False, "uint8"),
        (np.array([[0.0, 200.0]]), False, "uint8"),
        (np.array([[-1024.0, 300.0]]), True, "hu"),
        (np.array([[-3024, 2000]], np.int16), True, "hu"),
    ],
)
def test_detect_input_kind(values, from_volume, expected):
    assert detect_input_kind([values], from_volume=from_volume, source="x") == expected


@pytest.mark.parametrize(
    "values, from_volume, match",
    [
        (np.array([[0.0, 255.0]]), True, "input_kind='uint8'"),
        (np.array([[0.0, 4095.0]]), True, "rescale it to HU"),
        (np.array([[0, 1000]], np.uint16), False, "neither 8-bit"),
        (np.array([[0.5, 3.0]]), False, "neither 8-bit"),
    ],
)
def test_detect_input_kind_refuses_to_guess(values, from_volume, match):
    with pytest.raises(DataError, match=match):
        detect_input_kind([values], from_volume=from_volume, source="scan.nii.gz")
