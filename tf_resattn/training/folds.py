"""Cross-validation splits: seeded k-fold (grouped when groups exist), made once and reused.

`splits.json` holds, per fold, the held-out test slices, the training slices and a validation
subset carved from the training folds (never from the test fold) for checkpoint selection:

    {"n_folds": 5, "seed": 0, "grouped": false, "names": [...],
     "folds": [{"train": [...], "val": [...], "test": [...]}, ...]}

Indices refer to the order of the `SliceSet`; `names` lets a reuse check that the data are the same.
Users may edit the file (nnU-Net style) before training, as long as it stays consistent.
"""

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold

from tf_resattn.training.config import ConfigError
from tf_resattn.training.files import read_json, write_json_atomic


def make_splits(names, n_folds, *, groups=None, val_fraction=0.1, seed=0):
    """Splits slices into `n_folds` test folds, each with train/val from the remaining folds.

    Args:
        names: N slice names (order = the `SliceSet` order).
        n_folds: number of folds (>= 2).
        groups: N group ids (e.g. patients) or None; with groups, `GroupKFold` keeps each group
            in one fold and the validation carve keeps groups whole too.
        val_fraction: share of the training slices (or groups) held out for validation (at least one).
        seed: seeds the shuffling of `KFold`/`GroupKFold` and of the validation carve.

    Returns:
        The `splits.json` dict described in the module docstring.

    Raises:
        ConfigError: fewer slices (or groups) than folds, or too few to leave training data.
    """
    n = len(names)
    index = np.arange(n)
    if groups is None:
        if n < n_folds:
            raise ConfigError(f"{n} slices cannot make {n_folds} folds; use --n-folds {max(2, n)} or fewer, or more data")
        folds = KFold(n_folds, shuffle=True, random_state=seed).split(index)
    else:
        n_groups = len(set(groups))
        if n_groups < n_folds:
            raise ConfigError(f"{n_groups} groups cannot make {n_folds} grouped folds; use --n-folds {max(2, n_groups)} or fewer, or --group-folds no")
        folds = GroupKFold(n_folds, shuffle=True, random_state=seed).split(index, groups=groups)
    result = []
    for k, (train_val, test) in enumerate(folds):
        train, val = _carve_validation(train_val, groups, val_fraction, seed + k)
        result.append({"train": sorted(map(int, train)), "val": sorted(map(int, val)), "test": sorted(map(int, test))})
    return {"n_folds": n_folds, "seed": seed, "grouped": groups is not None, "names": list(names), "folds": result}


def _carve_validation(train_val, groups, val_fraction, seed):
    """Splits training-fold indices into (train, val); val holds at least one slice (or group)."""
    if len(train_val) < 2:
        raise ConfigError(f"a training fold of {len(train_val)} slice(s) leaves none for validation; use fewer folds or more data")
    if groups is None:
        order = np.random.default_rng(seed).permutation(train_val)
        n_val = min(len(order) - 1, max(1, round(val_fraction * len(order))))
        return order[n_val:], order[:n_val]
    fold_groups = [groups[i] for i in train_val]
    n_groups = len(set(fold_groups))
    if n_groups < 2:
        raise ConfigError("a training fold holds one group only, none is left for validation; use fewer folds")
    n_val = min(n_groups - 1, max(1, round(val_fraction * n_groups)))
    carve = GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    train, val = next(carve.split(train_val, groups=fold_groups))
    return train_val[train], train_val[val]


def load_or_make_splits(path, names, n_folds, *, groups=None, val_fraction=0.1, seed=0):
    """Returns the splits stored at `path` (checked against the data), or makes and writes them.

    Raises:
        ConfigError: the stored splits were made for other slices or another number of folds.
    """
    if path.exists():
        splits = read_json(path)
        if splits.get("names") != list(names):
            raise ConfigError(f"{path} was made for other slices than --data gives; use a new --out (or delete it)")
        if splits.get("n_folds") != n_folds:
            raise ConfigError(f"{path} holds {splits.get('n_folds')} folds but {n_folds} were asked; use a new --out")
        check_splits(splits)
        return splits
    splits = make_splits(names, n_folds, groups=groups, val_fraction=val_fraction, seed=seed)
    return splits


def save_splits(path, splits):
    """Writes `splits.json` atomically."""
    write_json_atomic(path, splits)


def check_splits(splits):
    """Raises `ConfigError` unless every fold's train/val/test are disjoint and the tests cover every slice once."""
    n = len(splits["names"])
    tests = []
    for k, fold in enumerate(splits["folds"]):
        parts = [set(fold[p]) for p in ("train", "val", "test")]
        if parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]:
            raise ConfigError(f"splits.json fold {k}: train, val and test overlap; fix or delete the file")
        if not parts[0] or not parts[1] or not parts[2] or set().union(*parts) != set(range(n)):
            raise ConfigError(f"splits.json fold {k}: train/val/test must be non-empty and cover all {n} slices")
        tests.extend(fold["test"])
    if sorted(tests) != list(range(n)):
        raise ConfigError("splits.json: the test folds must cover every slice exactly once; fix or delete the file")


def parse_fold_list(text, n_folds):
    """Parses `--folds` ("0,3", "all" or None) into a sorted list of fold numbers.

    Raises:
        ConfigError: a fold number that is not an integer in [0, n_folds).
    """
    if text in (None, "all"):
        return list(range(n_folds))
    try:
        folds = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--folds takes fold numbers like 0,3 or 'all', got {text!r}") from None
    bad = [k for k in folds if not 0 <= k < n_folds]
    if bad or not folds:
        raise ConfigError(f"--folds {text}: fold numbers run from 0 to {n_folds - 1}")
    return folds


def read_fixed_split(path, names):
    """Reads a published train/test split and returns it as index lists into `names`.

    Args:
        path: JSON file with `"train"` and `"test"` lists of slice names, e.g.
            `../shared/data/medseg100/splits/infnet-50-48.json` (ids `"0000"` as in `img_0000.png`).
        names: the `SliceSet`'s slice names.

    Returns:
        `{"train": [...], "test": [...]}`, sorted indices into `names`.

    Raises:
        ConfigError: unreadable file, missing lists, names not in the data, or overlapping lists.
    """
    split = read_json(path)
    if not isinstance(split, dict) or not all(isinstance(split.get(part), list) for part in ("train", "test")):
        raise ConfigError(f"{path} must hold 'train' and 'test' lists of slice names")
    position = {name: i for i, name in enumerate(names)}
    result = {}
    for part in ("train", "test"):
        missing = [name for name in split[part] if name not in position]
        if missing:
            raise ConfigError(f"{path}: {part} slices {', '.join(map(str, missing[:5]))} are not in the data; give the data set the split was made for")
        result[part] = sorted(position[name] for name in split[part])
    if set(result["train"]) & set(result["test"]):
        raise ConfigError(f"{path}: train and test share slices; fix the split")
    return result
