"""Histogram equalisation of each image, inside the model: the same grey-level spread whatever the scanner.

A slice windowed by another hospital (another window and level, a gamma, a display curve) differs
from the training slices by a monotone map of its grey levels. Equalisation replaces every grey level
by its rank among the image's pixels, which such a map leaves unchanged, so a model that equalises its
input sees those slices as it saw its own. As a layer of the model it is saved with the weights and runs
in `predict.py`, the SavedModel and the TFLite export alike (one-hot counts, a cumulative sum and a
weighted sum: TFLite builtin operations only).
"""

import keras
from keras import ops

from tf_resattn.grey_levels import equalize_histogram

INPUT_NORMALIZATIONS = ("none", "equalize", "add_equalized")
"""What `build_model(input_normalization=...)` accepts: the images as given, equalised per image, or
both (the equalised image as extra channels beside the original)."""


def check_input_normalization(owner, value):
    """Raises `ValueError` unless `value` is one of `INPUT_NORMALIZATIONS`."""
    if value not in INPUT_NORMALIZATIONS:
        raise ValueError(f"{owner}: `input_normalization` must be one of {INPUT_NORMALIZATIONS}, got {value!r}.")


@keras.saving.register_keras_serializable(package="tf_resattn")
class HistogramEqualization(keras.layers.Layer):
    """Equalises the grey-level histogram of each image (`equalize_histogram`); no weights.

    Input `[B, H, W, C]` in [0, 1] -> `[B, H, W, C]` in [0, 1] (the compute dtype; counted in float32). It works on 256 grey levels
    (what 8-bit slices hold) and keeps a `[B, C, H*W, 256]` one-hot count in memory: 16 MB for a
    128x128 image, 256 MB for 512x512.

    Args:
        levels: grey levels counted (256 by default), at least 2.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> dark = np.array([0, 0, 10, 20], np.float32).reshape(1, 2, 2, 1) / 255
    >>> keras.ops.convert_to_numpy(HistogramEqualization()(dark)).ravel().tolist()
    [0.0, 0.0, 0.5, 1.0]

    References:
        OpenCV `cv2.equalizeHist`; Pizer et al., "Adaptive histogram equalization and its variations", 1987.
    """

    def __init__(self, levels=256, **kwargs):
        super().__init__(**kwargs)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"HistogramEqualization: `levels` must be an integer >= 2, got {levels!r}.")
        self.levels = levels

    def call(self, inputs):
        return ops.cast(equalize_histogram(inputs, self.levels), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}
