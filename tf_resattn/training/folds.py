"""Cross-validation splits: seeded k-fold (grouped when groups exist), made once and reused.

`splits.json` holds, per fold, the held-out test slices, the training slices and a validation
subset carved from the training folds (never from the test fold) for checkpoint selection:

    {"n_folds": 5, "seed": 0, "grouped": false, "names": [...],
     "folds": [{"train": [...], "val": [...], "test": [...]}, ...]}

Indices refer to the order of the `SliceSet`; `names` lets a reuse check that the data are the same.
Users may edit the file (nnU-Net style) before training, as long as it stays consistent.

A fixed split (`cv_train.py --splits FILE`, e.g. the published 50/48 split of medseg100) is one
fold whose test part the file names; slices in neither part are left out. `read_split_file` turns
such a file (`{"name": ..., "train": [ids], "test": [ids]}`, ids being slice names) into the dict
above with `"fixed_split": name`, carving the validation slices from the training ids only; with
`--n-folds K` it makes K folds of the training ids instead, all tested on the file's test ids
(`fixed_split_folds`), whose models `predict.py` averages. A full `splits.json` is taken as it is.
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.data.splits import fixed_split_indices, read_split_json
from tf_resattn.training.config import ConfigError
from tf_resattn.training.files import read_json, write_json_atomic

model_selection = optional.module("sklearn.model_selection", "train")


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
    index = np.arange(len(names))
    result = []
    for k, (train_val, test) in enumerate(_k_way_split(index, n_folds, groups, seed)):
        train, val = _carve_validation(train_val, groups, val_fraction, seed + k)
        result.append({"train": sorted(map(int, train)), "val": sorted(map(int, val)), "test": sorted(map(int, test))})
    return {"n_folds": n_folds, "seed": seed, "grouped": groups is not None, "names": list(names), "folds": result}


def _k_way_split(index, n_folds, groups, seed, items="slices", group_items="groups"):
    """Seeded `KFold` of `index` (`GroupKFold` when `groups`, one id per entry of `index`): (kept, held-out) positions.

    Raises `ConfigError` naming `items` (or `group_items`) when there are fewer of them than folds.
    """
    if groups is None:
        if len(index) < n_folds:
            raise ConfigError(
                f"{len(index)} {items} cannot make {n_folds} folds; use --n-folds {max(2, len(index))} or fewer, or more data"
            )
        return model_selection.KFold(n_folds, shuffle=True, random_state=seed).split(index)
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise ConfigError(
            f"{n_groups} {group_items} cannot make {n_folds} grouped folds; use --n-folds {max(2, n_groups)} or fewer, or --group-folds no"
        )
    return model_selection.GroupKFold(n_folds, shuffle=True, random_state=seed).split(index, groups=groups)


def _carve_validation(train_val, groups, val_fraction, seed):
    """Splits training-fold indices into (train, val); val holds at least one slice (or group)."""
    if len(train_val) < 2:
        raise ConfigError(
            f"a training fold of {len(train_val)} slice(s) leaves none for validation; use fewer folds or more data"
        )
    if groups is None:
        order = np.random.default_rng(seed).permutation(train_val)
        n_val = min(len(order) - 1, max(1, round(val_fraction * len(order))))
        return order[n_val:], order[:n_val]
    fold_groups = [groups[i] for i in train_val]
    n_groups = len(set(fold_groups))
    if n_groups < 2:
        raise ConfigError("a training fold holds one group only, none is left for validation; use fewer folds")
    n_val = min(n_groups - 1, max(1, round(val_fraction * n_groups)))
    carve = model_selection.GroupShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    train, val = next(carve.split(train_val, groups=fold_groups))
    return train_val[train], train_val[val]


def train_all_split(names, *, groups=None, val_fraction=0.1, seed=0):
    """nnU-Net's "fold all": every slice trains but a validation share (for the best epoch); no test fold.

    Returns:
        A splits dict of one fold (`"train_all": True`, its "test" empty), saved as `splits.json`.
    """
    train, val = _carve_validation(np.arange(len(names)), groups, val_fraction, seed)
    fold = {"train": sorted(map(int, train)), "val": sorted(map(int, val)), "test": []}
    return {
        "n_folds": 1,
        "seed": seed,
        "grouped": groups is not None,
        "train_all": True,
        "names": list(names),
        "folds": [fold],
    }


def fold_folder(splits, fold):
    """The folder name of fold `fold` of `splits`: `fold_<k>`, or `fold_all` for `train_all_split`."""
    return "fold_all" if splits.get("train_all") else f"fold_{fold}"


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


def read_split_file(path, names, *, groups=None, val_fraction=0.1, seed=0, n_folds=1):
    """Reads `--splits FILE`: a fixed train/test split, or a full `splits.json`; checked against `names`.

    Args:
        path: the JSON file.
        names: the slice names of the loaded data, in `SliceSet` order.
        groups: group ids of the slices (or None): the validation carve keeps groups whole.
        val_fraction: share of the training ids held out for choosing the best epoch (one fold).
        seed: seeds the validation carve, or the folds of the training ids.
        n_folds: 1 for one model (validation carved from the training ids), or K >= 2 for K fold
            models as nnU-Net trains them (`fixed_split_folds`); ignored for a full `splits.json`.

    Returns:
        The `splits.json` dict (module docstring); a fixed split has `"fixed_split"` and every fold
        tests the file's test ids.

    Raises:
        ConfigError: more folds than training ids, or a `splits.json` made for other slices.
        DataError: a missing or unparsable file, or a fixed split that `tf_resattn.data.splits`
            refuses (ids missing from the data, train and test overlapping, an empty part).
    """
    path = pathlib.Path(path)
    content = read_split_json(path)
    if isinstance(content, dict) and "folds" in content:
        if content.get("names") != list(names):
            raise ConfigError(f"--splits {path} was made for other slices than --data gives; use the run it came from")
        check_splits(content)
        return content
    parts = fixed_split_indices(content, names, path)
    if n_folds > 1:
        folds = fixed_split_folds(parts, n_folds, groups=groups, seed=seed)
    else:
        train, val = _carve_validation(np.array(parts["train"]), groups, val_fraction, seed)
        folds = [{"train": sorted(map(int, train)), "val": sorted(map(int, val)), "test": parts["test"]}]
    return {
        "n_folds": len(folds),
        "seed": seed,
        "grouped": groups is not None,
        "names": list(names),
        "fixed_split": str(content.get("name", path.stem)),
        "folds": folds,
    }


def fixed_split_folds(parts, n_folds, *, groups=None, seed=0):
    """nnU-Net's folds of a fixed split: K models on the training ids, all tested on the test ids.

    Args:
        parts: `{"train": [...], "test": [...]}` index lists (`fixed_split_indices`).
        n_folds: K >= 2. The training ids are split K ways (`KFold`, or `GroupKFold` with groups,
            seeded); fold k trains on the other K - 1 parts, picks its best epoch on part k (each
            training id validates once) and is tested on the split's test ids. Averaging the K
            models (`predict.py --model RUN_DIR`) is the fold ensemble.
        groups: group ids of all slices, or None.
        seed: seeds the folds.

    Returns:
        K fold dicts `{"train", "val", "test"}`. Raises `ConfigError` when there are fewer
        training ids (or groups) than folds.
    """
    train_ids = np.array(parts["train"])
    train_groups = None if groups is None else [groups[i] for i in train_ids]
    folds = _k_way_split(train_ids, n_folds, train_groups, seed, "training ids", "groups of training ids")
    return [
        {
            "train": sorted(map(int, train_ids[train])),
            "val": sorted(map(int, train_ids[val])),
            "test": list(parts["test"]),
        }
        for train, val in folds
    ]


def save_splits(path, splits):
    """Writes `splits.json` atomically."""
    write_json_atomic(path, splits)


def check_splits(splits):
    """Raises `ConfigError` unless every fold's train/val/test are disjoint and non-empty and, for k
    folds, the tests cover every slice once (a fixed split leaves the slices of neither part out;
    `train_all_split` has no test part)."""
    n = len(splits["names"])
    tests = []
    for k, fold in enumerate(splits["folds"]):
        parts = [set(fold[p]) for p in ("train", "val", "test")]
        if parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]:
            raise ConfigError(f"splits.json fold {k}: train, val and test overlap; fix or delete the file")
        if (
            not parts[0]
            or not parts[1]
            or not (parts[2] or splits.get("train_all"))
            or not set().union(*parts) <= set(range(n))
        ):
            raise ConfigError(f"splits.json fold {k}: train/val/test must be non-empty slice numbers below {n}")
        if "fixed_split" not in splits and set().union(*parts) != set(range(n)):
            raise ConfigError(f"splits.json fold {k}: train/val/test must cover all {n} slices")
        tests.extend(fold["test"])
    if "fixed_split" not in splits and "train_all" not in splits and sorted(tests) != list(range(n)):
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
