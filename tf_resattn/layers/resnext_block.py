"""ResNeXt bottleneck block (aggregated residual transformations)."""

import keras

from tf_resattn.arguments import check_positive_int
from tf_resattn.layers.normalization import check_normalization, make_normalization


@keras.saving.register_keras_serializable(package="tf_resattn")
class ResNeXtBlock(keras.layers.Layer):
    """ResNeXt block: 1x1 reduce -> grouped 3x3 -> 1x1 expand, plus a shortcut.

    The grouped 3x3 convolution has `cardinality` groups of `bottleneck_width`
    channels each (ResNeXt's "C x d", e.g. 8x4d), so its width is
    `cardinality * bottleneck_width`. It runs as `cardinality` parallel
    convolutions on channel slices, concatenated (ResNeXt's aggregated
    branches): the same function as `Conv2D(groups=cardinality)`, which on
    TensorFlow's CPU kernels is 30-80x slower. Each convolution is followed by batch
    normalisation (group norm by default), and ReLU except after the expansion, where ReLU follows the
    sum with the shortcut. The shortcut is the identity when the input already
    has `filters` channels and `strides == 1`, otherwise a strided 1x1
    convolution with normalisation (a projection).

    Input `[B, H, W, C_in]` -> output `[B, ceil(H/strides), ceil(W/strides), filters]`.

    Args:
        filters: output channels.
        cardinality: number of groups (parallel paths) of the 3x3 convolution.
        bottleneck_width: channels per group.
        strides: 1, or 2 to halve the spatial size.
        norm: `"group"` (default) or `"batch"` normalisation.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> block = ResNeXtBlock(64, cardinality=8, bottleneck_width=4)
    >>> tuple(block(keras.ops.zeros((2, 32, 32, 16))).shape)
    (2, 32, 32, 64)

    References:
        Xie, Girshick, Dollar, Tu, He. Aggregated Residual Transformations for
        Deep Neural Networks. CVPR 2017.
    """

    def __init__(self, filters, cardinality=8, bottleneck_width=4, strides=1, norm="group", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("cardinality", cardinality), ("bottleneck_width", bottleneck_width)):
            check_positive_int(value, f"ResNeXtBlock: `{name}`")
        if strides not in (1, 2):
            raise ValueError(f"ResNeXtBlock: `strides` must be 1 or 2, got {strides!r}.")
        check_normalization("ResNeXtBlock", norm)
        self.filters = filters
        self.norm = norm
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        self.strides = strides

    def build(self, input_shape):
        width = self.cardinality * self.bottleneck_width
        inner_shape = tuple(input_shape[:-1]) + (width,)
        strided_shape = self.compute_output_shape(input_shape)[:-1] + (width,)

        def conv(filters, kernel_size, name, shape, **kwargs):
            layer = keras.layers.Conv2D(
                filters, kernel_size, padding="same", use_bias=False, name=name, dtype=self.dtype_policy, **kwargs
            )
            layer.build(shape)
            return layer

        def norm(name, shape):
            return make_normalization(self.norm, shape[-1], name, self.dtype_policy)

        self.reduce = conv(width, 1, "reduce", input_shape)
        group_shape = inner_shape[:-1] + (self.bottleneck_width,)
        self.branches = [
            conv(self.bottleneck_width, 3, f"branch_{i}", group_shape, strides=self.strides)
            for i in range(self.cardinality)
        ]
        self.expand = conv(self.filters, 1, "expand", strided_shape)
        self.norms = [norm("norm_0", inner_shape), norm("norm_1", strided_shape)]
        self.norms.append(norm("norm_2", self.compute_output_shape(input_shape)))
        self.needs_projection = input_shape[-1] != self.filters or self.strides != 1
        if self.needs_projection:
            self.projection = conv(self.filters, 1, "projection", input_shape, strides=self.strides)
            self.projection_norm = norm("projection_norm", self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = keras.activations.relu(self.norms[0](self.reduce(inputs), training=training))
        slices = keras.ops.split(x, self.cardinality, axis=-1)
        x = keras.ops.concatenate([branch(part) for branch, part in zip(self.branches, slices)], axis=-1)
        x = keras.activations.relu(self.norms[1](x, training=training))
        x = self.norms[2](self.expand(x), training=training)
        shortcut = inputs
        if self.needs_projection:
            shortcut = self.projection_norm(self.projection(inputs), training=training)
        return keras.activations.relu(x + shortcut)

    def compute_output_shape(self, input_shape):
        def shrink(size):
            return None if size is None else -(-size // self.strides)

        return (input_shape[0], shrink(input_shape[1]), shrink(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "cardinality": self.cardinality,
                "bottleneck_width": self.bottleneck_width,
                "strides": self.strides,
                "norm": self.norm,
            }
        )
        return config
