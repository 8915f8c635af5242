"""Training and prediction read every input the same way: one table of formats and bad cases, both paths.

Training reads through `load_slices` (then preprocesses), prediction through
`predict_path`. For each good input the preprocessed training slices must equal
the prediction's raw slices preprocessed with the same `Preprocessing`, with the
same spacing; for each bad input both must fail with the same one-line
`DataError`.
"""

import warnings

import cv2
import nibabel
import numpy as np
import pytest
from data_helpers import write_dicom_series, write_nifti, write_png_set

from tf_resattn.data import LUNG_WINDOW, DataError, Preprocessing, detect_input_kind, load_slices, synthetic_hu_slices
from tf_resattn.inference import predict_path
from tf_resattn.io import read_path, read_scans

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, size=(2, 24, 20), dtype=np.uint8)
LABELS = RNG.integers(0, 4, size=(2, 24, 20), dtype=np.uint8)
HU, HU_LABELS = synthetic_hu_slices(n=3, image_size=(24, 20), seed=1)


def _manifest(folder, suffix, images, params=None):
    """Writes `images` as `<k><suffix>` with PNG masks and a manifest listing them."""
    folder.mkdir()
    rows = ["image,mask,group"]
    for k, image in enumerate(images):
        cv2.imwrite(str(folder / f"{k}{suffix}"), image, params or [])
        cv2.imwrite(str(folder / f"{k}_mask.png"), LABELS[k])
        rows.append(f"{k}{suffix},{k}_mask.png,patient{k}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder


def _nifti(folder, volume, labels, shape=None):
    folder.mkdir()
    image = write_nifti(folder / "tr_im.nii.gz", volume)
    write_nifti(folder / "tr_mask.nii.gz", labels, dtype=np.uint8)
    if shape is not None:
        loaded = nibabel.load(str(image))
        nibabel.save(nibabel.Nifti1Image(np.asarray(loaded.dataobj).reshape(shape), loaded.affine), str(image))
    return image


def _dicom(folder, sizes=None):
    stored = (HU + 1024).clip(0, None).astype(np.uint16)
    write_dicom_series(folder, stored, [0.0, 2.5, 5.0], ["a.dcm", "b.dcm", "c.dcm"], intercept=-1024.0)
    write_nifti(folder / "mask.nii.gz", HU_LABELS, dtype=np.uint8)
    if sizes:
        write_dicom_series(folder, stored[:1, : sizes[0], : sizes[1]], [7.5], ["d.dcm"], intercept=-1024.0)
    return folder


def _corrupt(path, data=b"not an image at all"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


GOOD = {
    "png_folder": lambda d: write_png_set(d / "set", list(GREY), list(LABELS)),
    "jpg_manifest": lambda d: _manifest(d / "set", ".jpg", GREY, [cv2.IMWRITE_JPEG_QUALITY, 100]),
    "tiff_16bit_manifest": lambda d: _manifest(d / "set", ".tif", GREY.astype(np.uint16)),
    "bmp_manifest": lambda d: _manifest(d / "set", ".bmp", GREY),
    "colour_png_manifest": lambda d: _manifest(d / "set", ".png", np.stack([GREY, GREY // 2, 255 - GREY], axis=-1)),
    "nifti": lambda d: _nifti(d / "vol", HU, HU_LABELS),
    "nifti_4d_one_time_point": lambda d: _nifti(d / "vol", HU, HU_LABELS, shape=(20, 24, 3, 1)),
    "dicom_series": lambda d: _dicom(d / "series"),
}

BAD = {
    "missing": lambda d: d / "absent.nii.gz",
    "empty_folder": lambda d: (d / "empty").mkdir() or d / "empty",
    "unknown_extension": lambda d: _corrupt(d / "notes.txt", b"hello"),
    "folder_of_unknown_files": lambda d: _corrupt(d / "stuff" / "notes.txt", b"hello").parent,
    "corrupt_png": lambda d: _corrupt(d / "set" / "images" / "img_0000.png"),
    "corrupt_jpg_manifest": lambda d: (_manifest(d / "set", ".jpg", GREY), _corrupt(d / "set" / "1.jpg"))[0],
    "truncated_nifti": lambda d: _corrupt(d / "tr_im.nii.gz", b"\x1f\x8b\x08\x00"),
    "nifti_4d": lambda d: _nifti(d / "vol", HU, HU_LABELS, shape=(20, 24, 1, 3)),
    "corrupt_dicom": lambda d: (
        _dicom(d / "series"),
        _corrupt(d / "series" / "b.dcm", b"\0" * 128 + b"DICM" + b"\1" * 40),
    )[0],
    "dicom_mixed_sizes": lambda d: _dicom(d / "series", sizes=(16, 20)),
    "manifest_without_image_column": lambda d: _corrupt(d / "manifest.csv", b"picture,label\na.png,b.png\n"),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_training_and_prediction_read_the_same(case, tmp_path):
    path = GOOD[case](tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training = load_slices(path)
        scans = read_scans(path)  # what predict_path segments
        stored = read_path(path)  # what load_slices preprocesses
    assert len({str(w.message) for w in caught if "colour" in str(w.message)}) == (1 if "colour" in case else 0)
    raw = [s for scan in scans for s in scan.slices]
    kind = detect_input_kind(raw, from_volume=scans[0].kind != "image", source=str(path))
    assert kind == training.input_kind
    prediction = np.stack([Preprocessing(kind, LUNG_WINDOW, None).apply(s) for s in raw])
    np.testing.assert_array_equal(training.images, prediction)
    for read_for_training, read_for_prediction in zip(stored.images, raw):
        assert read_for_training.dtype == read_for_prediction.dtype
        np.testing.assert_array_equal(read_for_training, read_for_prediction)
    spacing = [scan.spacing_mm for scan in scans for _ in scan.slices]
    if training.spacing_mm is None:
        assert all(s is None for s in spacing)
    else:
        np.testing.assert_allclose(training.spacing_mm, spacing)


@pytest.mark.parametrize("case", sorted(BAD))
def test_training_and_prediction_refuse_the_same(case, tmp_path):
    path = BAD[case](tmp_path)
    with pytest.raises(DataError) as for_training:
        load_slices(path)
    with pytest.raises(DataError) as for_prediction:
        predict_path(tmp_path / "model.keras", path, tmp_path / "out", progress=False)
    assert str(for_training.value) == str(for_prediction.value)
    assert "\n" not in str(for_training.value)
    assert not (tmp_path / "out").exists()
