"""Fixed train/test split files: which slices train and which test, named by slice.

A split file is JSON `{"name": "infnet-50-48", "train": [ids], "test": [ids]}`, the ids being
slice names (`"0000"` as in `img_0000.png`), such as the published 50/48 split of medseg100
(`../shared/data/medseg100/splits/infnet-50-48.json`). Slices in neither list are left out; an
id in both is refused, since a test slice must not be trained on. Training (`cv_train.py
--splits`, which also takes a run's `splits.json`: `read_split_json`), the robustness check and
the GPU check read split files here.

Example:
    >>> content = {"train": ["0001", "0002"], "test": ["0007"]}
    >>> fixed_split_indices(content, ["0003", "0001", "0007", "0002"], "split.json")
    {'train': [1, 3], 'test': [2]}
"""

import json
import pathlib

from tf_resattn.io import DataError

MAX_NAMED_IDS = 5
"""Ids quoted in an error message; more are shown as `...`."""


def read_fixed_split(path, names):
    """Reads a split file and returns its parts as sorted index lists into `names`.

    Args:
        path: the JSON file (module docstring).
        names: the slice names of the loaded data, in `SliceSet` order.

    Returns:
        `{"train": [...], "test": [...]}`: sorted positions in `names`.

    Raises:
        DataError: a missing or unparsable file, or content that `fixed_split_indices` refuses.
    """
    return fixed_split_indices(read_split_json(path), names, path)


def read_split_json(path):
    """The parsed JSON of the split file at `path`; `DataError` when it is missing or not JSON."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} not found; give the path of a JSON split file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"split file {path} is not JSON ({error}); fix it or give another split file") from None


def fixed_split_indices(content, names, path):
    """The parsed split file at `path` -> `{"train": [...], "test": [...]}`, sorted positions in `names`.

    Raises:
        DataError: no lists "train" and "test", an empty list, ids not in `names`, or ids in both lists.
    """
    if not isinstance(content, dict) or not all(isinstance(content.get(part), list) for part in ("train", "test")):
        raise DataError(f"split file {path} must hold lists 'train' and 'test' of slice ids; add them")
    position = {name: i for i, name in enumerate(names)}
    parts = {}
    for part in ("train", "test"):
        ids = [str(i) for i in content[part]]
        missing = [i for i in ids if i not in position]
        if missing:
            raise DataError(
                f"split file {path}: {len(missing)} {part} id(s) not in the data ({_quoted(missing)}); "
                f"the ids must be slice names such as {names[0]!r}"
            )
        if not ids:
            raise DataError(f"split file {path}: the {part} part is empty; list at least one slice id in it")
        parts[part] = sorted(position[i] for i in set(ids))
    overlap = sorted(set(parts["train"]) & set(parts["test"]))
    if overlap:
        raise DataError(
            f"split file {path}: {len(overlap)} id(s) both in train and test ({_quoted([names[i] for i in overlap])}); "
            "a test slice must not be trained on, remove them from one list"
        )
    return parts


def _quoted(ids):
    """The first `MAX_NAMED_IDS` of `ids`, comma-separated, with `, ...` when there are more."""
    return ", ".join(ids[:MAX_NAMED_IDS]) + (", ..." if len(ids) > MAX_NAMED_IDS else "")
