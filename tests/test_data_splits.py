"""Fixed train/test split files (`tf_resattn.data.splits`): names to positions, and every bad file refused in one line."""

import pytest
from data_helpers import write_split

from tf_resattn.data.splits import fixed_split_indices, read_fixed_split
from tf_resattn.io import DataError

NAMES = [f"{i:04d}" for i in range(12)]


def test_fixed_split_names_become_indices(tmp_path):
    names = ["0003", "0001", "0007", "0002"]
    split = read_fixed_split(write_split(tmp_path, name="demo", train=["0002", "0001", "0001"], test=["0007"]), names)
    assert split == {"train": [1, 3], "test": [2]}  # sorted positions, an id listed twice counted once
    assert [names[i] for i in split["train"]] == ["0001", "0002"]


def test_slices_in_neither_part_are_left_out(tmp_path):
    split = read_fixed_split(write_split(tmp_path, train=NAMES[:3], test=NAMES[10:]), NAMES)
    assert split == {"train": [0, 1, 2], "test": [10, 11]}


def test_the_medseg100_split_covers_the_labelled_slices(medseg100_dir):
    from tf_resattn.io import read_path

    raw = read_path(medseg100_dir)
    labelled = [n for n, m in zip(raw.names, raw.masks) if m is not None]
    split = read_fixed_split(medseg100_dir / "splits" / "infnet-50-48.json", labelled)
    assert (len(split["train"]), len(split["test"])) == (50, 48)
    assert sorted(split["train"] + split["test"]) == list(range(len(labelled)))


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"train": ["0000", "0001", "0099"], "test": ["0002"]},
            r"1 train id\(s\) not in the data \(0099\); .* such as '0000'",
        ),
        (
            {"train": ["0000"], "test": [f"x{i}" for i in range(7)]},
            r"7 test id\(s\) not in the data \(x0, x1, x2, x3, x4, \.\.\.\)",
        ),
        ({"train": ["0000", "0001", "0002"], "test": ["0002", "0003"]}, r"1 id\(s\) both in train and test \(0002\)"),
        ({"train": ["0000", "0001"], "test": []}, "the test part is empty"),
        ({"train": [], "test": ["0001"]}, "the train part is empty"),
        ({"test": ["0001"]}, "must hold lists 'train' and 'test'"),
        ({"train": "0000", "test": ["0001"]}, "must hold lists 'train' and 'test'"),
    ],
)
def test_bad_contents_are_one_line_data_errors(content, message):
    with pytest.raises(DataError, match=message) as raised:
        fixed_split_indices(content, NAMES, "split.json")
    assert "\n" not in str(raised.value) and "split.json" in str(raised.value)


def test_a_list_instead_of_an_object_is_refused():
    with pytest.raises(DataError, match="must hold lists 'train' and 'test'"):
        fixed_split_indices([["0000"], ["0001"]], NAMES, "split.json")


def test_missing_or_unparsable_file(tmp_path):
    with pytest.raises(DataError, match="nope.json not found"):
        read_fixed_split(tmp_path / "nope.json", NAMES)
    (tmp_path / "bad.json").write_text("{train")
    with pytest.raises(DataError, match="bad.json is not JSON") as raised:
        read_fixed_split(tmp_path / "bad.json", NAMES)
    assert "\n" not in str(raised.value)
