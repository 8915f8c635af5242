"""The normalisation used after every convolution: group norm by default, batch norm on request."""

import math

import keras

from tf_resattn.layers.group_norm import GroupNormalization

NORMALIZATIONS = ("group", "batch")
GROUPS = 8


def check_normalization(owner, norm):
    """Raises `ValueError` unless `norm` is one of `NORMALIZATIONS`."""
    if norm not in NORMALIZATIONS:
        raise ValueError(f"{owner}: `norm` must be one of {NORMALIZATIONS}, got {norm!r}.")


def make_normalization(norm, channels, name, dtype=None):
    """A built normalisation layer for `channels` channels.

    `"group"`: `tf_resattn.layers.GroupNormalization` (Keras's, fused on
    CPU) with `gcd(8, channels)` groups. It behaves the same in training and
    inference and does not depend on the batch, so short trainings, batches
    of 2 and multi-replica runs all see the same function. The blocks build
    it in `build()`, so models saved when it was Keras's own class load into
    it too (same weights, `gamma` and `beta`). `"batch"`:
    `BatchNormalization` (running statistics).
    """
    if norm == "group":
        layer = GroupNormalization(groups=math.gcd(GROUPS, channels), name=name, dtype=dtype)
    else:
        layer = keras.layers.BatchNormalization(name=name, dtype=dtype)
    layer.build((None, None, None, channels))
    return layer
