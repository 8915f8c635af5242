"""Atomic writes: complete files or none, the old file kept when a write fails, and no clash between writers."""

import json
import threading

import pytest

from tf_resattn.training.files import read_json, write_json_atomic, write_text_atomic


def test_writers_of_the_same_file_at_once_all_succeed(tmp_path):
    """A tuning chief and its workers write the same settings file at the same moment."""
    path = tmp_path / "tuning.json"
    errors = []

    def writer(k):
        try:
            for _ in range(40):
                write_json_atomic(path, {"writer": k, "padding": "x" * 4096})
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert read_json(path)["writer"] in range(4)
    assert [p.name for p in tmp_path.iterdir()] == ["tuning.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"done": 1})
    with pytest.raises(UnicodeEncodeError):  # fails after the temporary file is open
        write_text_atomic(path, "\ud800")
    assert json.loads(path.read_text()) == {"done": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
