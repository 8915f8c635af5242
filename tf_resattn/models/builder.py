"""`build_model`: the package's entry point to `ResidualAttentionUNet` and its baselines.

`.keras` files find the class by its registered name, `tf_resattn>ResidualAttentionUNet`, so
those written while it lived in this module load as before (after `import tf_resattn`).
"""

from tf_resattn.models.residual_attention_unet import ResidualAttentionUNet


def build_model(variant="resattn", name=None, **kwargs):
    """Builds the Residual Attention U-Net or one of its baselines.

    Args:
        variant: `"resattn"` (the paper's model), `"unet"` (the baseline),
            `"no_attention"` (M-A) or `"no_resnext"` (M-R).
        name: model name; defaults to the variant.
        **kwargs: the other arguments of `ResidualAttentionUNet`, which
            documents them and their defaults (`input_shape=(None, None, 1)`,
            `num_classes=4`, `base_filters=32`, `depth=4`, ...).

    Returns:
        A `ResidualAttentionUNet` mapping `[B, H, W, channels]` images in [0, 1]
        to float32 softmax probabilities `[B, H, W, num_classes]`.

    Raises:
        ValueError: on an unknown variant or an impossible argument, naming it
            and the value it got.

    Example:
    >>> model = build_model("resattn", input_shape=(64, 64, 1), base_filters=8, depth=2)
    >>> model.output_shape, model.name
    ((None, 64, 64, 4), 'resattn')
    """
    return ResidualAttentionUNet(variant=variant, name=name or variant, **kwargs)
