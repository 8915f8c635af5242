"""The slices a run's configuration names, and the groups its folds keep together (`cv_train.py` and `tune.py`)."""

from tf_resattn.data import check_labels, load_slices, synthetic_slices
from tf_resattn.training.config import ConfigError


def load_data(cfg):
    """The `SliceSet` that `cfg.data` names, at `cfg.image_size`; labels checked against `cfg.num_classes`."""
    if cfg.data != "synthetic":
        return load_slices(cfg.data, image_size=cfg.image_size, num_classes=cfg.num_classes,
                           input_kind=cfg.input_kind, hu_window=tuple(cfg.hu_window))
    slices = synthetic_slices(n=cfg.synthetic_slices, image_size=cfg.image_size, seed=cfg.seed, hu_window=tuple(cfg.hu_window))
    check_labels(slices.masks, cfg.num_classes, slices.names)
    return slices


def fold_groups(cfg, slices):
    """The group of each slice that the folds keep on one side, or None for folds by slice.

    `cfg.group_folds`: "auto" uses the data's groups when they have any, "yes" requires them,
    "no" ignores them.

    Raises:
        ConfigError: "yes", but the data give no groups.
    """
    if cfg.group_folds == "yes" and slices.groups is None:
        raise ConfigError(f"--group-folds yes, but {cfg.data} gives no groups (e.g. a 'group' or 'patient' column in manifest.csv)")
    return slices.groups if cfg.group_folds != "no" else None
