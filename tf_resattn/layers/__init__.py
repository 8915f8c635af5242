"""Registered Keras layers of the Residual Attention U-Net."""

from tf_resattn.layers.conv_block import ConvBlock
from tf_resattn.layers.decoder_block import DecoderBlock
from tf_resattn.layers.dihedral import DihedralMean, DihedralTransform, DihedralViews
from tf_resattn.layers.group_norm import GroupNormalization
from tf_resattn.layers.histogram_equalization import HistogramEqualization
from tf_resattn.layers.layer_norm import LayerNormalization
from tf_resattn.layers.lsh_attention import LSHSelfAttention
from tf_resattn.layers.resnext_block import ResNeXtBlock
from tf_resattn.layers.spatial import CropToReference, PadToMultiple

__all__ = [
    "ConvBlock",
    "CropToReference",
    "DecoderBlock",
    "DihedralMean",
    "DihedralTransform",
    "DihedralViews",
    "GroupNormalization",
    "HistogramEqualization",
    "LayerNormalization",
    "LSHSelfAttention",
    "PadToMultiple",
    "ResNeXtBlock",
]
