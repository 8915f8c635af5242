"""The NumPy side of inference, shared by the Keras and TFLite paths and by the parity check.

`preprocess` is `Preprocessing.apply` over a batch; `restore_size` resizes
probabilities from the training size back to the input size by the rule of
`tf_resattn.data.preprocessing.image_interpolation` (area when shrinking, else
bilinear), which is what the SavedModel does with TensorFlow ops.
"""

import numpy as np

from tf_resattn.data.preprocessing import resize_image


def preprocess(raw_slices, preprocessing):
    """Raw slices `[N, H, W]` -> float32 `[N, h, w, 1]` in [0, 1] at the preprocessing's size."""
    return np.stack([preprocessing.apply(raw) for raw in raw_slices]).astype(np.float32)


def restore_size(probabilities, size):
    """Probabilities `[N, h, w, C]` -> `[N, H, W, C]` for `size` (H, W)."""
    return np.stack([resize_image(p, tuple(size)).reshape(*size, p.shape[-1]) for p in probabilities])
