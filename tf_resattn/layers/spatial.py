"""Padding images to a multiple of the network's stride, and cropping back."""

import keras
from keras import ops

from tf_resattn.arguments import check_positive_int


@keras.saving.register_keras_serializable(package="tf_resattn")
class PadToMultiple(keras.layers.Layer):
    """Zero-pads height and width (at the bottom and right) up to a multiple of `multiple`.

    Input `[B, H, W, C]` -> output `[B, ceil(H/m)*m, ceil(W/m)*m, C]`; any H, W.

    Args:
        multiple: the size unit, `2**depth` for a U-Net of `depth` poolings.
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(multiple, "PadToMultiple: `multiple`")
        self.multiple = multiple

    def call(self, inputs):
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        return ops.pad(inputs, [[0, 0], [0, (-height) % self.multiple], [0, (-width) % self.multiple], [0, 0]])

    def compute_output_shape(self, input_shape):
        def grow(size):
            return None if size is None else -(-size // self.multiple) * self.multiple

        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config["multiple"] = self.multiple
        return config


@keras.saving.register_keras_serializable(package="tf_resattn")
class CropToReference(keras.layers.Layer):
    """Crops `[B, H', W', C]` to the height and width of a reference `[B, H, W, ...]` (top-left kept).

    Called as `CropToReference()([x, reference])`; undoes `PadToMultiple`.
    """

    def call(self, inputs):
        x, reference = inputs
        return x[:, : ops.shape(reference)[1], : ops.shape(reference)[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
