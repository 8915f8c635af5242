"""`cv_train.py --splits FILE`: a fixed train/test split (e.g. the published 50/48 split of medseg100)."""

import json

import pytest
from data_helpers import write_split

from tf_resattn.io import DataError
from tf_resattn.training import cli, folds
from tf_resattn.training.config import ConfigError

NAMES = [f"{i:04d}" for i in range(12)]


def test_fixed_split_carves_validation_from_training_ids_only(tmp_path):
    path = write_split(tmp_path, name="demo-8-3", train=NAMES[:8], test=["0009", "0010", "0011"])
    splits = folds.read_split_file(path, NAMES, val_fraction=0.25, seed=3)
    (fold,) = splits["folds"]
    assert splits["fixed_split"] == "demo-8-3" and splits["n_folds"] == 1
    assert fold["test"] == [9, 10, 11]
    assert len(fold["val"]) == 2 and set(fold["train"]) | set(fold["val"]) == set(range(8))
    assert not set(fold["train"]) & set(fold["val"])
    folds.check_splits(splits)  # slice 8 lies in neither part: allowed for a fixed split


def test_validation_carve_keeps_groups_whole(tmp_path):
    groups = [i // 2 for i in range(12)]
    path = write_split(tmp_path, train=NAMES[:8], test=NAMES[8:])
    fold = folds.read_split_file(path, NAMES, groups=groups, val_fraction=0.25, seed=0)["folds"][0]
    assert {groups[i] for i in fold["val"]}.isdisjoint({groups[i] for i in fold["train"]})


def test_full_splits_json_is_taken_as_it_is(tmp_path):
    made = folds.make_splits(NAMES, 3, seed=1)
    path = write_split(tmp_path, **made)
    assert folds.read_split_file(path, NAMES) == made
    with pytest.raises(ConfigError, match="made for other slices"):
        folds.read_split_file(path, NAMES[:-1])


def test_bad_split_files_are_one_line_errors(tmp_path):
    """The file's content is checked where split files are read (`tf_resattn.data.splits`); the carve here."""
    with pytest.raises(DataError, match=r"1 id\(s\) both in train and test \(0002\)") as raised:
        folds.read_split_file(write_split(tmp_path, train=["0000", "0001", "0002"], test=["0002", "0003"]), NAMES)
    assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="leaves none for validation") as raised:
        folds.read_split_file(write_split(tmp_path, train=["0000"], test=["0001"]), NAMES)
    assert "\n" not in str(raised.value)


def test_missing_or_unparsable_file(tmp_path):
    with pytest.raises(DataError, match="split file .*nope.json not found"):
        folds.read_split_file(tmp_path / "nope.json", NAMES)
    (tmp_path / "bad.json").write_text("{train")
    with pytest.raises(DataError, match="is not JSON"):
        folds.read_split_file(tmp_path / "bad.json", NAMES)


def test_cv_train_on_a_fixed_split_trains_one_fold_and_reports_it(tmp_path, capsys):
    names = [f"synthetic_{i:04d}" for i in range(12)]
    split = write_split(tmp_path, name="infnet-50-48", train=names[:8], test=names[8:])
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--variants", "unet", "--splits", str(split), "--out", str(out)]
    assert cli.main(argv) == 0
    saved = json.loads((out / "splits.json").read_text())
    assert saved["fixed_split"] == "infnet-50-48" and saved["folds"][0]["test"] == [8, 9, 10, 11]
    assert json.loads((out / "config.json").read_text())["n_folds"] == 1
    metrics = json.loads((out / "unet" / "fold_0" / "metrics.json").read_text())
    assert metrics["report"]["num_slices"] == 4
    report = (out / "results.md").read_text()
    assert "fixed split `infnet-50-48` (6 training, 2 validation, 4 test slices)" in report
    assert "| U-Net | 0.462 | 0.421 |" in report and "Published figures on this split" in report
    assert "fixed split infnet-50-48" in capsys.readouterr().out
    assert cli.main(argv) == 0  # a rerun finds the fold finished
    other = write_split(tmp_path, name="other", train=names[4:], test=names[:4])
    assert cli.main(argv[:-4] + ["--splits", str(other), "--out", str(out)]) == 2
    assert "trained on other splits" in capsys.readouterr().err


def test_folds_of_the_training_ids_all_test_the_split_s_test_ids(tmp_path):
    path = write_split(tmp_path, name="demo-10-2", train=NAMES[:10], test=["0010", "0011"])
    splits = folds.read_split_file(path, NAMES, seed=4, n_folds=5)
    assert splits["n_folds"] == 5 and splits["fixed_split"] == "demo-10-2"
    vals = [fold["val"] for fold in splits["folds"]]
    assert sorted(sum(vals, [])) == list(range(10))  # each training id validates exactly once
    for fold in splits["folds"]:
        assert fold["test"] == [10, 11]
        assert len(fold["val"]) == 2 and sorted(fold["train"] + fold["val"]) == list(range(10))
    folds.check_splits(splits)
    assert folds.read_split_file(path, NAMES, seed=4, n_folds=5) == splits  # seeded: a rerun resumes


def test_grouped_folds_of_the_training_ids_keep_groups_whole(tmp_path):
    groups = [i // 2 for i in range(12)]
    path = write_split(tmp_path, train=NAMES[:8], test=NAMES[8:])
    for fold in folds.read_split_file(path, NAMES, groups=groups, n_folds=4)["folds"]:
        assert {groups[i] for i in fold["val"]}.isdisjoint({groups[i] for i in fold["train"]})
    with pytest.raises(ConfigError, match="4 groups of training ids cannot make 5 grouped folds"):
        folds.read_split_file(path, NAMES, groups=groups, n_folds=5)


def test_more_folds_than_training_ids_is_a_one_line_error(tmp_path):
    path = write_split(tmp_path, train=NAMES[:3], test=NAMES[3:])
    with pytest.raises(ConfigError, match="3 training ids cannot make 4 folds; use --n-folds 3 or fewer"):
        folds.read_split_file(path, NAMES, n_folds=4)


def test_cv_train_trains_fold_models_on_a_fixed_split(tmp_path, capsys):
    names = [f"synthetic_{i:04d}" for i in range(12)]
    split = write_split(tmp_path, name="infnet-50-48", train=names[:8], test=names[8:])
    out = tmp_path / "run"
    argv = [
        "--preset",
        "smoke",
        "--variants",
        "unet",
        "--splits",
        str(split),
        "--n-folds",
        "2",
        "--epochs",
        "1",
        "--no-figures",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert json.loads((out / "config.json").read_text())["n_folds"] == 2
    for k in (0, 1):
        metrics = json.loads((out / "unet" / f"fold_{k}" / "metrics.json").read_text())
        assert metrics["report"]["num_slices"] == 4
    assert "2 fold models, each trained on 1 of 2 parts" in (out / "results.md").read_text()
    assert "fixed split infnet-50-48, 2 folds of its training ids" in capsys.readouterr().out
