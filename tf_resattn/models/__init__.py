"""The four networks of the paper's comparison: `ResidualAttentionUNet`, built by `build_model`."""

from tf_resattn.models.builder import build_model
from tf_resattn.models.residual_attention_unet import VARIANTS, ResidualAttentionUNet

__all__ = ["VARIANTS", "ResidualAttentionUNet", "build_model"]
