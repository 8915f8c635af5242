"""Cross-validation training: configuration, folds, the one-fold trainer, reports and figures.

The command line is `scripts/cv_train.py` (`tf_resattn.training.cli.main`). TensorFlow-only parts
(`tf.data`, `tf.distribute`) live in `trainer.py` and `strategy.py`.
"""

from tf_resattn.training.config import PRESETS, ConfigError, TrainingConfig, resolve_config
from tf_resattn.training.folds import make_splits
from tf_resattn.training.report import write_report

__all__ = ["PRESETS", "ConfigError", "TrainingConfig", "make_splits", "resolve_config", "write_report"]
