"""Grey-level histogram equalisation in `keras.ops`: one implementation for the model and the training views.

`tf_resattn.layers.HistogramEqualization` runs it as the model's first layer; the training feed's
equalised views (`tf_resattn.data.acquisition.equalized_view`) run it on single slices, so that a
slice shown equalised in training is what OpenCV's `equalizeHist` makes of it.
"""

from keras import ops


def equalize_histogram(images, levels=256):
    """OpenCV's `equalizeHist` of each image and channel, on `levels` grey levels of [0, 1].

    Args:
        images: `[B, H, W, C]` in [0, 1].
        levels: number of grey levels the images are counted on (256: 8-bit).

    Returns:
        float32 `[B, H, W, C]` in [0, 1]: a pixel at level k becomes
        `(cdf(k) - cdf(k_min)) / (N - cdf(k_min))`, where `cdf(k)` counts the image's pixels at
        levels <= k, `k_min` is its darkest level and N its pixel count (equalizeHist before
        rounding to 8 bits). An image of one grey level is returned unchanged.
    """
    x = ops.cast(images, "float32")
    shape = ops.shape(x)
    x = ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (shape[0], shape[3], -1))  # [B, C, N]
    level = ops.cast(ops.clip(ops.round(x * (levels - 1)), 0, levels - 1), "int32")
    one_hot = ops.one_hot(level, levels)  # [B, C, N, levels]
    counts = ops.sum(one_hot, axis=2)  # [B, C, levels]
    cdf = ops.cumsum(counts, axis=-1)
    darkest = ops.min(ops.where(counts > 0, cdf, ops.cast(shape[1] * shape[2], "float32")), axis=-1, keepdims=True)
    spread = cdf[..., -1:] - darkest
    lut = ops.clip((cdf - darkest) / ops.maximum(spread, 1.0), 0.0, 1.0)  # [B, C, levels]
    equalized = ops.sum(one_hot * lut[:, :, None, :], axis=-1)  # [B, C, N]
    equalized = ops.where(spread > 0, equalized, x)
    equalized = ops.reshape(equalized, (shape[0], shape[3], shape[1], shape[2]))
    return ops.transpose(equalized, (0, 2, 3, 1))
