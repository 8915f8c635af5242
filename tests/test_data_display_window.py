"""The display window of 8-bit slices, estimated from their air and soft-tissue grey levels."""

import cv2
import numpy as np
import pytest

from tf_resattn.data import DataError
from tf_resattn.data.display_window import estimate_display_window


def _windowed_phantom(low, high, seed):
    """A chest-like HU slice (air, a body of fat, soft tissue and lungs, noise) windowed to 8 bits."""
    rng = np.random.default_rng(seed)
    hu = np.full((128, 128), -1000.0)
    yy, xx = np.mgrid[:128, :128]
    hu[((yy - 64) / 50.0) ** 2 + ((xx - 64) / 60.0) ** 2 < 1] = 40.0
    hu[((yy - 60) / 30.0) ** 2 + ((xx - 40) / 15.0) ** 2 < 1] = -850.0
    hu[((yy - 60) / 30.0) ** 2 + ((xx - 88) / 15.0) ** 2 < 1] = -850.0
    hu += rng.normal(0.0, 8.0, hu.shape)
    return np.clip((hu - low) / (high - low) * 255.0, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("window", [(-1350.0, 150.0), (-1200.0, 300.0), (-1500.0, 100.0)])
def test_estimate_recovers_the_window_the_slices_were_made_with(window):
    low, high = estimate_display_window(_windowed_phantom(*window, seed) for seed in range(4))
    width = window[1] - window[0]
    assert abs(low - window[0]) < 0.03 * width and abs(high - window[1]) < 0.03 * width


def test_estimate_refuses_images_that_are_not_8_bit():
    with pytest.raises(DataError, match="--source-window"):
        estimate_display_window([np.zeros((8, 8), np.float32)])
    with pytest.raises(DataError, match="no slices"):
        estimate_display_window([])


def test_medseg100_slices_were_made_with_about_the_lung_window(medseg100_dir):
    images = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in sorted((medseg100_dir / "images").glob("*.png"))]
    low, high = estimate_display_window(images)
    # The standard lung window (width 1500, level -600) is -1350 to 150 HU.
    assert abs(low - -1350.0) < 75 and abs(high - 150.0) < 75
