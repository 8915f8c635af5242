"""The released model: loads offline from the package, reproduces its stored outputs, segments HU volumes."""

import json
import socket

import nibabel
import numpy as np
import pytest
from data_helpers import write_nifti

import tf_resattn
from tf_resattn.data import synthetic_hu_slices
from tf_resattn.inference import ExportError, InferenceError
from tf_resattn.inference.model_files import pretrained_model_path
from tf_resattn.inference.release import CHECKSUMS, EXPECTED_LABELS, SAMPLES_FOLDER, release_samples, sha256

NAME = "resattn_medseg100"
RELEASES = [NAME, "resattn_medseg100_v2", "resattn_medseg100_v1"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the released model must load without network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", RELEASES)
def test_release_files_are_the_ones_whose_outputs_were_stored(name):
    release = pretrained_model_path(name).parent
    checksums = json.loads((release / SAMPLES_FOLDER / CHECKSUMS).read_text())
    assert sha256(release / "model.keras") == checksums["model.keras"]
    assert sha256(release / SAMPLES_FOLDER / EXPECTED_LABELS) == checksums[EXPECTED_LABELS]
    assert (release / "model.keras").stat().st_size < 30e6
    assert "not a medical device" in (release / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("name", RELEASES)
def test_from_pretrained_loads_offline_with_its_preprocessing(name, no_network):
    model = tf_resattn.from_pretrained(name)
    assert model.output_shape[-1] == 4
    assert model.preprocessing.input_kind == "uint8" and model.preprocessing.source_window is not None
    assert model.preprocessing.image_size == tuple(model.input_shape[1:3])


@pytest.mark.parametrize("name", RELEASES)
def test_segment_reproduces_the_stored_label_maps(name, no_network):
    expected = np.load(pretrained_model_path(name).parent / SAMPLES_FOLDER / EXPECTED_LABELS)
    for kind, volume in release_samples().items():
        result = tf_resattn.segment(volume, spacing=(5.0, 0.7, 0.7), model=name)
        assert result.labels.shape == volume.shape and result.labels.dtype == np.uint8
        np.testing.assert_array_equal(result.labels, expected[kind], err_msg=kind)
        assert result.quantification["unit"] == "mL"
        assert (result.hu_window is not None) == (kind == "hu")


@pytest.mark.parametrize(
    "volume, spacing, message",
    [
        (np.zeros((1, 2, 16, 16), np.uint8), None, r"got shape \[1, 2, 16, 16\]"),
        (np.zeros(16, np.uint8), None, r"got shape \[16\]"),
        (np.zeros((2, 16, 16), np.uint8), (0.7,), r"\(slice, row, col\) or \(row, col\) in mm, got \(0.7,\)"),
    ],
)
def test_segment_refuses_bad_arrays_in_one_line(volume, spacing, message):
    with pytest.raises(InferenceError, match=message) as raised:
        tf_resattn.segment(volume, spacing=spacing, model=NAME)
    assert "\n" not in str(raised.value)


def test_unknown_name_lists_the_releases():
    with pytest.raises(ExportError, match=NAME):
        pretrained_model_path("no_such_model")


def test_hu_nifti_through_predict_by_name(tmp_path, no_network):
    hu, _ = synthetic_hu_slices(n=3, image_size=(160, 144), seed=4)
    source = write_nifti(tmp_path / "ct.nii.gz", hu, zooms=(0.7, 0.8, 5.0))
    report = tf_resattn.predict(NAME, source, tmp_path / "pred", progress=False)
    labels = nibabel.load(str(tmp_path / "pred" / "labels" / "ct_labels.nii.gz"))
    image = nibabel.load(str(source))
    assert labels.shape == image.shape
    np.testing.assert_allclose(labels.affine, image.affine)
    assert report == json.loads((tmp_path / "pred" / "report.json").read_text())
    scan = report["scans"][0]
    assert scan["quantification"]["unit"] == "mL" and scan["hu_window_to_grey"] is not None
    assert report["model"].endswith(f"{NAME}/model.keras")
