"""The released model: loads offline from the package, reproduces its stored outputs, segments HU volumes."""

import json
import socket

import nibabel
import numpy as np
import pytest
from data_helpers import write_nifti

import tf_resattn
from tf_resattn.data import synthetic_hu_slices
from tf_resattn.inference.model_files import ExportError, pretrained_model_path
from tf_resattn.inference.predict_cli import main as predict_main
from tf_resattn.inference.release import CHECKSUMS, EXPECTED_LABELS, SAMPLES_FOLDER, release_samples, sha256

NAME = "resattn_medseg100"
RELEASE = pretrained_model_path(NAME).parent


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the released model must load without network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_release_files_are_the_ones_whose_outputs_were_stored():
    checksums = json.loads((RELEASE / SAMPLES_FOLDER / CHECKSUMS).read_text())
    assert sha256(RELEASE / "model.keras") == checksums["model.keras"]
    assert sha256(RELEASE / SAMPLES_FOLDER / EXPECTED_LABELS) == checksums[EXPECTED_LABELS]
    assert (RELEASE / "model.keras").stat().st_size < 30e6
    assert "not a medical device" in (RELEASE / "MODEL_CARD.md").read_text()


def test_from_pretrained_loads_offline_with_its_preprocessing(no_network):
    model = tf_resattn.from_pretrained(NAME)
    assert model.output_shape[-1] == 4
    assert model.preprocessing.input_kind == "uint8" and model.preprocessing.source_window is not None
    assert model.preprocessing.image_size == tuple(model.input_shape[1:3])


def test_segment_reproduces_the_stored_label_maps(no_network):
    expected = np.load(RELEASE / SAMPLES_FOLDER / EXPECTED_LABELS)
    for kind, volume in release_samples().items():
        result = tf_resattn.segment(volume, spacing=(5.0, 0.7, 0.7), model=NAME)
        assert result.labels.shape == volume.shape and result.labels.dtype == np.uint8
        np.testing.assert_array_equal(result.labels, expected[kind], err_msg=kind)
        assert result.quantification["unit"] == "mL"
        assert (result.hu_window is not None) == (kind == "hu")


def test_unknown_name_lists_the_releases():
    with pytest.raises(ExportError, match=NAME):
        pretrained_model_path("no_such_model")


def test_hu_nifti_through_predict_by_name(tmp_path, no_network, capsys):
    hu, _ = synthetic_hu_slices(n=3, image_size=(160, 144), seed=4)
    source = write_nifti(tmp_path / "ct.nii.gz", hu, zooms=(0.7, 0.8, 5.0))
    assert predict_main(["--model", NAME, "--input", str(source), "--out", str(tmp_path / "pred"), "--quiet"]) == 0
    labels = nibabel.load(str(tmp_path / "pred" / "labels" / "ct_labels.nii.gz"))
    image = nibabel.load(str(source))
    assert labels.shape == image.shape
    np.testing.assert_allclose(labels.affine, image.affine)
    report = json.loads((tmp_path / "pred" / "report.json").read_text())
    scan = report["scans"][0]
    assert scan["quantification"]["unit"] == "mL" and scan["hu_window_to_grey"] is not None
    assert "infection" in capsys.readouterr().out.lower()
