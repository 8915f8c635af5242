"""`tf_resattn.predict`: every input format, every model format, labels in the input's geometry, bad inputs; its command line."""

import json
import pathlib
import shutil

import cv2
import nibabel
import numpy as np
import pytest
from data_helpers import write_dicom_series, write_nifti
from export_helpers import exported, trained_model, write_preprocessing

import tf_resattn
from tf_resattn.data import synthetic_hu_slices
from tf_resattn.inference import ExportError, InferenceError
from tf_resattn.inference.output_folder import MARKER
from tf_resattn.inference.predict_cli import main


@pytest.fixture
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory)


@pytest.fixture
def hu_volume():
    """Five synthetic HU slices of 96x80 (not the training size) and their labels."""
    return synthetic_hu_slices(n=5, image_size=(96, 80), seed=3)


@pytest.fixture
def nifti_path(tmp_path, hu_volume):
    path = write_nifti(tmp_path / "ct.nii.gz", hu_volume[0], zooms=(0.7, 0.8, 5.0))
    image = nibabel.load(str(path))
    affine = image.affine.copy()
    affine[:3, 3] = (12.0, -30.0, 45.0)  # a non-trivial affine that must come back unchanged
    nibabel.save(nibabel.Nifti1Image(np.asarray(image.dataobj), affine, image.header), str(path))
    return path


def run(argv, capsys):
    """Runs the command; returns (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("model_name", ["saved_model", "model_fp32.tflite"])
def test_nifti_in_nifti_out_same_geometry(model_name, export_dir, nifti_path, tmp_path):
    out = tmp_path / "pred"
    report = tf_resattn.predict(
        export_dir / model_name, nifti_path, out, batch_size=2, progress=False, notify=lambda notice: None
    )
    assert report == json.loads((out / "report.json").read_text())
    source, labels = nibabel.load(str(nifti_path)), nibabel.load(str(out / "labels" / "ct_labels.nii.gz"))
    assert labels.shape == source.shape
    np.testing.assert_allclose(labels.affine, source.affine)
    assert labels.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 1, 2, 3}
    scan = report["scans"][0]
    assert scan["slices"] == 5 and scan["spacing_mm"] == pytest.approx([0.8, 0.7]) and scan["slice_distance_mm"] == 5.0
    assert scan["quantification"]["unit"] == "mL"
    assert len(scan["overlays"]) == 5 and all((out / f).is_file() for f in scan["overlays"])


def test_command_line_passes_its_options_and_prints_the_report(export_dir, nifti_path, tmp_path, capsys):
    out = tmp_path / "pred"
    argv = [
        "--model",
        str(export_dir / "model_fp32.tflite"),
        "--input",
        str(nifti_path),
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--quiet",
    ]
    status, stdout, stderr = run(argv, capsys)
    assert status == 0 and stderr == ""
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == str(export_dir / "model_fp32.tflite") and report["test_time_augmentation"] is False
    assert "burden_%" in stdout and "ct" in stdout and f"written: {out}/report.json" in stdout
    assert report["scans"][0]["batch_size"] == 2 and report["speed"]["slices"] == 5
    assert report["speed"]["slices_per_second"] == pytest.approx(5 / report["speed"]["seconds"], rel=0.05)
    assert "slices/s" not in stdout
    status, stdout, _ = run(argv[:-3] + ["--overwrite", "--quiet", "--verbose"], capsys)
    assert status == 0 and "5 slices in" in stdout and "slices/s, batches of " in stdout and "peak memory" in stdout
    chosen = json.loads((out / "report.json").read_text())["scans"][0]["batch_size"]
    assert 1 <= chosen <= 8  # from the frame size and the free memory
    status, _, stderr = run(argv[:-1] + ["--window", "400", "-1000"], capsys)
    assert status == 2 and "--window" in stderr and "low < high" in stderr
    status, _, stderr = run(argv + ["--overlays", "some"], capsys)
    assert status == 2 and "overlays must be all, none or a number of slices (e.g. 6), got 'some'" in stderr


@pytest.mark.parametrize("choice, count", [("none", 0), (2, 2), ("all", 5)])
def test_overlays_are_written_for_the_slices_chosen(choice, count, export_dir, nifti_path, tmp_path):
    out = tmp_path / "pred"
    report = tf_resattn.predict(export_dir / "model_fp32.tflite", nifti_path, out, progress=False, overlays=choice)
    drawn = report["scans"][0]["overlays"]
    assert len(drawn) == count and sorted(p.name for p in (out / "overlays").glob("*.png")) == sorted(
        pathlib.Path(p).name for p in drawn
    )


def test_same_labels_from_keras_saved_model_and_tflite(export_dir, tmp_path_factory, hu_volume):
    """The three formats agree on the label maps of the same volume (the Keras path is the reference)."""
    from tf_resattn.inference.predict import segment
    from tf_resattn.inference.predictors import load_predictor

    slices = hu_volume[0]
    reference = segment(load_predictor(trained_model(tmp_path_factory)), slices, batch_size=5)
    for name, minimum in (("saved_model", 0.999), ("model_fp32.tflite", 0.999)):
        labels = segment(load_predictor(export_dir / name), slices, batch_size=2)
        assert labels.shape == slices.shape
        assert np.mean(labels == reference) >= minimum, name


def test_png_folder_with_keras_model(tmp_path_factory, tmp_path):
    """8-bit PNG slices: a label PNG at each input's own size and an overlay per slice."""
    model_dir = tmp_path / "run8bit"
    model_dir.mkdir()
    shutil.copy(trained_model(tmp_path_factory), model_dir / "best.keras")
    write_preprocessing(model_dir, "uint8")
    hu, _ = synthetic_hu_slices(n=2, image_size=(70, 90), seed=2)
    grey = np.round(np.clip((hu + 1000) / 1400, 0, 1) * 255).astype(np.uint8)
    (tmp_path / "slices").mkdir()
    cv2.imwrite(str(tmp_path / "slices" / "a.png"), grey[0])
    cv2.imwrite(str(tmp_path / "slices" / "b.jpg"), cv2.resize(grey[1], (50, 40)))
    out = tmp_path / "pred"
    report = tf_resattn.predict(model_dir / "best.keras", tmp_path / "slices", out, progress=False)
    assert cv2.imread(str(out / "labels" / "a.png"), cv2.IMREAD_UNCHANGED).shape == (70, 90)
    assert cv2.imread(str(out / "labels" / "b.png"), cv2.IMREAD_UNCHANGED).shape == (40, 50)
    assert cv2.imread(str(out / "overlays" / "a.png")).shape == (70, 90, 3)
    assert [s["quantification"]["unit"] for s in report["scans"]] == ["pixels", "pixels"]
    assert "pixel counts" in report["scans"][0]["quantification"]["note"]


def test_dicom_series_gives_a_dicom_seg_over_it(export_dir, tmp_path, hu_volume):
    import highdicom
    import pydicom

    from tf_resattn.classes import class_names
    from tf_resattn.inference.predict import segment
    from tf_resattn.inference.predictors import load_predictor

    stored = (hu_volume[0][:3] + 1024).clip(0, None).astype(np.uint16)
    series = write_dicom_series(
        tmp_path / "series",
        stored,
        [5.0, 0.0, 2.5],
        ["s0.dcm", "s1.dcm", "s2.dcm"],
        intercept=-1024.0,
        spacing=(0.6, 0.9),
    )
    model = export_dir / "model_fp32.tflite"
    out = tmp_path / "pred"
    report = tf_resattn.predict(model, series, out, progress=False)
    assert [p.name for p in (out / "labels").iterdir()] == ["series_seg.dcm"]
    seg = highdicom.seg.segread(out / "labels" / "series_seg.dcm")
    sources = [
        pydicom.dcmread(series / name) for name in ("s1.dcm", "s2.dcm", "s0.dcm")
    ]  # patient order: z = 0, 2.5, 5
    # Segments: the three infection classes, background (label 0) is none.
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == list(class_names(4)[1:])
    assert list(seg.segment_numbers) == [1, 2, 3]
    # The source series is referenced, and study, patient and frame of reference are shared.
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID and seg.PatientID == "TEST"
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    # Frames: the labels the predictor gives, per source slice.
    expected = segment(load_predictor(model), np.stack(stored[[1, 2, 0]]).astype(np.float32) - 1024.0, batch_size=8)
    uids = [ds.SOPInstanceUID for ds in sources]
    labels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(labels, expected)
    # Geometry from the source: spacing, orientation, one frame position per slice.
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [0.6, 0.9]
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    assert [float(v) for v in orientation] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    positions = {
        float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert positions == {0.0, 2.5, 5.0}
    quantification = report["scans"][0]["quantification"]
    assert quantification["unit"] == "mL"
    assert quantification["amount_per_pixel"] == pytest.approx(0.6 * 0.9 * 2.5 / 1000)


def write_truncated(path, source):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bad_inputs(tmp_path, nifti_path):
    """(name, input path) pairs that must be refused."""
    png = tmp_path / "ok.png"
    cv2.imwrite(str(png), np.full((32, 32), 100, np.uint8))
    four_d = tmp_path / "4d.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 3, 2), np.int16), np.eye(4)), str(four_d))
    return {
        "truncated_png": (write_truncated(tmp_path / "truncated.png", png), "corrupt, truncated"),
        "truncated_nifti": (write_truncated(tmp_path / "truncated.nii.gz", nifti_path), "corrupt or truncated"),
        "4d_nifti": (four_d, "4D NIfTI"),
        "missing": (tmp_path / "absent.nii.gz", "does not exist"),
        "png_for_hu_model": (png, "trained on Hounsfield units"),
    }


def test_bad_inputs_exit_2_with_one_line_and_no_output(export_dir, nifti_path, tmp_path, capsys):
    model = str(export_dir / "model_fp32.tflite")
    for name, (path, expected) in bad_inputs(tmp_path, nifti_path).items():
        out = tmp_path / f"out_{name}"
        status, stdout, stderr = run(["--model", model, "--input", str(path), "--out", str(out), "--quiet"], capsys)
        assert status == 2, name
        assert len(stderr.strip().splitlines()) == 1 and expected in stderr, (name, stderr)
        assert not out.exists() and not list(tmp_path.glob(f".{out.name}*")), name


def test_model_that_does_not_fit_is_refused(export_dir, nifti_path, tmp_path):
    # Class count: the model predicts 4 classes, the caller expects 3.
    with pytest.raises(InferenceError, match="predicts 4 classes"):
        tf_resattn.predict(
            export_dir / "saved_model", nifti_path, tmp_path / "a", num_classes=3, notify=lambda notice: None
        )
    assert not (tmp_path / "a").exists()
    # Input size: a TFLite file whose preprocessing.json says another training size.
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    shutil.copy(export_dir / "model_fp32.tflite", mismatched)
    write_preprocessing(mismatched, "hu", image_size=128)
    with pytest.raises(ExportError, match="64x64 inputs but the preprocessing.json beside it resizes to 128x128"):
        tf_resattn.predict(mismatched / "model_fp32.tflite", nifti_path, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    with pytest.raises(InferenceError, match="batch size must be a positive whole number, got 0"):
        tf_resattn.predict(export_dir / "model_fp32.tflite", nifti_path, tmp_path / "c", batch_size=0)
    assert not (tmp_path / "c").exists()


def test_existing_output_needs_overwrite(export_dir, nifti_path, tmp_path):
    out = tmp_path / "pred"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    model = export_dir / "model_fp32.tflite"
    with pytest.raises(ExportError, match="--overwrite"):
        tf_resattn.predict(model, nifti_path, out, progress=False)
    assert (out / "keep.txt").read_text() == "earlier work"
    with pytest.raises(
        ExportError, match="not written by tf_resattn"
    ):  # overwrite replaces only a folder an earlier run wrote
        tf_resattn.predict(model, nifti_path, out, progress=False, overwrite=True)
    assert (out / "keep.txt").read_text() == "earlier work"
    (out / MARKER).write_text("")
    tf_resattn.predict(model, nifti_path, out, progress=False, overwrite=True)
    assert (out / "report.json").is_file() and not (out / "keep.txt").exists()
