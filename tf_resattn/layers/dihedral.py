"""Quarter turns and mirror images of a map: the transforms of test-time augmentation."""

import keras
from keras import ops


def quarter_turns(x, turns):
    """`numpy.rot90(x, turns, axes=(1, 2))` for `[B, H, W, C]`, from transposes and flips.

    (Written out because `keras.ops.rot90` of Keras 3.15 on TensorFlow gets half turns of
    non-square maps wrong.)
    """
    if turns == 1:
        return ops.flip(ops.transpose(x, (0, 2, 1, 3)), axis=1)
    if turns == 2:
        return ops.flip(ops.flip(x, axis=1), axis=2)
    if turns == 3:
        return ops.flip(ops.transpose(x, (0, 2, 1, 3)), axis=2)
    return x


def dihedral(x, turns, flip, inverse=False):
    """`[B, H, W, C]` turned by `turns` quarter turns, then mirrored left-right if `flip`; or that undone."""
    if inverse:
        return quarter_turns(ops.flip(x, axis=2) if flip else x, -turns % 4)
    x = quarter_turns(x, turns)
    return ops.flip(x, axis=2) if flip else x


@keras.saving.register_keras_serializable(package="tf_resattn")
class DihedralTransform(keras.layers.Layer):
    """Turns a map by `turns` quarter turns, then mirrors it left-right if `flip`; or undoes that.

    Input `[B, H, W, C]` -> output `[B, H, W, C]` (even `turns`) or `[B, W, H, C]` (odd `turns`).
    The 8 pairs (`turns` 0..3, `flip` False/True) are the symmetries of the square; a layer with
    `inverse=True` undoes the one with the same `turns` and `flip`.

    Args:
        turns: quarter turns counter-clockwise in the (H, W) plane, 0..3.
        flip: mirror the width axis after turning.
        inverse: apply the inverse transform instead (unmirror, then turn back).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> x = keras.ops.reshape(keras.ops.arange(6.0), (1, 2, 3, 1))
    >>> turned = DihedralTransform(turns=1, flip=True)(x)
    >>> tuple(turned.shape)
    (1, 3, 2, 1)
    >>> bool(keras.ops.all(DihedralTransform(turns=1, flip=True, inverse=True)(turned) == x))
    True
    """

    def __init__(self, turns=0, flip=False, inverse=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(turns, bool) or not isinstance(turns, int) or not 0 <= turns <= 3:
            raise ValueError(f"DihedralTransform: `turns` must be 0, 1, 2 or 3, got {turns!r}.")
        self.turns = turns
        self.flip = bool(flip)
        self.inverse = bool(inverse)

    def call(self, inputs):
        return dihedral(inputs, self.turns, self.flip, self.inverse)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, width, height, channels) if self.turns % 2 else tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"turns": self.turns, "flip": self.flip, "inverse": self.inverse})
        return config


SYMMETRIES = tuple((turns, flip) for turns in range(4) for flip in (False, True))
"""(quarter turns, mirrored) of the 8 symmetries of the square, in the order of `DihedralViews`; (0, False) is the map itself."""


@keras.saving.register_keras_serializable(package="tf_resattn")
class DihedralViews(keras.layers.Layer):
    """The 8 symmetries of each square map as one batch: `[B, H, H, C]` -> `[8B, H, H, C]`.

    View `v` (`SYMMETRIES[v]`) of item `b` is at `v * B + b`, so that a model runs all eight in one call
    and `DihedralMean` turns its outputs back and averages them.

    Example:
    >>> x = keras.ops.reshape(keras.ops.arange(8.0), (2, 2, 2, 1))
    >>> tuple(DihedralViews()(x).shape)
    (16, 2, 2, 1)
    >>> bool(keras.ops.all(DihedralMean()(DihedralViews()(x)) == x))
    True
    """

    def call(self, inputs):
        return ops.concatenate([dihedral(inputs, turns, flip) for turns, flip in SYMMETRIES], axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else 8 * input_shape[0]
        return (batch, *input_shape[1:])


@keras.saving.register_keras_serializable(package="tf_resattn")
class DihedralMean(keras.layers.Layer):
    """Outputs of a model on `DihedralViews`' batch, each view turned back, averaged: `[8B, H, H, C]` -> `[B, H, H, C]`."""

    def call(self, inputs):
        batch = ops.shape(inputs)[0] // len(SYMMETRIES)
        views = [
            dihedral(inputs[v * batch : (v + 1) * batch], turns, flip, inverse=True)
            for v, (turns, flip) in enumerate(SYMMETRIES)
        ]
        return ops.mean(ops.stack(views), axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // 8
        return (batch, *input_shape[1:])
