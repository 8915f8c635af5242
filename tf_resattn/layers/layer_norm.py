"""Layer normalisation over the channels, fused where a compiled kernel runs."""

import keras

from tf_resattn.layers.kernels import fused_kernels_run, tensorflow_ops


@keras.saving.register_keras_serializable(package="tf_resattn")
class LayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` that runs as one compiled op where it can.

    Same arguments, weights and results as the Keras layer. On TensorFlow's
    CPU in float32, normalising over the last axis with a scale and an offset
    (the defaults), it calls `tf_resattn.ops.layer_norm`: one pass over the
    tokens forward and one backward, where Keras's composite takes about a
    dozen passes with as many full-size temporaries (5x the time on
    `[8, 16384, 64]` tokens). Everywhere else (other backends, dtypes or
    settings, exports) it is the Keras layer; under XLA
    (`jit_compile=True`) the op runs as an XLA custom call.

    Input `[..., C]` -> output of the same shape.

    Example:
    >>> norm = LayerNormalization()
    >>> tuple(norm(keras.ops.ones((2, 5, 8))).shape)
    (2, 5, 8)
    """

    def _fused(self, inputs):
        axis = self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]
        last = len(inputs.shape) - 1
        return (
            [a % len(inputs.shape) for a in axis] == [last]
            and self.center
            and self.scale
            and not self.rms_scaling
            and fused_kernels_run(inputs.dtype, xla_operands=(inputs,))
        )

    def call(self, inputs):
        if self._fused(inputs):
            outputs = tensorflow_ops.layer_norm(inputs, self.gamma, self.beta, self.epsilon)
            return keras.ops.cast(outputs, self.compute_dtype)  # as Keras's layer: float32 inputs under a mixed policy
        return super().call(inputs)
