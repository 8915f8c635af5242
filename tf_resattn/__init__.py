"""Residual Attention U-Net for multi-class COVID-19 lung CT segmentation.

`build_model` returns the paper's network (or one of its baselines) as a Keras
3 model, a `ResidualAttentionUNet`; `layers`, `losses` and `metrics` hold the registered building blocks;
`from_pretrained(name)` loads a released model and `segment(volume, spacing=...)`
segments a NumPy volume with one; `predict(model, input_path, out_dir)` segments
scan files into label maps and a report, and `export_model(model, out_dir)` writes
a SavedModel and TFLite files. `cross_validate(config, out)` and `tune(config, out)`
are the training and tuning command lines as functions (`tf_resattn.training`,
`tf_resattn.tuning`).

Importing the package changes nothing outside it (environment, file
descriptors, TensorFlow's settings); the command lines set those up with
`tf_resattn_process.configure_process()`, an opt-in call for scripts too.
"""

import importlib

from tf_resattn import layers, losses, metrics
from tf_resattn.models import VARIANTS, ResidualAttentionUNet, build_model
from tf_resattn.version import __version__

_LAZY_NAMES = {
    "from_pretrained": ("tf_resattn.inference.pretrained", "from_pretrained"),
    "segment": ("tf_resattn.inference.pretrained", "segment"),
    "predict": ("tf_resattn.inference.predict", "predict_path"),
    "export_model": ("tf_resattn.export.exporter", "export_model"),
    "cross_validate": ("tf_resattn.training.cross_validation", "cross_validate"),
    "tune": ("tf_resattn.tuning.tune", "tune"),
}
"""Public functions imported on first use, as name -> (module, attribute): they need the optional extras."""

__all__ = [
    "VARIANTS",
    "ResidualAttentionUNet",
    "build_model",
    "layers",
    "losses",
    "metrics",
    "__version__",
    *_LAZY_NAMES,
]


def __getattr__(name):
    """The functions of `_LAZY_NAMES`, imported on first use."""
    if name in _LAZY_NAMES:
        module, attribute = _LAZY_NAMES[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tf_resattn' has no attribute {name!r}")
