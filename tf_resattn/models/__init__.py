"""The four networks of the paper's comparison, built by `build_model`."""

from tf_resattn.models.builder import VARIANTS, build_model

__all__ = ["VARIANTS", "build_model"]
