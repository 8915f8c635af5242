"""Writing a release folder (`saved_models/<name>/`) from a training run's `best.keras`.

A release holds `model.keras` (weights and architecture, no optimizer state), the
`preprocessing.json` of its training run, and `samples/`: the label maps the model gives on
`release_samples()`, the HU sample as a NIfTI volume (`sample_ct.nii.gz`, the quick start's input),
and the SHA-256 of `model.keras`, so that a changed model file or a changed
prediction path is caught (`tests/test_inference_pretrained.py`). `MODEL_CARD.md` is written by
hand from the run's reports.
"""

import hashlib
import json
import pathlib

import keras
import numpy as np

from tf_resattn import optional
from tf_resattn.data import synthetic_hu_slices
from tf_resattn.data.preprocessing import window_to_grey
from tf_resattn.inference.model_files import MODEL_FILE, PREPROCESSING_FILE, load_keras_model
from tf_resattn.inference.pretrained import segment

nibabel = optional.module("nibabel", "io")

SAMPLES_FOLDER = "samples"
EXPECTED_LABELS = "expected_labels.npz"
CHECKSUMS = "checksums.json"
SAMPLE_VOLUME = "sample_ct.nii.gz"
SAMPLE_SPACING = (5.0, 0.7, 0.7)
"""(slice, row, col) mm of the sample volume."""
SAMPLE_WINDOW = (-1350.0, 150.0)
"""The lung window that makes the 8-bit sample from the HU one."""


def release_samples():
    """The sample inputs a release is checked on: `{"hu": float32 [3, 160, 144], "uint8": uint8 [3, 160, 144]}`.

    Three synthetic chest slices (`synthetic_hu_slices`, seed 11, the first generator) in Hounsfield units, and the
    same slices windowed to 8-bit grey with the lung window.
    """
    hu, _ = synthetic_hu_slices(n=3, image_size=(160, 144), seed=11, version=1)
    return {"hu": hu, "uint8": np.round(window_to_grey(hu, SAMPLE_WINDOW)).astype(np.uint8)}


def write_sample_volume(path):
    """The HU sample as a NIfTI volume (int16, `SAMPLE_SPACING`): the quick start's input to `predict.py`."""
    hu = release_samples()["hu"]
    volume = np.round(np.transpose(hu, (2, 1, 0))).astype(np.int16)  # data[x, y, z] = slice z transposed
    slice_mm, row_mm, col_mm = SAMPLE_SPACING
    image = nibabel.Nifti1Image(volume, np.diag([col_mm, row_mm, slice_mm, 1.0]))
    nibabel.save(image, str(path))


def sha256(path):
    """Hex SHA-256 of a file."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def write_release(best_model, out_folder):
    """Writes `model.keras`, `preprocessing.json` and `samples/` of a release into `out_folder`.

    Args:
        best_model: a training run's `best.keras` (its `preprocessing.json` beside it).
        out_folder: the release folder, e.g. `saved_models/resattn_medseg100`.

    Returns:
        The checksums dict (also `samples/checksums.json`).
    """
    out_folder = pathlib.Path(out_folder)
    (out_folder / SAMPLES_FOLDER).mkdir(parents=True, exist_ok=True)
    model, preprocessing = load_keras_model(best_model)
    model.save(out_folder / MODEL_FILE)  # loaded without compiling: no optimizer state
    (out_folder / PREPROCESSING_FILE).write_text(json.dumps(preprocessing.to_config(), indent=2) + "\n")
    keras.backend.clear_session()
    labels = {kind: segment(volume, model=out_folder / MODEL_FILE).labels for kind, volume in release_samples().items()}
    np.savez_compressed(out_folder / SAMPLES_FOLDER / EXPECTED_LABELS, **labels)
    write_sample_volume(out_folder / SAMPLES_FOLDER / SAMPLE_VOLUME)
    checksums = {
        MODEL_FILE: sha256(out_folder / MODEL_FILE),
        EXPECTED_LABELS: sha256(out_folder / SAMPLES_FOLDER / EXPECTED_LABELS),
    }
    (out_folder / SAMPLES_FOLDER / CHECKSUMS).write_text(json.dumps(checksums, indent=2) + "\n")
    return checksums
