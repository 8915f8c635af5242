"""Builtin-op equivalents of two `keras.ops` calls that TFLite cannot lower, used while tracing for TFLite.

On the TensorFlow backend `keras.ops.argmax` of floats adds a `BitwiseAnd`
(a sign-bit test for -0.0) and `keras.ops.roll` is `tf.roll`; neither is a
TFLite builtin op, and the LSH attention layer uses both. Inside
`builtin_equivalents()` the two calls are served by exact equivalents that
lower to builtins: `argmax` over the last axis by `top_k(k=1)` (which also
returns the first index among ties) and a roll along one axis by two slices
and a concatenation. Outside the scope nothing changes. Once the layer uses
these forms itself the scope is a no-op.
"""

import contextlib
import threading

import tensorflow as tf
from keras import ops

_lock = threading.Lock()


def _argmax_last_axis(original):
    def argmax(x, axis=None, keepdims=False):
        x = tf.convert_to_tensor(x)
        if axis == -1 and not keepdims and x.dtype.is_floating:
            return tf.math.top_k(x, k=1).indices[..., 0]
        return original(x, axis=axis, keepdims=keepdims)

    return argmax


def _roll_by_slices(original):
    def roll(x, shift, axis=None):
        x = tf.convert_to_tensor(x)
        if not isinstance(shift, int) or not isinstance(axis, int) or x.shape[axis] is None:
            return original(x, shift, axis=axis)
        size = x.shape[axis]
        cut = size - shift % size
        head = tf.gather(x, tf.range(cut, size), axis=axis)
        tail = tf.gather(x, tf.range(0, cut), axis=axis)
        return tf.concat([head, tail], axis=axis)

    return roll


@contextlib.contextmanager
def builtin_equivalents():
    """Within the scope, `keras.ops.argmax` (last axis) and `keras.ops.roll` (one axis) trace to TFLite builtins."""
    with _lock:
        argmax, roll = ops.argmax, ops.roll
        ops.argmax, ops.roll = _argmax_last_axis(argmax), _roll_by_slices(roll)
        try:
            yield
        finally:
            ops.argmax, ops.roll = argmax, roll
