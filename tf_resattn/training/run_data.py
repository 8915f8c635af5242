"""The slices a run's configuration names, and the groups its folds keep together (`cv_train.py` and `tune.py`)."""

import dataclasses

import numpy as np

from tf_resattn.data import check_labels, load_slices, synthetic_slices
from tf_resattn.data.display_window import estimate_display_window
from tf_resattn.data.framing import framed_pairs
from tf_resattn.training.config import ConfigError


def load_data(cfg):
    """The `SliceSet` that `cfg.data` names, at `cfg.image_size`; labels checked against `cfg.num_classes`.

    Its preprocessing records `cfg.source_window` (estimated from the slices for `"auto"`).
    """
    if cfg.data != "synthetic":
        slices = load_slices(
            cfg.data,
            image_size=cfg.image_size,
            num_classes=cfg.num_classes,
            input_kind=cfg.input_kind,
            hu_window=tuple(cfg.hu_window),
            lung_crop=cfg.lung_crop,
            lung_constraint=cfg.lung_constraint,
        )
    else:
        slices = synthetic_slices(
            n=cfg.synthetic_slices, image_size=cfg.image_size, seed=cfg.seed, hu_window=tuple(cfg.hu_window)
        )
        check_labels(slices.masks, cfg.num_classes, slices.names)
        if cfg.lung_crop is not None or cfg.lung_constraint is not None:
            slices = with_lung_framing(slices, cfg.lung_crop, cfg.lung_constraint)
    return with_source_window(slices, cfg.source_window, cfg.data)


def with_lung_framing(slices, lung_crop, lung_constraint):
    """Generated HU slices (made at the training size) cut to their lung squares and resized back, as files would be.

    The HU are read back from the windowed images (clipped to the window, which leaves the lung field's
    threshold of -320 HU inside it); the source masks are the generated ones.
    """
    low, high = slices.preprocessing.hu_window
    hu = low + slices.images[..., 0] * (high - low)
    prep = dataclasses.replace(slices.preprocessing, lung_crop=lung_crop, lung_constraint=lung_constraint)
    images, masks, regions = framed_pairs(hu, slices.masks, prep)
    return dataclasses.replace(
        slices,
        images=images,
        masks=masks,
        preprocessing=prep,
        source_masks=list(slices.masks),
        regions=regions,
        source_grey=[prep.grey(slice_hu) for slice_hu in hu],
    )


def with_source_window(slices, source_window, data):
    """`slices` with `source_window` (None, `"auto"` or (low, high) HU) recorded in their preprocessing."""
    if source_window is None:
        return slices
    if slices.preprocessing.input_kind != "uint8":
        raise ConfigError(f"--source-window is for 8-bit slices, but {data} holds Hounsfield units; drop it")
    if source_window == "auto":
        grey = np.round(slices.images[..., 0] * 255.0).astype(np.uint8)
        source_window = estimate_display_window(grey)
    preprocessing = dataclasses.replace(slices.preprocessing, source_window=tuple(source_window))
    return dataclasses.replace(slices, preprocessing=preprocessing)


def fold_groups(cfg, slices):
    """The group of each slice that the folds keep on one side, or None for folds by slice.

    `cfg.group_folds`: "auto" uses the data's groups when they have any, "yes" requires them,
    "no" ignores them.

    Raises:
        ConfigError: "yes", but the data give no groups.
    """
    if cfg.group_folds == "yes" and slices.groups is None:
        raise ConfigError(
            f"--group-folds yes, but {cfg.data} gives no groups (e.g. a 'group' or 'patient' column in manifest.csv)"
        )
    return slices.groups if cfg.group_folds != "no" else None
