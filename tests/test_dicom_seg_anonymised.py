"""Issue case 3: DICOM SEG from series stripped as anonymisers strip them, round-tripped through the SEG reader."""

import numpy as np
import pydicom
import pytest
from data_helpers import write_dicom_series
from hostile_helpers import run_predict, snapshot, tiny_model

from tf_resattn.data import synthetic_hu_slices

ANONYMISED_AWAY = (
    "PatientBirthDate",
    "PatientSex",
    "StudyTime",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
)
"""Type-2 attributes the common anonymisers drop."""


@pytest.fixture(scope="module")
def hu_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"), "hu")


@pytest.fixture
def stored():
    """Three synthetic CT slices of 40x48 as stored (HU + 1024)."""
    return (synthetic_hu_slices(n=3, image_size=(40, 48), seed=5)[0] + 1024).clip(0, None).astype(np.uint16)


def anonymised_series(folder, stored, strip=ANONYMISED_AWAY, strip_one=()):
    """A CT series at z = 5, 0, 2.5 without `strip` in any file and without `strip_one` in the second file."""
    write_dicom_series(folder, stored, [5.0, 0.0, 2.5], ["s0.dcm", "s1.dcm", "s2.dcm"], intercept=-1024.0)
    for k, path in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(path)
        for keyword in strip + (strip_one if k == 1 else ()):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(path)
    return folder


def test_an_anonymised_series_gives_a_seg_the_reader_takes(hu_model, stored, tmp_path, capsys):
    import highdicom

    from tf_resattn.inference.predict import segment
    from tf_resattn.inference.predictors import load_predictor

    series = anonymised_series(tmp_path / "series", stored, ANONYMISED_AWAY + ("PatientName", "PatientID"))
    assert not any("SliceThickness" in pydicom.dcmread(p) for p in series.iterdir())
    before = snapshot(series)
    status, _, stderr = run_predict(
        ["--model", hu_model, "--input", series, "--out", tmp_path / "pred", "--quiet"], capsys
    )
    assert status == 0, stderr
    assert snapshot(series) == before
    seg = highdicom.seg.segread(tmp_path / "pred" / "labels" / "series_seg.dcm")
    for keyword in ANONYMISED_AWAY + ("PatientName", "PatientID"):
        assert keyword in seg and seg.get(keyword) in ("", None), keyword
    assert seg.StudyDate == "20200101"  # what the source keeps is copied
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == 2.5  # the slice distance stands for the missing thickness
    in_order = [pydicom.dcmread(series / name) for name in ("s1.dcm", "s2.dcm", "s0.dcm")]  # z = 0, 2.5, 5
    labels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[ds.SOPInstanceUID for ds in in_order], combine_segments=True
    )
    expected = segment(load_predictor(hu_model), stored[[1, 2, 0]].astype(np.float32) - 1024.0, batch_size=8)
    assert expected.any()
    np.testing.assert_array_equal(labels, expected)


# (case, attributes stripped from every file, from the second file only, expected line)
UNUSABLE = [
    (
        "position_missing_on_one_slice",
        (),
        ("ImagePositionPatient",),
        "s1.dcm lacks ImagePositionPatient, which 2 other files",
    ),
    (
        "position_missing_everywhere",
        ("ImagePositionPatient",),
        (),
        "lacks ImagePositionPatient, which a DICOM SEG needs",
    ),
    ("pixel_spacing_missing", ("PixelSpacing",), (), "lacks PixelSpacing, which a DICOM SEG needs"),
    ("frame_of_reference_missing", ("FrameOfReferenceUID",), (), "lacks FrameOfReferenceUID"),
]


@pytest.mark.parametrize("case, strip, strip_one, expected", UNUSABLE, ids=[c[0] for c in UNUSABLE])
def test_a_series_a_seg_cannot_be_made_from_is_refused_before_segmenting(
    case, strip, strip_one, expected, hu_model, stored, tmp_path, capsys
):
    series = anonymised_series(tmp_path / "series", stored, ANONYMISED_AWAY + strip, strip_one)
    before = snapshot(series)
    status, _, stderr = run_predict(
        ["--model", hu_model, "--input", series, "--out", tmp_path / "pred", "--quiet"], capsys
    )
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr
    assert snapshot(series) == before and not (tmp_path / "pred").exists() and not list(tmp_path.glob(".pred*"))


def test_one_slice_without_slice_thickness_is_refused(hu_model, stored, tmp_path, capsys):
    series = tmp_path / "series"
    write_dicom_series(series, stored[:1], [0.0], ["only.dcm"], intercept=-1024.0)
    status, _, stderr = run_predict(["--model", hu_model, "--input", series, "--out", tmp_path / "pred"], capsys)
    assert status == 2 and "lacks SliceThickness" in stderr and not (tmp_path / "pred").exists()
