"""The display window that 8-bit CT slices were made with, estimated from their grey levels.

Slices exported as 8-bit PNG were windowed: a range of Hounsfield units `[low, high]` was mapped
linearly onto the grey levels 0-255 and clipped. A model trained on such slices can segment a HU
volume once the volume is windowed the same way, so the window is recorded with the model
(`Preprocessing.source_window`).

When the window is not known, it is estimated from two tissues every chest CT slice shows: air
(outside the body and in the trachea, about -1000 HU) and soft tissue (mediastinum, muscle and
blood, about +40 HU). Each slice's grey-level histogram has a peak for each; the two peaks fix the
line grey = 255 (hu - low) / (high - low), and the median over the slices is the estimate.

On `../shared/data/medseg100` (100 slices) the air peak lies at grey 59 (quartiles 45-76) and the
soft-tissue peak at 234 (220-238), which gives a window of about (-1362, 168) HU, quartiles of
the per-slice estimates -1490 to -1248 (low) and 133 to 252 (high). That is the standard lung
window, width 1500 and level -600 (-1350 to 150 HU), within a few per cent of its width; the
slices come from several scanners and exports, so single slices differ by up to 20 % of the width.
"""

import numpy as np

from tf_resattn.io.errors import DataError

AIR_HU = -1000.0
SOFT_TISSUE_HU = 40.0
AIR_GREY_RANGE = (1, 120)
"""Grey levels searched for the air peak (0 is left out: air clipped to 0 fixes no line)."""
SOFT_TISSUE_GREY_RANGE = (150, 250)
"""Grey levels searched for the soft-tissue peak (255 is left out: clipped bone and contrast)."""


def _histogram_peak(image, grey_range):
    """The most frequent grey level of `image` (uint8 [H, W]) within `grey_range`, after 5-level smoothing."""
    counts = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    smoothed = np.convolve(counts, np.ones(5) / 5.0, mode="same")
    low, high = grey_range
    return low + int(np.argmax(smoothed[low:high]))


def slice_window(image):
    """The window (low, high) in HU that one 8-bit slice `image` (uint8 [H, W]) was made with.

    Example:
        >>> hu = np.full((64, 64), -1000.0); hu[16:48, 16:48] = 40.0
        >>> grey = np.clip((hu + 1350.0) / 1500.0 * 255.0, 0, 255).round().astype(np.uint8)
        >>> low, high = slice_window(grey)  # the lung window, up to the grey levels' rounding
        >>> abs(low - -1350.0) < 15 and abs(high - 150.0) < 15
        True
    """
    air = _histogram_peak(image, AIR_GREY_RANGE)
    tissue = _histogram_peak(image, SOFT_TISSUE_GREY_RANGE)
    greys_per_hu = (tissue - air) / (SOFT_TISSUE_HU - AIR_HU)
    low = AIR_HU - air / greys_per_hu
    return low, low + 255.0 / greys_per_hu


def estimate_display_window(images):
    """The median display window (low, high) in HU of 8-bit chest CT slices.

    Args:
        images: iterable of uint8 arrays [H, W] (or [H, W, 1]), as read from the PNG files.

    Returns:
        `(low, high)` floats, the medians over the slices of `slice_window`. Raises `DataError`
        when the images are not 8-bit.
    """
    windows = []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise DataError(
                f"the display window is estimated from 8-bit slices, got {image.dtype}; "
                "give --source-window LOW HIGH instead"
            )
        windows.append(slice_window(image.reshape(image.shape[:2])))
    if not windows:
        raise DataError("no slices to estimate the display window from; give --source-window LOW HIGH")
    low, high = np.median(np.array(windows), axis=0)
    return float(low), float(high)
