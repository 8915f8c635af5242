"""Two 3x3 convolutions, each followed by batch normalisation and ReLU: the U-Net's basic block."""

import keras

from tf_resattn.arguments import check_positive_int
from tf_resattn.layers.normalization import check_normalization, make_normalization


@keras.saving.register_keras_serializable(package="tf_resattn")
class ConvBlock(keras.layers.Layer):
    """(3x3 conv -> normalisation -> ReLU) x 2, the plain U-Net block.

    Input `[B, H, W, C_in]` -> output `[B, H, W, filters]`.

    Args:
        filters: output channels of both convolutions.
        norm: `"group"` (default) or `"batch"` normalisation.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> tuple(ConvBlock(16)(keras.ops.zeros((1, 24, 24, 3))).shape)
    (1, 24, 24, 16)
    """

    def __init__(self, filters, norm="group", **kwargs):
        super().__init__(**kwargs)
        check_positive_int(filters, "ConvBlock: `filters`")
        check_normalization("ConvBlock", norm)
        self.filters = filters
        self.norm = norm

    def build(self, input_shape):
        self.convs, self.norms = [], []
        shape = input_shape
        for i in range(2):
            conv = keras.layers.Conv2D(
                self.filters, 3, padding="same", use_bias=False, name=f"conv_{i}", dtype=self.dtype_policy
            )
            conv.build(shape)
            shape = self.compute_output_shape(shape)
            norm = make_normalization(self.norm, self.filters, f"norm_{i}", self.dtype_policy)
            self.convs.append(conv)
            self.norms.append(norm)

    def call(self, inputs, training=None):
        x = inputs
        for conv, norm in zip(self.convs, self.norms):
            x = keras.activations.relu(norm(conv(x), training=training))
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "norm": self.norm})
        return config
