"""Hounsfield-unit scans through a model trained on 8-bit slices: windowed to the grey levels its slices were made with."""

import json
import shutil

import nibabel
import numpy as np
import pytest
import tensorflow as tf
from data_helpers import write_nifti
from export_helpers import trained_model

import tf_resattn
from tf_resattn.data import Preprocessing, synthetic_hu_slices
from tf_resattn.data.preprocessing import window_to_grey
from tf_resattn.export.savedmodel import export_saved_model
from tf_resattn.inference import InferenceError, load_predictor
from tf_resattn.io import DataError

# The tiny model of export_helpers takes HU through the window (-1000, 400). A copy of it declared
# as an 8-bit model whose slices were made with that same window must give the same labels on HU.
WINDOW = (-1000.0, 400.0)


def eight_bit_copy(tmp_path, tmp_path_factory, source_window):
    """`best.keras` of the tiny HU model beside a `preprocessing.json` that says 8-bit, with `source_window`."""
    folder = tmp_path / ("windowed" if source_window else "unwindowed")
    folder.mkdir()
    shutil.copy(trained_model(tmp_path_factory), folder / "best.keras")
    config = Preprocessing("uint8", image_size=64, source_window=source_window).to_config()
    (folder / "preprocessing.json").write_text(json.dumps(config))
    return folder / "best.keras"


@pytest.fixture
def nifti_path(tmp_path):
    return write_nifti(tmp_path / "ct.nii.gz", synthetic_hu_slices(n=3, image_size=(80, 72), seed=5)[0])


def test_bridge_needs_a_window_and_an_8_bit_model():
    assert Preprocessing("uint8", source_window=(-1350, 150)).hu_bridge() == (-1350.0, 150.0)
    assert Preprocessing("uint8", source_window=(-1350, 150)).hu_bridge((-1200, 300)) == (-1200.0, 300.0)
    with pytest.raises(DataError, match="pass --window LOW HIGH"):
        Preprocessing("uint8").hu_bridge()
    with pytest.raises(DataError, match="drop --window"):
        Preprocessing("hu").hu_bridge((-1000, 400))
    with pytest.raises(ValueError, match="low < high"):
        Preprocessing("uint8", source_window=(150, -1350))


def test_source_window_round_trips_and_old_files_read_without_it():
    prep = Preprocessing("uint8", image_size=64, source_window=(-1362.4, 168.1))
    assert Preprocessing.from_config(prep.to_config()) == prep
    old = {"input_kind": "uint8", "hu_window": [-1000, 400], "image_size": [64, 64]}
    assert Preprocessing.from_config(old).source_window is None


def test_windowed_grey_is_the_hu_scaling_of_the_same_window():
    hu = np.linspace(-1500, 600, 97, dtype=np.float32).reshape(1, 97)
    grey = window_to_grey(hu, WINDOW)
    np.testing.assert_allclose(Preprocessing("uint8").scale(grey), Preprocessing("hu", WINDOW).scale(hu), atol=1e-6)


def test_hu_volume_through_8_bit_model_matches_the_hu_model(tmp_path, tmp_path_factory, nifti_path):
    model = eight_bit_copy(tmp_path, tmp_path_factory, WINDOW)
    report = tf_resattn.predict(model, nifti_path, tmp_path / "bridged", progress=False)
    tf_resattn.predict(trained_model(tmp_path_factory), nifti_path, tmp_path / "hu", progress=False)
    bridged = nibabel.load(str(tmp_path / "bridged" / "labels" / "ct_labels.nii.gz"))
    reference = nibabel.load(str(tmp_path / "hu" / "labels" / "ct_labels.nii.gz"))
    assert bridged.shape == nibabel.load(str(nifti_path)).shape
    np.testing.assert_allclose(bridged.affine, reference.affine)
    agreement = np.mean(np.asarray(bridged.dataobj) == np.asarray(reference.dataobj))
    assert agreement > 0.999, agreement  # float rounding of the two scalings may flip a boundary pixel
    assert report["scans"][0]["hu_window_to_grey"] == list(WINDOW)


def test_without_a_recorded_window_the_error_names_the_flag_and_the_window_fixes_it(
    tmp_path, tmp_path_factory, nifti_path
):
    model = eight_bit_copy(tmp_path, tmp_path_factory, None)
    out = tmp_path / "pred"
    with pytest.raises(InferenceError, match="--window LOW HIGH") as raised:
        tf_resattn.predict(model, nifti_path, out, progress=False)
    assert "\n" not in str(raised.value) and not out.exists()
    report = tf_resattn.predict(model, nifti_path, out, progress=False, window=(-1000, 400))
    assert report["scans"][0]["hu_window_to_grey"] == list(WINDOW)


def test_saved_model_serves_hu_through_the_recorded_window(tmp_path, tmp_path_factory):
    model_path = eight_bit_copy(tmp_path, tmp_path_factory, WINDOW)
    predictor = load_predictor(model_path)
    export_saved_model(predictor.model, predictor.preprocessing, tmp_path / "saved_model")
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    hu = synthetic_hu_slices(n=2, image_size=(80, 72), seed=6)[0].astype(np.float32)[..., None]
    served = loaded.signatures["serve_hu"](images=tf.constant(hu))["probabilities"].numpy()
    grey = loaded.signatures["serving_default"](images=tf.constant(window_to_grey(hu, WINDOW)))["probabilities"].numpy()
    np.testing.assert_allclose(served, grey, atol=1e-5)
    assert loaded.signatures["metadata"]()["source_window"].numpy().tolist() == list(WINDOW)
