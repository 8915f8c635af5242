"""The decoder level of the Residual Attention U-Net."""

import keras
from keras import ops

from tf_resattn.arguments import check_positive_int
from tf_resattn.layers.conv_block import ConvBlock
from tf_resattn.layers.layer_norm import LayerNormalization
from tf_resattn.layers.lsh_attention import LSHSelfAttention
from tf_resattn.layers.lsh_settings import LSH_DEFAULTS, check_lsh_settings


@keras.saving.register_keras_serializable(package="tf_resattn")
class DecoderBlock(keras.layers.Layer):
    """Upsample, join the encoder skip, attend (optionally), convolve.

    1. 2x2 transposed convolution with stride 2 to `filters` channels;
    2. concatenation with the encoder skip (`2 * filters` channels when the
       skip has `filters`);
    3. with `attention=True`, LSH self-attention over the flattened `H x W`
       map as a residual branch, `x + attention(layer_norm(x))`, whose output
       projection starts at zero, so an untrained network is exactly a U-Net
       and learns how much attention to use;
    4. two 3x3 convolutions (`ConvBlock(filters)`).

    Called as `DecoderBlock(...)([x, skip])` with `x [B, h, w, C]` and
    `skip [B, 2h, 2w, C_skip]`; returns `[B, 2h, 2w, filters]`.

    Args:
        filters: output channels.
        attention: whether to apply the LSH attention branch.
        num_heads, key_dim, bucket_size, n_hashes, max_buckets, seed: passed to
            `LSHSelfAttention`; checked (by `check_lsh_settings`) with or
            without attention.
        norm: `"group"` (default) or `"batch"` normalisation in the convolutions.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> block = DecoderBlock(16, num_heads=2, key_dim=8, bucket_size=16, seed=0)
    >>> tuple(block([keras.ops.zeros((1, 8, 8, 32)), keras.ops.zeros((1, 16, 16, 16))]).shape)
    (1, 16, 16, 16)
    """

    def __init__(
        self,
        filters,
        attention=True,
        num_heads=LSH_DEFAULTS["num_heads"],
        key_dim=LSH_DEFAULTS["key_dim"],
        bucket_size=LSH_DEFAULTS["bucket_size"],
        n_hashes=LSH_DEFAULTS["n_hashes"],
        max_buckets=LSH_DEFAULTS["max_buckets"],
        seed=None,
        norm="group",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int(filters, "DecoderBlock: `filters`")
        check_lsh_settings(num_heads, key_dim, bucket_size, n_hashes, max_buckets)
        self.filters = filters
        self.attention = attention
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.max_buckets = max_buckets
        self.seed = seed
        self.norm = norm
        self.upsample = keras.layers.Conv2DTranspose(filters, 2, strides=2, name="upsample", dtype=self.dtype_policy)
        self.convs = ConvBlock(filters, norm=norm, name="convs", dtype=self.dtype_policy)
        if attention:
            self.attention_norm = LayerNormalization(name="attention_norm", dtype=self.dtype_policy)
            self.lsh_attention = LSHSelfAttention(
                num_heads,
                key_dim,
                bucket_size=bucket_size,
                n_hashes=n_hashes,
                max_buckets=max_buckets,
                seed=seed,
                output_kernel_initializer="zeros",
                name="lsh_attention",
                dtype=self.dtype_policy,
            )

    def build(self, input_shape):
        x_shape, skip_shape = input_shape
        self.upsample.build(x_shape)
        joined = (skip_shape[0], skip_shape[1], skip_shape[2], self.filters + skip_shape[-1])
        if self.attention:
            tokens = (joined[0], None, joined[-1])
            self.attention_norm.build(tokens)
            self.lsh_attention.build(tokens)
        self.convs.build(joined)

    def _attend(self, x):
        """Residual LSH attention over the `H*W` positions of `x [B, H, W, C]`."""
        batch, height, width, channels = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2], x.shape[-1]
        tokens = ops.reshape(x, (batch, height * width, channels))
        attended = self.lsh_attention(self.attention_norm(tokens))
        return x + ops.reshape(attended, (batch, height, width, channels))

    def call(self, inputs, training=None):
        x, skip = inputs
        x = ops.concatenate([self.upsample(x), skip], axis=-1)
        if self.attention:
            x = self._attend(x)
        return self.convs(x, training=training)

    def compute_output_shape(self, input_shape):
        _, skip_shape = input_shape
        return tuple(skip_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "attention": self.attention,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "bucket_size": self.bucket_size,
                "n_hashes": self.n_hashes,
                "max_buckets": self.max_buckets,
                "seed": self.seed,
                "norm": self.norm,
            }
        )
        return config
