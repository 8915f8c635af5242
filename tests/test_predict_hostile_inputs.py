"""Issue cases 2, 6, 7 and 8: non-finite voxels, mixed folders, one-line refusals, and the SavedModel notice."""

import json
import warnings

import cv2
import nibabel
import numpy as np
import pytest
from data_helpers import write_dicom_series, write_nifti
from hostile_helpers import run_predict, snapshot, tiny_model

from tf_resattn.data import synthetic_hu_slices
from tf_resattn.io import DataError, read_scans


@pytest.fixture(scope="module")
def hu_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("hu_model"), "hu")


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("grey_model"), "uint8")


@pytest.fixture(scope="module")
def volume():
    """Five synthetic HU slices of 48x40."""
    return synthetic_hu_slices(n=5, image_size=(48, 40), seed=3)[0]


def labels_of(out, name):
    """The label volume `[N, H, W]` a NIfTI prediction wrote."""
    return np.asarray(nibabel.load(str(out / "labels" / f"{name}_labels.nii.gz")).dataobj).transpose(2, 1, 0)


def test_nan_voxels_are_predicted_around_counted_and_warned_once(hu_model, volume, tmp_path, capsys):
    from tf_resattn.inference.predict import segment
    from tf_resattn.inference.predictors import load_predictor

    nan_volume = volume.copy()
    nan_volume[0, 20, 20] = np.nan  # the first slice: once refused as "values nan..nan" not being HU
    nan_volume[2, :, :6] = np.nan  # padding after resampling
    nan_volume[2, 0, 10] = np.inf
    write_nifti(tmp_path / "ct.nii.gz", nan_volume, dtype=np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _, stderr = run_predict(
            ["--model", hu_model, "--input", tmp_path / "ct.nii.gz", "--out", tmp_path / "pred", "--quiet"], capsys
        )
    assert status == 0, stderr
    notes = [str(w.message) for w in caught if "non-finite" in str(w.message)]
    assert len(notes) == 1 and ": 290 in 2 slices (ct:000, ct:002)" in notes[0], notes
    labels = labels_of(tmp_path / "pred", "ct")
    reference = segment(load_predictor(hu_model), volume, batch_size=8)
    np.testing.assert_array_equal(labels[[1, 3, 4]], reference[[1, 3, 4]])
    assert labels[2, :, :6].max() == 0 and labels[0, 20, 20] == 0
    assert np.mean(labels[0] == reference[0]) > 0.9 and np.mean(reference[0] > 0) > 0.1  # not one background slice
    report = json.loads((tmp_path / "pred" / "report.json").read_text())
    assert report["scans"][0]["non_finite_voxels"] == 290


def test_a_slice_without_one_finite_value_is_refused(hu_model, volume, tmp_path, capsys):
    nan_volume = volume.copy()
    nan_volume[3] = np.nan
    write_nifti(tmp_path / "ct.nii.gz", nan_volume, dtype=np.float32)
    status, _, stderr = run_predict(
        ["--model", hu_model, "--input", tmp_path / "ct.nii.gz", "--out", tmp_path / "pred"], capsys
    )
    assert status == 2 and "slice 3 holds no finite value" in stderr and not (tmp_path / "pred").exists()


def write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def hostile_inputs(tmp_path, volume):
    """(case, input, model kind, extra options, expected line, a fragment the line must not hold)."""
    grey = np.full((40, 40), 90, np.uint8)
    write_png(tmp_path / "mixed_nifti" / "a.png", grey)
    write_png(tmp_path / "mixed_nifti" / "b.png", grey)
    write_nifti(tmp_path / "mixed_nifti" / "ct.nii.gz", volume)
    write_png(tmp_path / "mixed_dicom" / "a.png", grey)
    write_png(tmp_path / "mixed_dicom" / "b.png", grey)
    write_dicom_series(
        tmp_path / "mixed_dicom", np.full((1, 40, 40), 24, np.uint16), [0.0], ["one.dcm"], intercept=-1024.0
    )
    empty = tmp_path / "empty.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 0), np.int16), np.eye(4)), str(empty))
    return [
        (
            "nifti_beside_pngs",
            tmp_path / "mixed_nifti",
            "uint8",
            [],
            "mixes 2 image files (a.png, b.png), 1 NIfTI volumes (ct.nii.gz)",
            None,
        ),
        (
            "dicom_among_pngs",
            tmp_path / "mixed_dicom",
            "uint8",
            [],
            "mixes 1 DICOM files (one.dcm), 2 image files",
            None,
        ),
        (
            "window_equal",
            tmp_path / "mixed_nifti" / "ct.nii.gz",
            "uint8",
            ["--window", "100", "100"],
            "low < high",
            None,
        ),
        (
            "window_reversed",
            tmp_path / "mixed_nifti" / "ct.nii.gz",
            "uint8",
            ["--window", "400", "-1000"],
            "low < high",
            None,
        ),
        (
            "window_nan",
            tmp_path / "mixed_nifti" / "ct.nii.gz",
            "uint8",
            ["--window", "nan", "100"],
            "two finite numbers",
            None,
        ),
        (
            "16_bit_png",
            write_png(tmp_path / "deep.png", np.full((40, 40), 3000, np.uint16)),
            "uint8",
            [],
            "neither 8-bit grey",
            "input_kind",
        ),
        ("0_slice_nifti", empty, "hu", [], "holds no voxels", "1D"),
        (
            "1x1_image",
            write_png(tmp_path / "dot.png", np.full((1, 1), 90, np.uint8)),
            "uint8",
            [],
            "1x1 pixels, too small",
            None,
        ),
    ]


def test_hostile_inputs_are_one_line_exit_2_and_leave_nothing(hu_model, grey_model, volume, tmp_path, capsys):
    models = {"hu": hu_model, "uint8": grey_model}
    for case, source, kind, options, expected, misleading in hostile_inputs(tmp_path, volume):
        before = snapshot(source)
        out = tmp_path / f"out_{case}"
        status, _, stderr = run_predict(
            ["--model", models[kind], "--input", source, "--out", out, "--quiet", *options], capsys
        )
        assert status == 2, (case, stderr)
        assert len(stderr.strip().splitlines()) == 1 and expected in stderr, (case, stderr)
        assert misleading is None or misleading not in stderr, (case, stderr)
        assert snapshot(source) == before and not list(tmp_path.glob(f".out_{case}*")) and not out.exists(), case


def test_the_series_mask_is_no_second_kind(tmp_path, volume):
    series = write_dicom_series(
        tmp_path / "series", (volume[:2] + 1024).astype(np.uint16), [0.0, 5.0], ["a.dcm", "b.dcm"], intercept=-1024.0
    )
    nibabel.save(nibabel.Nifti1Image(np.zeros((40, 48, 2), np.uint8), np.eye(4)), str(series / "mask.nii.gz"))
    (scan,) = read_scans(series, masks=True)
    assert scan.kind == "dicom" and len(scan.masks) == 2


def test_a_truncated_keras_file_is_named_as_such(grey_model, tmp_path, capsys):
    truncated = tmp_path / "model.keras"
    truncated.write_bytes(grey_model.read_bytes()[:2000])
    (tmp_path / "preprocessing.json").write_bytes((grey_model.parent / "preprocessing.json").read_bytes())
    write_png(tmp_path / "slice.png", np.full((40, 40), 90, np.uint8))
    status, _, stderr = run_predict(
        ["--model", truncated, "--input", tmp_path / "slice.png", "--out", tmp_path / "pred"], capsys
    )
    assert status == 2 and "not a complete .keras file" in stderr and "not found" not in stderr, stderr
    assert not (tmp_path / "pred").exists()


def test_a_black_and_white_mask_is_not_met_with_256_classes(tmp_path):
    from tf_resattn.data import load_slices

    write_png(tmp_path / "images" / "img_0001.png", np.full((40, 40), 90, np.uint8))
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = 255
    write_png(tmp_path / "masks" / "mask_0001.png", mask)
    with pytest.raises(DataError, match="holds only 0 and 255") as error:
        load_slices(tmp_path)
    assert "256" not in str(error.value)


@pytest.fixture(scope="module")
def saved_model(hu_model, tmp_path_factory):
    """The tiny HU model as a SavedModel of tf_resattn's export."""
    import keras

    from tf_resattn.data import Preprocessing
    from tf_resattn.export.savedmodel import export_saved_model

    folder = tmp_path_factory.mktemp("export") / "saved_model"
    export_saved_model(keras.models.load_model(hu_model), Preprocessing("hu", (-1000.0, 400.0), 32), folder)
    return folder


def test_a_saved_model_gives_one_notice_and_safe_only_refuses_it(saved_model, volume, tmp_path, capsys):
    write_nifti(tmp_path / "ct.nii.gz", volume)
    argv = ["--model", saved_model, "--input", tmp_path / "ct.nii.gz", "--quiet"]
    status, _, stderr = run_predict(argv + ["--out", tmp_path / "safe", "--safe-only"], capsys)
    assert status == 2 and "--safe-only refuses SavedModel" in stderr and not (tmp_path / "safe").exists()
    status, _, stderr = run_predict(argv + ["--out", tmp_path / "pred"], capsys)
    assert status == 0 and stderr.count("runs its own TensorFlow graph") == 1, stderr
