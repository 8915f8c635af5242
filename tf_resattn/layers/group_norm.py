"""Group normalisation of channels-last maps, fused where a compiled kernel runs."""

import keras

from tf_resattn.layers.kernels import fused_kernels_run, tensorflow_ops


@keras.saving.register_keras_serializable(package="tf_resattn")
class GroupNormalization(keras.layers.GroupNormalization):
    """`keras.layers.GroupNormalization` that runs as one compiled op where it can.

    Same arguments, weights (`gamma`, `beta`, `[C]`), epsilon (1e-3 by
    default) and results as the Keras layer. On TensorFlow's CPU in float32,
    normalising channels-last maps (`axis=-1`, the default) with a scale and
    an offset (the defaults), it calls `tf_resattn.ops.group_norm`: two
    passes over the map forward and two backward, where Keras's composite of
    reshapes and moments takes about a dozen with as many full-size
    temporaries. Everywhere else (other backends, dtypes or settings,
    exports) it is the Keras layer; under XLA (`jit_compile=True`) the op
    runs as an XLA custom call.

    Input `[B, ..., C]` -> output of the same shape.

    Example:
    >>> norm = GroupNormalization(groups=4)
    >>> tuple(norm(keras.ops.ones((2, 5, 5, 8))).shape)
    (2, 5, 5, 8)
    """

    def _fused(self, inputs):
        return (
            self.axis % len(inputs.shape) == len(inputs.shape) - 1
            and len(inputs.shape) >= 2
            and self.center
            and self.scale
            and fused_kernels_run(inputs.dtype, xla_operands=(inputs,))
        )

    def call(self, inputs):
        if self._fused(inputs):
            outputs = tensorflow_ops.group_norm(inputs, self.gamma, self.beta, self.groups, self.epsilon)
            return keras.ops.cast(outputs, self.compute_dtype)  # as Keras's layer: float32 inputs under a mixed policy
        return super().call(inputs)
