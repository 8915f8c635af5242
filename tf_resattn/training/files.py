"""Atomic writes: a file appears complete or not at all, even after `kill -9`, whoever else writes it."""

import contextlib
import json
import os
import pathlib
import shutil
import uuid

import numpy as np


@contextlib.contextmanager
def replaced_atomically(path, suffix=".tmp"):
    """Yields a new temporary path beside `path` to write; renames it over `path` when the block succeeds.

    Each call gets a name of its own (`.NAME.<random hex><suffix>`), so writers of the same file in
    several processes (a tuning chief and its workers write the same settings) never rename each other's
    half-written file; a failed block removes its temporary file.

    Args:
        path: the file to write.
        suffix: the end of the temporary name (`.keras` where the writer needs it).
    """
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text):
    """Writes `text` (flushed to disk) to a temporary name beside `path`, then renames it over `path`."""
    with replaced_atomically(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path, value):
    """Writes `value` as indented JSON (NaN allowed, as JSON `NaN`), atomically."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def save_model_atomic(model, path):
    """Saves a Keras model (with its optimizer state) to `path` (`*.keras`) atomically."""
    with replaced_atomically(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_npz_atomic(path, **arrays):
    """Saves NumPy arrays to a compressed `.npz` atomically."""
    with replaced_atomically(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def copy_atomic(source, path):
    """Copies `source` to `path` under a temporary name, then renames it into place."""
    with replaced_atomically(path) as tmp:
        shutil.copyfile(source, tmp)


def read_json(path):
    """Reads a JSON file."""
    return json.loads(pathlib.Path(path).read_text())
