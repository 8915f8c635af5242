"""`ResidualAttentionUNet`: the Residual Attention U-Net and the three networks it is compared with.

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

The class owns its arguments: their defaults (`default_arguments`), their
checks (`check_arguments`, run before anything is built) and the words some
of them take (`ARGUMENT_CHOICES`). The training configuration reads all three
from here.
"""

import inspect

import keras

from tf_resattn.arguments import check_positive_int, is_positive_int
from tf_resattn.layers import (
    ConvBlock,
    CropToReference,
    DecoderBlock,
    HistogramEqualization,
    PadToMultiple,
    ResNeXtBlock,
)
from tf_resattn.layers.histogram_equalization import INPUT_NORMALIZATIONS, check_input_normalization
from tf_resattn.layers.lsh_settings import LSH_DEFAULTS, check_lsh_settings
from tf_resattn.layers.normalization import NORMALIZATIONS, check_normalization

VARIANTS = ("resattn", "unet", "no_attention", "no_resnext")
_RESNEXT_ENCODER = {"resattn": True, "unet": False, "no_attention": True, "no_resnext": False}
_ATTENTION_DECODER = {"resattn": True, "unet": False, "no_attention": False, "no_resnext": True}

ARGUMENT_CHOICES = {"variant": VARIANTS, "norm": NORMALIZATIONS, "input_normalization": INPUT_NORMALIZATIONS}
"""The arguments that take one of a few words, and those words."""

MAX_DEPTH = 8
"""The most poolings a model may have; the input is padded to a multiple of `2**depth` pixels (256 at 8)."""

_OWNER = "ResidualAttentionUNet"


@keras.saving.register_keras_serializable(package="tf_resattn")
class ResidualAttentionUNet(keras.Model):
    """A U-Net with optional ResNeXt encoder blocks and LSH-attention decoder blocks.

    Maps images `[B, H, W, channels]` scaled to [0, 1] to float32 class
    probabilities `[B, H, W, num_classes]` (a softmax over the last axis). Any
    `H` and `W` (e.g. 369x369 or non-square): the model pads to a multiple of
    `2**depth` inside and crops the output back. `tf_resattn.build_model` is
    the same with the variant's name as the model's default name. The five
    LSH settings (`num_heads` to `max_buckets`) take their defaults from, and
    are checked by, `tf_resattn.layers.lsh_settings`.

    Args:
        variant: `"resattn"` (the paper's model), `"unet"` (the baseline),
            `"no_attention"` (M-A: ResNeXt encoder, plain decoder) or
            `"no_resnext"` (M-R: plain encoder, attention decoder).
        input_shape: `(height, width, channels)`; height and width may be None
            (any size).
        num_classes: output classes including background (>= 2; 4 for MedSeg).
        base_filters: filters of the first level; doubled at every level.
        depth: number of poolings (encoder levels), 1 to 8.
        cardinality: groups of each ResNeXt 3x3 convolution.
        bottleneck_width: channels per group at level 0, doubled per level
            (ResNeXt's "d").
        attention_levels: decoder levels with attention: `"all"`, `"none"` or
            a list, level 0 being full resolution and `depth - 1` the coarsest.
            Only the variants with an attention decoder read it.
        num_heads: attention heads.
        key_dim: dimensions of each head.
        bucket_size: tokens per LSH chunk (Reformer's 64).
        n_hashes: LSH hash rounds (Reformer's 4).
        max_buckets: the cap on hash buckets per round (even, >= 2).
        seed: seed of the attention layers' hash rotations (level `l` uses
            `seed + l`), or None.
        norm: `"group"` (group normalisation, the default: the same in
            training and inference, independent of the batch size) or
            `"batch"` (batch normalisation).
        input_normalization: `"none"` (the images as given, the default),
            `"equalize"` (each image's grey-level histogram equalised inside the
            model, `tf_resattn.layers.HistogramEqualization`; saved and exported
            with it) or `"add_equalized"` (the equalised image as extra
            channels beside the original).
        **kwargs: standard `keras.Model` arguments (`name`, `trainable`).

    Raises:
        ValueError: one line naming the first impossible argument and the
            value it got (`check_arguments`), or attention levels that the
            model's `depth` does not have.

    Example:
    >>> model = ResidualAttentionUNet("resattn", input_shape=(64, 64, 1), base_filters=8, depth=2)
    >>> model.output_shape
    (None, 64, 64, 4)
    >>> ResidualAttentionUNet.from_config(model.get_config()).count_params() == model.count_params()
    True

    References:
        - X. Chen, L. Yao, Y. Zhang. Residual Attention U-Net for Automated
          Multi-Class Segmentation of COVID-19 Chest CT Images. 2020,
          https://arxiv.org/abs/2004.05645
        - O. Ronneberger, P. Fischer, T. Brox. U-Net: Convolutional Networks
          for Biomedical Image Segmentation. MICCAI 2015,
          https://arxiv.org/abs/1505.04597
        - S. Xie et al. Aggregated Residual Transformations for Deep Neural
          Networks (ResNeXt). CVPR 2017, https://arxiv.org/abs/1611.05431
        - N. Kitaev, L. Kaiser, A. Levskaya. Reformer: The Efficient
          Transformer. ICLR 2020, https://arxiv.org/abs/2001.04451
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
        # === Arguments ===
        check_arguments(
            dict(
                variant=variant,
                input_shape=input_shape,
                num_classes=num_classes,
                base_filters=base_filters,
                depth=depth,
                cardinality=cardinality,
                bottleneck_width=bottleneck_width,
                attention_levels=attention_levels,
                num_heads=num_heads,
                key_dim=key_dim,
                bucket_size=bucket_size,
                n_hashes=n_hashes,
                max_buckets=max_buckets,
                seed=seed,
                norm=norm,
                input_normalization=input_normalization,
            )
        )
        levels = resolve_attention_levels(attention_levels, depth) if _ATTENTION_DECODER[variant] else ()

        # === Functional model ===
        inputs = keras.Input(shape=tuple(input_shape), name="image")
        x = _normalized_input(inputs, input_normalization)
        x = PadToMultiple(2**depth, name="pad")(x)
        skips = []
        for level in range(depth):
            filters = base_filters * 2**level
            if _RESNEXT_ENCODER[variant]:
                x = ResNeXtBlock(filters, cardinality, bottleneck_width * 2**level, norm=norm, name=f"encoder_{level}")(
                    x
                )
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

        # === Config ===
        self.variant = variant
        self.image_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.base_filters = base_filters
        self.depth = depth
        self.cardinality = cardinality
        self.bottleneck_width = bottleneck_width
        self.attention_levels = (
            attention_levels
            if attention_levels is None or isinstance(attention_levels, str)
            else list(_listed_levels(attention_levels))
        )
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.max_buckets = max_buckets
        self.seed = seed
        self.norm = norm
        self.input_normalization = input_normalization

    def get_config(self):
        """Every constructor argument (`input_shape` as a list), with the model's name and trainability."""
        arguments = {name: getattr(self, name) for name in default_arguments() if name != "input_shape"}
        return {"name": self.name, "trainable": self.trainable, **arguments, "input_shape": list(self.image_shape)}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the model from `get_config()`; a `.keras` file written before `max_buckets`, `norm` or
        `input_normalization` existed gets their defaults, which is what it was built with."""
        return cls(**config)


def default_arguments():
    """`{name: default}` of every `ResidualAttentionUNet` argument, in the constructor's order.

    >>> defaults = default_arguments()
    >>> list(defaults)[:3], defaults["norm"]
    (['variant', 'input_shape', 'num_classes'], 'group')
    """
    parameters = inspect.signature(ResidualAttentionUNet.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def check_arguments(arguments):
    """Raises a one-line `ValueError` naming the first impossible argument and the value it got.

    Each argument is checked on its own, the LSH settings together
    (`check_lsh_settings`). Whether the attention levels exist at `depth` is
    left to `resolve_attention_levels` when the model is built: a search space
    or a configuration with several variants may pair them otherwise first.

    Args:
        arguments: a mapping of some or all `ResidualAttentionUNet` arguments;
            those it leaves out take their defaults.
    """
    defaults = default_arguments()
    unknown = sorted(set(arguments) - set(defaults))
    if unknown:
        raise ValueError(f"{_OWNER}: unknown argument(s) {', '.join(unknown)}; choose from {', '.join(defaults)}.")
    values = {**defaults, **arguments}
    if values["variant"] not in VARIANTS:
        raise ValueError(f"{_OWNER}: unknown variant {values['variant']!r}; choose one of {VARIANTS}.")
    _check_input_shape(values["input_shape"])
    for name in ("num_classes", "base_filters", "depth", "cardinality", "bottleneck_width"):
        check_positive_int(values[name], f"{_OWNER}: `{name}`")
    if values["num_classes"] < 2:
        raise ValueError(
            f"{_OWNER}: `num_classes` must be at least 2 (background + one class), got {values['num_classes']}."
        )
    if values["depth"] > MAX_DEPTH:
        raise ValueError(
            f"{_OWNER}: `depth` of {values['depth']} poolings is impossible to train; use 1 to {MAX_DEPTH}."
        )
    if values["attention_levels"] != "all":
        _listed_levels(values["attention_levels"])
    check_lsh_settings(*(values[name] for name in LSH_DEFAULTS))
    seed = values["seed"]
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"{_OWNER}: `seed` must be an integer or None, got {seed!r}.")
    check_normalization(_OWNER, values["norm"])
    check_input_normalization(_OWNER, values["input_normalization"])


def resolve_attention_levels(attention_levels, depth):
    """Turns `"all"`, `"none"` or a list of decoder levels into a sorted tuple of levels below `depth`.

    Level 0 is the full-resolution decoder level, level `depth - 1` the
    coarsest. Raises `ValueError` for an unknown word or a level the model does not have.

    >>> resolve_attention_levels("all", 3), resolve_attention_levels([2, 0, 2], 3), resolve_attention_levels("none", 3)
    ((0, 1, 2), (0, 2), ())
    """
    if attention_levels == "all":
        return tuple(range(depth))
    levels = _listed_levels(attention_levels)
    if levels and levels[-1] >= depth:
        raise ValueError(
            f"{_OWNER}: `attention_levels` {list(levels)} name decoder level {levels[-1]}, but with depth={depth} "
            f"the levels are 0 to {depth - 1}; give lower levels or a larger depth."
        )
    return levels


def _listed_levels(attention_levels):
    """`"none"` or None -> (); a level or a list of levels -> their sorted tuple; anything else: `ValueError`."""
    if attention_levels is None or attention_levels == "none":
        return ()
    levels = [attention_levels] if isinstance(attention_levels, int) else attention_levels
    if not isinstance(levels, (list, tuple)) or not all(_is_level(level) for level in levels):
        raise ValueError(
            f"{_OWNER}: `attention_levels` must be 'all', 'none' or decoder levels (whole numbers from 0, the "
            f"full-resolution level), got {attention_levels!r}."
        )
    return tuple(sorted(set(levels)))


def _is_level(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_input_shape(input_shape):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"{_OWNER}: `input_shape` must be (height, width, channels), got {input_shape!r}.")
    height, width, channels = input_shape
    for name, size in (("height", height), ("width", width)):
        if size is not None and not is_positive_int(size):
            raise ValueError(f"{_OWNER}: input {name} must be None or a positive integer, got {size!r}.")
    check_positive_int(channels, f"{_OWNER}: input channels")


def _normalized_input(inputs, input_normalization):
    """The images as the encoder sees them: as given, equalised, or both side by side (`[B, H, W, 2C]`)."""
    if input_normalization == "equalize":
        return HistogramEqualization(name="equalize")(inputs)
    if input_normalization == "add_equalized":
        return keras.layers.Concatenate(name="add_equalized")([inputs, HistogramEqualization(name="equalize")(inputs)])
    return inputs
