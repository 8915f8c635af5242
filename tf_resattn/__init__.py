"""Residual Attention U-Net for multi-class COVID-19 lung CT segmentation.

`build_model` returns the paper's network (or one of its baselines) as a Keras
3 model; `layers`, `losses` and `metrics` hold the registered building blocks;
`from_pretrained(name)` loads a released model and `segment(volume, spacing=...)`
segments a NumPy volume with one.

Importing the package changes nothing outside it (environment, file
descriptors, TensorFlow's settings); the command lines set those up with
`tf_resattn_process.configure_process()`, an opt-in call for scripts too.
"""

from tf_resattn import layers, losses, metrics
from tf_resattn.models import VARIANTS, build_model
from tf_resattn.version import __version__

__all__ = ["VARIANTS", "build_model", "from_pretrained", "layers", "losses", "metrics", "segment", "__version__"]

_INFERENCE_NAMES = ("from_pretrained", "segment")


def __getattr__(name):
    """`from_pretrained` and `segment` (`tf_resattn.inference.pretrained`), imported on first use."""
    if name in _INFERENCE_NAMES:
        from tf_resattn.inference import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module 'tf_resattn' has no attribute {name!r}")
