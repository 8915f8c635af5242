"""The NumPy side of inference, shared by the Keras and TFLite paths and by the parity check.

`preprocess` is `Preprocessing.apply` over a batch; the way back,
`tf_resattn.data.preprocessing.restore_size`, resizes probabilities from the
training size to the input size (area when shrinking, else bilinear), as the
SavedModel does with TensorFlow ops.
"""

import numpy as np


def preprocess(raw_slices, preprocessing):
    """Raw slices `[N, H, W]` -> float32 `[N, h, w, 1]` in [0, 1] at the preprocessing's size."""
    return np.stack([preprocessing.apply(raw) for raw in raw_slices]).astype(np.float32)
