"""Acquisition augmentation: random changes of how a slice was scanned and displayed (TensorFlow only).

Another hospital's slices differ from the training slices less in anatomy than in acquisition:
display window and level, the grey-level curve, contrast, equalised histograms, noise, sharpness
and resolution. `acquisition_shift(image, seed)` draws one such change per slice, each part with
its own probability, and applies it to the image only (masks are never touched: the anatomy
stays where it was). Images are `[H, W, C]` in [0, 1] and stay in [0, 1].

| part | probability | range |
| --- | --- | --- |
| window and level | 0.5 | level shift U(-0.15, 0.15), width factor U(0.7, 1.4), then clipped |
| gamma | 0.5 | exp(U(log 0.5, log 2)) |
| contrast about the mean | 0.3 | factor U(0.7, 1.3) |
| histogram equalisation | 0.2 | blended in by U(0.3, 1) (ranks of the slice's own grey levels) |
| Gaussian noise | 0.3 | sigma U(0, 0.05) |
| Gaussian blur | 0.2 | sigma U(0.5, 1.5) pixels (5x5 kernel) |
| resolution | 0.2 | down to U(0.4, 0.9) of the size, bilinear, then back up |

Randomness is stateless: the same seed gives the same change.

`equalized_view(image, seed, share)` is a separate, stronger step: with probability `share` the
slice is replaced by its full histogram equalisation (OpenCV's `equalizeHist` on 256 levels, the
model's own `HistogramEqualization`). A slice that another display equalised keeps only the ranks
of its grey levels; a model that sees such views in training, beside the originals, learns to
segment from them too.
"""

import math

import tensorflow as tf

from tf_resattn.grey_levels import equalize_histogram

PROBABILITIES = {
    "window": 0.5,
    "gamma": 0.5,
    "contrast": 0.3,
    "equalise": 0.2,
    "noise": 0.3,
    "blur": 0.2,
    "resolution": 0.2,
}


def acquisition_shift(image, seed):
    """One random acquisition change of `image` float32 `[H, W, C]` in [0, 1]; `seed` int64 `[2]`."""
    seeds = iter(tf.unstack(tf.random.experimental.stateless_split(seed, 2 * len(PROBABILITIES))))

    def maybe(part, transform):
        nonlocal image
        apply = tf.random.stateless_uniform([], next(seeds)) < PROBABILITIES[part]
        value_seed = next(seeds)
        image = tf.cond(apply, lambda: transform(image, value_seed), lambda: image)

    maybe("window", _window)
    maybe("gamma", _gamma)
    maybe("contrast", _contrast)
    maybe("equalise", _equalise)
    maybe("noise", _noise)
    maybe("blur", _blur)
    maybe("resolution", _resolution)
    return tf.clip_by_value(image, 0.0, 1.0)


def equalized_view(image, seed, share):
    """`image` float32 `[H, W, C]` in [0, 1], histogram-equalised with probability `share`; `seed` int64 `[2]`."""
    apply = tf.random.stateless_uniform([], seed) < share
    return tf.cond(apply, lambda: equalize_histogram(image[tf.newaxis])[0], lambda: image)


def _uniform(seed, low, high, index=0):
    return tf.random.stateless_uniform([2], seed, low, high)[index]


def _window(image, seed):
    level = _uniform(seed, -0.15, 0.15, 0)
    width = tf.exp(_uniform(seed, math.log(0.7), math.log(1.4), 1))
    return tf.clip_by_value((image - 0.5 - level) / width + 0.5, 0.0, 1.0)


def _gamma(image, seed):
    return tf.pow(tf.maximum(image, 0.0), tf.exp(_uniform(seed, math.log(0.5), math.log(2.0))))


def _contrast(image, seed):
    mean = tf.reduce_mean(image)
    return (image - mean) * _uniform(seed, 0.7, 1.3) + mean


def _equalise(image, seed):
    """Blends the image towards its rank transform (each value -> its share of smaller values)."""
    flat = tf.reshape(image, [-1])
    ranks = tf.searchsorted(tf.sort(flat), flat, side="right")
    equalised = tf.reshape(tf.cast(ranks, tf.float32) / tf.cast(tf.size(flat), tf.float32), tf.shape(image))
    blend = _uniform(seed, 0.3, 1.0)
    return (1.0 - blend) * image + blend * equalised


def _noise(image, seed):
    sigma = _uniform(seed, 0.0, 0.05)
    return image + sigma * tf.random.stateless_normal(
        tf.shape(image), tf.random.experimental.stateless_fold_in(seed, 1)
    )


def _blur(image, seed):
    sigma = _uniform(seed, 0.5, 1.5)
    taps = tf.exp(-0.5 * tf.square(tf.range(-2.0, 3.0) / sigma))
    taps /= tf.reduce_sum(taps)
    kernel = tf.tile((taps[:, None] * taps[None, :])[:, :, None, None], [1, 1, tf.shape(image)[-1], 1])
    blurred = tf.nn.depthwise_conv2d(
        tf.pad(image[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC"),
        kernel,
        strides=[1, 1, 1, 1],
        padding="VALID",
    )
    return blurred[0]


def _resolution(image, seed):
    size = tf.shape(image)[:2]
    smaller = tf.maximum(1, tf.cast(tf.round(tf.cast(size, tf.float32) * _uniform(seed, 0.4, 0.9)), tf.int32))
    return tf.image.resize(tf.image.resize(image, smaller, method="area"), size, method="bilinear")
