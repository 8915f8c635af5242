"""`read_fixed_split`: a published train/test split of slice names -> indices into the data."""

import json

import pytest

from tf_resattn.training.config import ConfigError
from tf_resattn.training.folds import read_fixed_split


def test_names_become_indices(tmp_path):
    names = ["0003", "0001", "0007", "0002"]
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001", "0002"], "test": ["0007"]}))
    split = read_fixed_split(path, names)
    assert [names[i] for i in split["train"]] == ["0001", "0002"]
    assert [names[i] for i in split["test"]] == ["0007"]


@pytest.mark.parametrize("content, message", [
    ({"train": ["0001"]}, "'train' and 'test'"),
    ({"train": ["0001"], "test": ["0009"]}, "0009 are not in the data"),
    ({"train": ["0001"], "test": ["0001"]}, "share slices"),
])
def test_bad_splits_are_refused(tmp_path, content, message):
    path = tmp_path / "split.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        read_fixed_split(path, ["0001", "0002"])


def test_the_medseg100_split_covers_the_labelled_slices(medseg100_dir):
    from tf_resattn.data.readers import read_path

    raw = read_path(medseg100_dir)
    labelled = [n for n, m in zip(raw.names, raw.masks) if m is not None]
    split = read_fixed_split(medseg100_dir / "splits" / "infnet-50-48.json", labelled)
    assert (len(split["train"]), len(split["test"])) == (50, 48)
    assert sorted(split["train"] + split["test"]) == list(range(len(labelled)))
