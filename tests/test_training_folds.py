"""Cross-validation splits: disjoint, covering, grouped, seeded, reused."""

import json

import numpy as np
import pytest

from tf_resattn.training.config import ConfigError
from tf_resattn.training.folds import check_splits, load_or_make_splits, make_splits, parse_fold_list, save_splits

NAMES = [f"{i:04d}" for i in range(23)]


@pytest.mark.parametrize("n_folds", [2, 5, 10])
def test_test_folds_partition_the_slices_and_train_val_test_are_disjoint(n_folds):
    splits = make_splits(NAMES, n_folds, val_fraction=0.2, seed=3)
    tests = np.concatenate([f["test"] for f in splits["folds"]])
    assert sorted(tests.tolist()) == list(range(len(NAMES)))
    for fold in splits["folds"]:
        train, val, test = (set(fold[p]) for p in ("train", "val", "test"))
        assert not (train & val) and not (train & test) and not (val & test)
        assert train | val | test == set(range(len(NAMES)))
        assert len(val) >= 1 and len(train) >= 1
    check_splits(splits)


def test_splits_are_seeded():
    assert make_splits(NAMES, 4, seed=1) == make_splits(NAMES, 4, seed=1)
    assert make_splits(NAMES, 4, seed=1)["folds"] != make_splits(NAMES, 4, seed=2)["folds"]


def test_group_folds_keep_each_group_on_one_side():
    groups = [f"patient{i // 3}" for i in range(len(NAMES))]  # 8 patients, up to 3 slices each
    splits = make_splits(NAMES, 4, groups=groups, val_fraction=0.2, seed=0)
    assert splits["grouped"]
    for fold in splits["folds"]:
        sides = {}
        for part in ("train", "val", "test"):
            for i in fold[part]:
                sides.setdefault(groups[i], set()).add(part)
        assert all(len(s) == 1 for s in sides.values()), sides
    check_splits(splits)


def test_too_few_slices_or_groups_for_the_folds():
    with pytest.raises(ConfigError, match="3 slices cannot make 5 folds"):
        make_splits(NAMES[:3], 5)
    with pytest.raises(ConfigError, match="2 groups cannot make 3"):
        make_splits(NAMES[:6], 3, groups=["a"] * 3 + ["b"] * 3)


def test_splits_file_is_reused_and_checked_against_the_data(tmp_path):
    path = tmp_path / "splits.json"
    first = load_or_make_splits(path, NAMES, 3)
    save_splits(path, first)
    edited = json.loads(path.read_text())
    edited["folds"][0]["val"], edited["folds"][0]["train"] = (
        edited["folds"][0]["train"][:2],
        edited["folds"][0]["train"][2:] + edited["folds"][0]["val"],
    )
    path.write_text(json.dumps(edited))
    assert load_or_make_splits(path, NAMES, 3, seed=99) == edited  # reused, not remade
    with pytest.raises(ConfigError, match="other slices"):
        load_or_make_splits(path, NAMES[:-1], 3)
    with pytest.raises(ConfigError, match="holds 3 folds but 4"):
        load_or_make_splits(path, NAMES, 4)
    edited["folds"][1]["train"].append(edited["folds"][1]["test"][0])
    path.write_text(json.dumps(edited))
    with pytest.raises(ConfigError, match="overlap"):
        load_or_make_splits(path, NAMES, 3)


def test_fold_list_parsing():
    assert parse_fold_list(None, 5) == [0, 1, 2, 3, 4]
    assert parse_fold_list("3,0", 5) == [0, 3]
    with pytest.raises(ConfigError, match="0 to 4"):
        parse_fold_list("5", 5)
    with pytest.raises(ConfigError, match="like 0,3"):
        parse_fold_list("one", 5)
