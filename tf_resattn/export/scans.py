"""Reading what `predict` segments: 2-D image files, a NIfTI volume or a DICOM series.

Each input becomes a `Scan`: raw slices `[N, H, W]` (8-bit grey for images,
Hounsfield units for volumes), the geometry needed to write the labels back in
the input's own format, and the pixel spacing for quantification. Volumes are
sliced as `tf_resattn.data.readers` does (NIfTI slice `k` is `data[:, :, k].T`;
DICOM in patient order), so a model trained on either sees what it saw then.
"""

import dataclasses
import pathlib

import cv2
import numpy as np

from tf_resattn.data import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclasses.dataclass
class Scan:
    """One input to segment.

    Attributes:
        name: output name stem (`img_0001` for `img_0001.png`, `tr_im` for `tr_im.nii.gz`).
        kind: `"image"`, `"nifti"` or `"dicom"`.
        slices: float32 `[N, H, W]` raw values.
        input_kind: `"uint8"` for images, `"hu"` for volumes.
        spacing_mm: (row, col) pixel size in mm, or None when unknown.
        thickness_mm: distance between slices in mm (volumes), or None.
        source: the path read.
        nifti: the nibabel image (affine and header) of a NIfTI input.
        dicom_files: the DICOM files in slice order.
    """

    name: str
    kind: str
    slices: np.ndarray
    input_kind: str
    spacing_mm: tuple | None = None
    thickness_mm: float | None = None
    source: str = ""
    nifti: object = None
    dicom_files: list | None = None


def read_scans(path):
    """Reads `path` (an image file, a folder of images, a NIfTI file or a DICOM series folder) into scans.

    Raises:
        DataError: missing, empty, unreadable or truncated input, 4-D NIfTI, multi-channel images.
    """
    from tf_resattn.data.readers import _dicom_files

    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist; pass a PNG/JPG slice, a folder of them, a NIfTI volume or a DICOM series folder")
    if path.is_file():
        if path.name.lower().endswith(NIFTI_SUFFIXES):
            return [read_nifti(path)]
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return [read_image(path)]
        raise DataError(f"{path}: unknown input type; pass a PNG/JPG slice, a NIfTI volume (.nii, .nii.gz) or a DICOM series folder")
    if _dicom_files(path):
        return [read_dicom(path)]
    images = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
    if not images:
        raise DataError(f"folder {path} holds no PNG/JPG images or DICOM files; put the slices to segment there")
    return [read_image(f) for f in images]


def read_image(path):
    """An 8-bit grey image file as a one-slice scan (no spacing)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot read image {path}: the file is corrupt or truncated, or not an image; replace it")
    if image.ndim == 3:
        colour = image[..., :3]
        if not np.all(colour == colour[..., :1]):
            raise DataError(f"{path} is a multi-channel (colour) image; give single-channel grey CT slices")
        image = colour[..., 0]
    if image.dtype != np.uint8 and (image.min() < 0 or image.max() > 255):
        raise DataError(f"{path} holds values {image.min()}..{image.max()}, not 8-bit grey; window it to 0..255 or give the CT as NIfTI/DICOM")
    return Scan(path.stem, "image", image[None].astype(np.float32), "uint8", source=str(path))


def read_nifti(path):
    """A 3-D NIfTI volume in HU (a 2-D one is one slice); spacing from the header's zooms."""
    import nibabel

    try:
        image = nibabel.load(str(path))
        volume = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as e:  # nibabel and gzip raise many types for corrupt or truncated files
        raise DataError(f"cannot read NIfTI {path} ({type(e).__name__}); the file is corrupt or truncated, replace it") from e
    if volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume[..., 0]
    if volume.ndim == 2:
        volume = volume[..., None]
    if volume.ndim != 3:
        raise DataError(f"{path} is a {volume.ndim}-D NIfTI of shape {volume.shape}; give a 3-D volume (one time point or channel)")
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3]) + (1.0,) * 3
    name = path.name[: -len(next(s for s in NIFTI_SUFFIXES[::-1] if path.name.lower().endswith(s)))]
    return Scan(
        name,
        "nifti",
        np.ascontiguousarray(volume.transpose(2, 1, 0)),
        "hu",
        spacing_mm=(zooms[1], zooms[0]),
        thickness_mm=zooms[2],
        source=str(path),
        nifti=image,
    )


def read_dicom(folder):
    """A DICOM series in HU, in patient order; spacing from PixelSpacing, thickness from the slice positions."""
    import pydicom

    from tf_resattn.data.readers import read_dicom_series

    raw = read_dicom_series(folder)
    shapes = {image.shape for image in raw.images}
    if len(shapes) > 1:
        raise DataError(f"DICOM series {folder} mixes slice sizes {sorted(shapes)}; give one series per folder")
    files = [pathlib.Path(f) for f in raw.image_files]
    return Scan(
        pathlib.Path(folder).name,
        "dicom",
        np.stack(raw.images).astype(np.float32),
        "hu",
        spacing_mm=None if raw.spacing_mm is None else tuple(raw.spacing_mm[0]),
        thickness_mm=_dicom_slice_distance([pydicom.dcmread(f, stop_before_pixels=True) for f in files[:2]]),
        source=str(folder),
        dicom_files=files,
    )


def _dicom_slice_distance(first_two):
    """Distance between the first two slices' positions, else SpacingBetweenSlices or SliceThickness, else None."""
    if len(first_two) == 2 and all("ImagePositionPatient" in ds for ds in first_two):
        distance = float(np.linalg.norm(np.subtract(first_two[1].ImagePositionPatient, first_two[0].ImagePositionPatient)))
        if distance > 0:
            return distance
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        if keyword in first_two[0]:
            return float(first_two[0].get(keyword))
    return None
