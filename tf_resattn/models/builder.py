"""The Residual Attention U-Net and the three networks it is compared with.

| variant        | encoder blocks   | decoder attention | the paper's name   |
| -------------- | ---------------- | ----------------- | ------------------ |
| `resattn`      | ResNeXt          | LSH               | Residual Attention U-Net |
| `unet`         | two 3x3 convs    | none              | U-Net (baseline)   |
| `no_attention` | ResNeXt          | none              | M-A (ablation)     |
| `no_resnext`   | two 3x3 convs    | LSH               | M-R (ablation)     |

All four share the skeleton: `depth` encoder levels (block, then 2x2 max
pooling) with `base_filters * 2**level` filters, a bridge of two 3x3 convs,
`depth` decoder levels (`DecoderBlock`), a 1x1 convolution and a float32
softmax. Inputs of any height and width are zero-padded inside the model to a
multiple of `2**depth` and the output is cropped back.
"""

import keras

from tf_resattn.layers import ConvBlock, CropToReference, DecoderBlock, HistogramEqualization, PadToMultiple, ResNeXtBlock
from tf_resattn.layers.histogram_equalization import check_input_normalization
from tf_resattn.layers.lsh_settings import LSH_DEFAULTS, check_lsh_settings
from tf_resattn.layers.normalization import check_normalization

VARIANTS = ("resattn", "unet", "no_attention", "no_resnext")
_RESNEXT_ENCODER = {"resattn": True, "unet": False, "no_attention": True, "no_resnext": False}
_ATTENTION_DECODER = {"resattn": True, "unet": False, "no_attention": False, "no_resnext": True}


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"build_model: `{name}` must be a positive integer, got {value!r}.")


def _validate_input_shape(input_shape):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"build_model: `input_shape` must be (height, width, channels), got {input_shape!r}.")
    height, width, channels = input_shape
    for name, size in (("height", height), ("width", width)):
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"build_model: input {name} must be None or a positive integer, got {size!r}.")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"build_model: input channels must be a positive integer, got {channels!r}.")
    return tuple(input_shape)


def resolve_attention_levels(attention_levels, depth):
    """Turns `"all"`, `"none"` or a list of decoder levels into a sorted tuple.

    Level 0 is the full-resolution decoder level, level `depth - 1` the
    coarsest. Raises `ValueError` for unknown strings or levels out of range.
    """
    if attention_levels == "all":
        return tuple(range(depth))
    if attention_levels in ("none", None):
        return ()
    if isinstance(attention_levels, int) and not isinstance(attention_levels, bool):
        attention_levels = [attention_levels]
    if isinstance(attention_levels, str) or not all(
        isinstance(level, int) and 0 <= level < depth for level in attention_levels
    ):
        raise ValueError(
            f"build_model: `attention_levels` must be 'all', 'none' or decoder levels in [0, {depth}), "
            f"got {attention_levels!r}."
        )
    return tuple(sorted(set(attention_levels)))


@keras.saving.register_keras_serializable(package="tf_resattn")
class ResidualAttentionUNet(keras.Model):
    """A U-Net with optional ResNeXt encoder blocks and LSH-attention decoder blocks.

    Build it with `tf_resattn.build_model`, which documents the arguments.
    Input `[B, H, W, channels]` scaled to [0, 1]; output float32 class
    probabilities `[B, H, W, num_classes]`.
    """

    def __init__(
        self,
        variant="resattn",
        input_shape=(None, None, 1),
        num_classes=4,
        base_filters=32,
        depth=4,
        cardinality=8,
        bottleneck_width=4,
        attention_levels="all",
        num_heads=LSH_DEFAULTS["num_heads"],
        key_dim=LSH_DEFAULTS["key_dim"],
        bucket_size=LSH_DEFAULTS["bucket_size"],
        n_hashes=LSH_DEFAULTS["n_hashes"],
        max_buckets=LSH_DEFAULTS["max_buckets"],
        seed=0,
        norm="group",
        input_normalization="none",
        **kwargs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"build_model: unknown variant {variant!r}; choose one of {VARIANTS}.")
        input_shape = _validate_input_shape(input_shape)
        for name, value in (
            ("num_classes", num_classes),
            ("base_filters", base_filters),
            ("depth", depth),
            ("cardinality", cardinality),
            ("bottleneck_width", bottleneck_width),
        ):
            _positive_int(name, value)
        check_lsh_settings(num_heads, key_dim, bucket_size, n_hashes, max_buckets)
        if num_classes < 2:
            raise ValueError(f"build_model: `num_classes` must be at least 2 (background + one class), got {num_classes}.")
        if depth > 8:
            raise ValueError(f"build_model: `depth` of {depth} poolings is impossible to train; use 1 to 8.")
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"build_model: `seed` must be an integer or None, got {seed!r}.")
        check_normalization("build_model", norm)
        check_input_normalization("build_model", input_normalization)
        levels = resolve_attention_levels(attention_levels, depth) if _ATTENTION_DECODER[variant] else ()

        inputs = keras.Input(shape=input_shape, name="image")
        x = inputs
        if input_normalization == "equalize":
            x = HistogramEqualization(name="equalize")(inputs)
        elif input_normalization == "add_equalized":
            x = keras.layers.Concatenate(name="add_equalized")([inputs, HistogramEqualization(name="equalize")(inputs)])
        x = PadToMultiple(2**depth, name="pad")(x)
        skips = []
        for level in range(depth):
            filters = base_filters * 2**level
            if _RESNEXT_ENCODER[variant]:
                x = ResNeXtBlock(
                    filters, cardinality, bottleneck_width * 2**level, norm=norm, name=f"encoder_{level}"
                )(x)
            else:
                x = ConvBlock(filters, norm=norm, name=f"encoder_{level}")(x)
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool_{level}")(x)
        x = ConvBlock(base_filters * 2**depth, norm=norm, name="bridge")(x)
        for level in reversed(range(depth)):
            x = DecoderBlock(
                base_filters * 2**level,
                attention=level in levels,
                num_heads=num_heads,
                key_dim=key_dim,
                bucket_size=bucket_size,
                n_hashes=n_hashes,
                max_buckets=max_buckets,
                seed=None if seed is None else seed + level,
                norm=norm,
                name=f"decoder_{level}",
            )([x, skips[level]])
        logits = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
        logits = CropToReference(name="crop")([logits, inputs])
        outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.variant = variant
        self.image_shape = input_shape
        self.num_classes = num_classes
        self.base_filters = base_filters
        self.depth = depth
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        self.attention_levels = attention_levels if isinstance(attention_levels, str) else list(levels)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.max_buckets = max_buckets
        self.seed = seed
        self.norm = norm
        self.input_normalization = input_normalization

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "variant": self.variant,
            "input_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "base_filters": self.base_filters,
            "depth": self.depth,
            "cardinality": self.cardinality,
            "bottleneck_width": self.bottleneck_width,
            "attention_levels": self.attention_levels,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "bucket_size": self.bucket_size,
            "n_hashes": self.n_hashes,
            "max_buckets": self.max_buckets,
            "seed": self.seed,
            "norm": self.norm,
            "input_normalization": self.input_normalization,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_model(variant="resattn", name=None, **kwargs):
    """Builds the Residual Attention U-Net or one of its baselines.

    Keyword arguments and their defaults are those of `ResidualAttentionUNet`:
    `input_shape=(None, None, 1), num_classes=4, base_filters=32, depth=4,
    cardinality=8, bottleneck_width=4, attention_levels="all", num_heads=2,
    key_dim=32, bucket_size=64, n_hashes=4, max_buckets=256, seed=0,
    norm="group"`.

    Args:
        variant: `"resattn"` (the paper's model), `"unet"` (the baseline),
            `"no_attention"` (M-A: ResNeXt encoder, plain decoder) or
            `"no_resnext"` (M-R: plain encoder, attention decoder).
        input_shape: `(height, width, channels)`; height and width may be None
            (any size, e.g. 369x369 or non-square).
        num_classes: output classes including background (4 for MedSeg).
        base_filters: filters of the first level; doubled at every level.
        depth: number of poolings (encoder levels).
        cardinality: groups of each ResNeXt 3x3 convolution.
        bottleneck_width: channels per group at level 0, doubled per level
            (ResNeXt's "d").
        attention_levels: decoder levels with attention: `"all"`, `"none"` or
            a list, level 0 being full resolution.
        num_heads, key_dim: attention heads and their dimension.
        bucket_size, n_hashes, max_buckets: LSH settings (Reformer's defaults
            of 64 tokens per bucket and 4 rounds). These five take their
            defaults from, and are checked by, `tf_resattn.layers.lsh_settings`.
        seed: seed of the attention layers' hash rotations (level `l` uses
            `seed + l`), or None.
        norm: `"group"` (group normalisation, the default: the same in
            training and inference, independent of the batch size) or
            `"batch"` (batch normalisation).
        input_normalization: `"none"` (the images as given, the default),
            `"equalize"` (each image's grey-level histogram equalised inside the
            model, `tf_resattn.layers.HistogramEqualization`: slices windowed
            differently by another scanner then look alike; saved and exported
            with the model) or `"add_equalized"` (the equalised image as extra
            channels beside the original).
        name: model name; defaults to the variant.

    Returns:
        A `keras.Model` mapping `[B, H, W, channels]` images in [0, 1] to
        float32 softmax probabilities `[B, H, W, num_classes]`.

    Raises:
        ValueError: on an unknown variant or an impossible argument.

    Example:
    >>> model = build_model("resattn", input_shape=(64, 64, 1), base_filters=8, depth=2)
    >>> model.output_shape
    (None, 64, 64, 4)
    """
    return ResidualAttentionUNet(variant=variant, name=name or variant, **kwargs)
