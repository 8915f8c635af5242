"""Cross-validation training: configuration, folds, the one-fold trainer, reports and figures.

`cross_validation.cross_validate(config, out)` (also `tf_resattn.cross_validate`) runs a
cross-validation and returns what it wrote; the command line `scripts/cv_train.py`
(`tf_resattn.training.cli.main`) parses flags into a `TrainingConfig` and calls it. `run_data.py` loads
the data both it and `tune.py` work on. TensorFlow-only parts live in `feed.py` (how training
slices reach `fit`: `tf.data`, replicas, seeds per epoch; used by the trainer and the tuner) and
`strategy.py` (`tf.distribute`, precision, determinism).
"""

from tf_resattn.training.config import PRESETS, ConfigError, TrainingConfig, resolve_config
from tf_resattn.training.folds import make_splits
from tf_resattn.training.report import write_report

__all__ = ["PRESETS", "ConfigError", "TrainingConfig", "make_splits", "resolve_config", "write_report"]
