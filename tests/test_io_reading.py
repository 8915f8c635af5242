"""`tf_resattn.io` reading through `load_slices`: the real MedSeg PNGs, NIfTI and DICOM written here, and every bad input."""

import gzip
import shutil

import cv2
import nibabel
import numpy as np
import pytest
from data_helpers import write_dicom_series, write_nifti, write_png_set

from tf_resattn.data import DataError, load_slices, synthetic_hu_slices


def _expect_data_error(match, path, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        load_slices(path, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def _grey_images(n, size, rng):
    return [rng.integers(0, 256, size=(size, size), dtype=np.uint8) for _ in range(n)]


def _label_maps(n, size, rng, num_classes=4):
    return [rng.integers(0, num_classes, size=(size, size), dtype=np.uint8) for _ in range(n)]


# ---- the real data set -------------------------------------------------------------------------


def test_medseg100_reads_98_labelled_slices(medseg100_dir):
    with pytest.warns(UserWarning, match="0022, 0048"):
        slices = load_slices(medseg100_dir)
    assert len(slices) == 98 and "0022" not in slices.names and "0048" not in slices.names
    assert slices.images.shape == (98, 512, 512, 1) and slices.images.dtype == np.float32
    assert slices.masks.shape == (98, 512, 512) and slices.masks.dtype == np.uint8
    assert slices.input_kind == "uint8" and slices.groups is None and slices.spacing_mm is None
    assert 0.0 <= slices.images.min() and slices.images.max() <= 1.0 and slices.images.max() == 1.0
    assert set(np.unique(slices.masks)) == {0, 1, 2, 3}
    index = slices.names.index("0001")
    raw_image = cv2.imread(str(medseg100_dir / "images" / "img_0001.png"), cv2.IMREAD_UNCHANGED)
    raw_mask = cv2.imread(str(medseg100_dir / "masks" / "mask_0001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(slices.images[index, ..., 0], raw_image / 255.0, atol=1e-6)
    np.testing.assert_array_equal(slices.masks[index], raw_mask)
    # classes present per slice, as the data README counts them: 98 / 96 / 77 / 25
    assert [int((slices.masks == k).any(axis=(1, 2)).sum()) for k in range(4)] == [98, 96, 77, 25]


# ---- PNG folders and manifests -----------------------------------------------------------------


def test_png_folder_pairs_by_name_and_drops_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    images, masks = _grey_images(3, 16, rng), _label_maps(3, 16, rng)
    write_png_set(tmp_path, images, [masks[0], None, masks[2]], names=["0007", "0008", "0009"])
    with pytest.warns(UserWarning, match="dropped 1 slices without a mask: 0008"):
        slices = load_slices(tmp_path)
    assert slices.names == ["0007", "0009"]
    np.testing.assert_allclose(slices.images[1, ..., 0], images[2] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(slices.masks[1], masks[2])


def test_manifest_gives_paths_names_and_groups(tmp_path):
    rng = np.random.default_rng(1)
    images, masks = _grey_images(3, 16, rng), _label_maps(3, 16, rng)
    write_png_set(tmp_path, images, masks)
    (tmp_path / "manifest.csv").write_text(
        "name,image,mask,patient\n"
        "b,images/img_0001.png,masks/mask_0001.png,p2\n"
        "a,images/img_0000.png,masks/mask_0000.png,p1\n"
        "c,images/img_0002.png,masks/mask_0002.png,p2\n"
    )
    slices = load_slices(tmp_path / "manifest.csv")
    assert slices.names == ["b", "a", "c"] and slices.groups == ["p2", "p1", "p2"]
    np.testing.assert_array_equal(slices.masks[0], masks[1])
    assert load_slices(tmp_path).names == ["b", "a", "c"]  # a folder with a manifest uses it


def test_sixteen_bit_png_within_8bit_range_is_uint8(tmp_path):
    image = np.arange(256, dtype=np.uint16).reshape(16, 16)
    write_png_set(tmp_path, [image], [np.zeros((16, 16), np.uint8)])
    slices = load_slices(tmp_path)
    assert slices.input_kind == "uint8"
    np.testing.assert_allclose(slices.images[0, ..., 0], image / 255.0, atol=1e-6)


def test_sixteen_bit_png_beyond_8bit_is_reported(tmp_path):
    image = np.full((16, 16), 3000, np.uint16)
    write_png_set(tmp_path, [image], [np.zeros((16, 16), np.uint8)])
    _expect_data_error("neither 8-bit.*input_kind", tmp_path)


def test_colour_image_is_converted_to_grey_with_a_note(tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 2] = 200  # pure red in BGR
    write_png_set(tmp_path, [image], [np.zeros((16, 16), np.uint8)])
    with pytest.warns(UserWarning, match="colour images converted to grey"):
        slices = load_slices(tmp_path)
    expected = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) / 255.0
    np.testing.assert_allclose(slices.images[0, ..., 0], expected, atol=1e-6)


def test_resizing_scales_images_and_keeps_labels(tmp_path):
    rng = np.random.default_rng(2)
    write_png_set(tmp_path, _grey_images(2, 40, rng), _label_maps(2, 40, rng, num_classes=3))
    slices = load_slices(tmp_path, image_size=(24, 30))
    assert slices.images.shape == (2, 24, 30, 1) and slices.masks.shape == (2, 24, 30)
    assert set(np.unique(slices.masks)) <= {0, 1, 2}


# ---- NIfTI -------------------------------------------------------------------------------------


def test_nifti_round_trip_values_orientation_spacing(tmp_path):
    hu, masks = synthetic_hu_slices(n=3, image_size=(24, 32), seed=3)
    hu = np.round(hu)
    write_nifti(tmp_path / "tr_im.nii.gz", hu, zooms=(0.7, 0.8, 5.0))
    write_nifti(tmp_path / "tr_mask.nii.gz", masks, zooms=(0.7, 0.8, 5.0), dtype=np.uint8)
    slices = load_slices(tmp_path / "tr_im.nii.gz", hu_window=(-1000, 400))
    assert slices.input_kind == "hu" and slices.names == ["tr_im:000", "tr_im:001", "tr_im:002"]
    assert slices.images.shape == (3, 24, 32, 1)  # rows along y, columns along x
    np.testing.assert_allclose(slices.images[..., 0], np.clip((hu + 1000) / 1400, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(slices.masks, masks)
    # the documented orientation: slice k is data[:, :, k].T, i.e. fliplr(rot90(data[:, :, k], 3))
    data = np.asarray(nibabel.load(str(tmp_path / "tr_im.nii.gz")).dataobj)
    np.testing.assert_allclose(
        slices.images[1, ..., 0] * 1400 - 1000, np.fliplr(np.rot90(data[:, :, 1], 3)).clip(-1000, 400), atol=1e-3
    )
    np.testing.assert_allclose(slices.spacing_mm, [[0.8, 0.7]] * 3)
    half = load_slices(tmp_path / "tr_im.nii.gz", image_size=(12, 16))
    np.testing.assert_allclose(half.spacing_mm, [[1.6, 1.4]] * 3)


def test_nifti_with_8bit_values_is_reported(tmp_path):
    rng = np.random.default_rng(4)
    write_nifti(tmp_path / "tr_im.nii.gz", rng.integers(0, 256, size=(2, 16, 16)))
    write_nifti(tmp_path / "tr_mask.nii.gz", np.zeros((2, 16, 16)), dtype=np.uint8)
    _expect_data_error("do not look like Hounsfield units.*input_kind='uint8'", tmp_path / "tr_im.nii.gz")
    assert load_slices(tmp_path / "tr_im.nii.gz", input_kind="uint8").input_kind == "uint8"


def test_nifti_mask_given_explicitly(tmp_path):
    hu, masks = synthetic_hu_slices(n=2, image_size=16, seed=5)
    write_nifti(tmp_path / "scan.nii.gz", np.round(hu))
    write_nifti(tmp_path / "labels.nii", masks, dtype=np.uint8)
    _expect_data_error("no mask found for any image.*mask_path", tmp_path / "scan.nii.gz")
    slices = load_slices(tmp_path / "scan.nii.gz", mask_path=tmp_path / "labels.nii")
    np.testing.assert_array_equal(slices.masks, masks)


# ---- DICOM -------------------------------------------------------------------------------------


def test_dicom_series_rescaled_to_hu_and_ordered_by_position(tmp_path):
    rng = np.random.default_rng(6)
    stored = rng.integers(0, 1500, size=(4, 12, 10)).astype(np.uint16)
    positions = [30.0, -10.0, 20.0, 0.0]  # file order is not patient order
    folder = write_dicom_series(
        tmp_path / "series", stored, positions, ["a.dcm", "b.dcm", "c.dcm", "d.dcm"], slope=2.0, intercept=-1024.0
    )
    masks = rng.integers(0, 4, size=(4, 12, 10)).astype(np.uint8)
    order = np.argsort(positions)
    write_nifti(folder / "mask.nii.gz", masks[order], dtype=np.uint8)
    slices = load_slices(folder, hu_window=(-1100, 2000))
    assert slices.names == ["b.dcm", "d.dcm", "c.dcm", "a.dcm"] and slices.input_kind == "hu"
    expected_hu = stored[order].astype(np.float64) * 2.0 - 1024.0
    np.testing.assert_allclose(slices.images[..., 0], (expected_hu + 1100) / 3100, atol=1e-6)
    np.testing.assert_array_equal(slices.masks, masks[order])
    np.testing.assert_allclose(slices.spacing_mm, [[0.6, 0.9]] * 4)


# ---- bad inputs: one line, naming the problem and the fix --------------------------------------


def test_missing_path(tmp_path):
    _expect_data_error("does_not_exist does not exist; pass a PNG", tmp_path / "does_not_exist")


def test_empty_folder(tmp_path):
    _expect_data_error("is empty", tmp_path)


def test_empty_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    _expect_data_error("holds no images", tmp_path)


def test_images_without_any_mask_are_listed(tmp_path):
    rng = np.random.default_rng(7)
    write_png_set(tmp_path, _grey_images(2, 8, rng), [None, None], names=["0001", "0002"])
    _expect_data_error("no mask found for any image \\(0001, 0002\\)", tmp_path)


def test_image_mask_size_mismatch(tmp_path):
    write_png_set(tmp_path, [np.zeros((16, 16), np.uint8)], [np.zeros((16, 12), np.uint8)])
    message = _expect_data_error("is 16x16 but its mask", tmp_path)
    assert "img_0000.png" in message and "mask_0000.png" in message and "16x12" in message


def test_label_values_out_of_range(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[0, :2] = (4, 7)
    write_png_set(tmp_path, [np.zeros((8, 8), np.uint8)], [mask])
    _expect_data_error("mask_0000.png has label values 4, 7 outside 0..3", tmp_path)
    assert load_slices(tmp_path, num_classes=8).masks.max() == 7


def test_corrupt_png(tmp_path):
    write_png_set(tmp_path, [np.zeros((8, 8), np.uint8)], [np.zeros((8, 8), np.uint8)])
    png = tmp_path / "images" / "img_0000.png"
    png.write_bytes(png.read_bytes()[:20])
    _expect_data_error("img_0000.png: it is corrupt, truncated", tmp_path)


def test_truncated_nifti(tmp_path):
    hu, masks = synthetic_hu_slices(n=2, image_size=16, seed=8)
    path = write_nifti(tmp_path / "tr_im.nii.gz", np.round(hu))
    write_nifti(tmp_path / "tr_mask.nii.gz", masks, dtype=np.uint8)
    path.write_bytes(path.read_bytes()[:200])
    _expect_data_error("cannot read NIfTI file .*tr_im.nii.gz.*corrupt or truncated", path)


def test_four_dimensional_nifti(tmp_path):
    path = tmp_path / "tr_im.nii"
    nibabel.save(nibabel.Nifti1Image(np.full((8, 8, 2, 3), -1000, np.int16), np.eye(4)), str(path))
    _expect_data_error("4D NIfTI", path)


def test_unknown_file_and_folder_kinds(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _expect_data_error("unknown kind of file", tmp_path / "notes.txt")
    _expect_data_error("no images/ folder, manifest.csv, DICOM or image files", tmp_path)


def test_manifest_without_image_column(tmp_path):
    (tmp_path / "manifest.csv").write_text("picture,label\na.png,b.png\n")
    _expect_data_error("has no image column", tmp_path)


def test_non_gzip_payload_named_nii_gz(tmp_path):
    path = tmp_path / "tr_im.nii.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"definitely not a NIfTI header")
    shutil.copy(path, tmp_path / "tr_mask.nii.gz")
    _expect_data_error("cannot read NIfTI file", path)
