"""Atomic writes: a file appears complete or not at all, even after `kill -9`."""

import json
import os
import pathlib
import shutil

import numpy as np


def write_text_atomic(path, text):
    """Writes `text` to a temporary name beside `path`, then renames it over `path`."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path, value):
    """Writes `value` as indented JSON (NaN allowed, as JSON `NaN`), atomically."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def save_model_atomic(model, path):
    """Saves a Keras model (with its optimizer state) to `path` (`*.keras`) atomically."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


def save_npz_atomic(path, **arrays):
    """Saves NumPy arrays to a compressed `.npz` atomically."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


def copy_atomic(source, path):
    """Copies `source` to `path` under a temporary name, then renames it into place."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def read_json(path):
    """Reads a JSON file."""
    return json.loads(pathlib.Path(path).read_text())
