"""Residual Attention U-Net for multi-class COVID-19 lung CT segmentation.

`build_model` returns the paper's network (or one of its baselines) as a Keras
3 model; `layers`, `losses` and `metrics` hold the registered building blocks.
"""

from tf_resattn import quiet_import

quiet_import.import_tensorflow()

from tf_resattn import layers, losses, metrics
from tf_resattn.models import VARIANTS, build_model
from tf_resattn.version import __version__

__all__ = ["VARIANTS", "build_model", "layers", "losses", "metrics", "__version__"]
