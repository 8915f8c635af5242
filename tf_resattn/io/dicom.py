"""DICOM series: one grey slice per file, in Hounsfield units, in patient order.

HU = stored value * RescaleSlope + RescaleIntercept. Order: position along the
slice normal (ImagePositionPatient . (row x column direction)), else
InstanceNumber, else file name; every file of a series must be ordered the same
way (a file without the position its neighbours have is refused). Pixel data is `[rows, columns]` and is used as
it is. A series is one volume: every slice must have the same size.
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.io.errors import DataError, one_line
from tf_resattn.io.nifti import load_nifti
from tf_resattn.io.scan import Scan

SERIES_MASK_NAME = "mask.nii.gz"
"""The label volume of a series found in its folder."""


def dicom_files(folder):
    """Files of a folder that are DICOM: a `.dcm` name or the `DICM` marker at byte 128."""
    files = []
    for f in sorted(pathlib.Path(folder).iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix.lower() == ".dcm":
            files.append(f)
        elif not f.suffix:
            with open(f, "rb") as handle:
                if handle.read(132)[128:] == b"DICM":
                    files.append(f)
    return files


def read_dicom_series(folder, mask_path=None, masks=False):
    """A DICOM series as a scan; with `masks`, its labels too.

    Spacing: PixelSpacing (row, col) of the first slice; slice distance: between the first two
    positions, else SpacingBetweenSlices or SliceThickness. Labels: a NIfTI volume (`mask_path`,
    or `mask.nii.gz` in the folder) with one slice per DICOM file in patient order, oriented like
    `tf_resattn.io.nifti`.
    """
    pydicom = optional.require("pydicom", "io")

    folder = pathlib.Path(folder)
    slices = []
    for f in dicom_files(folder):
        try:
            ds = pydicom.dcmread(f)
            pixels = ds.pixel_array
        except Exception as e:  # pydicom raises many types for corrupt or truncated files
            raise DataError(
                f"cannot read DICOM file {f} ({one_line(e)}); the file is corrupt or truncated, replace it"
            ) from e
        if pixels.ndim != 2:
            raise DataError(
                f"{f} is a multi-frame or colour DICOM (pixel shape {pixels.shape}); give one grey slice per file"
            )
        hu = pixels.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
            getattr(ds, "RescaleIntercept", 0)
        )
        slices.append((_order_key(ds, f), f, hu, ds))
    _check_one_order(slices, folder)
    slices.sort(key=lambda s: s[0])
    shapes = sorted({s[2].shape for s in slices})
    if len(shapes) > 1:
        raise DataError(f"DICOM series {folder} mixes slice sizes {shapes}; give one series per folder")
    files = [s[1] for s in slices]
    headers = [s[3] for s in slices]
    labels = None
    if masks:
        if mask_path is None and (folder / SERIES_MASK_NAME).is_file():
            mask_path = folder / SERIES_MASK_NAME
        if mask_path is not None:
            labels = load_nifti(pathlib.Path(mask_path))[0]
            if labels.shape[-1] != len(slices):
                raise DataError(
                    f"mask {mask_path} has {labels.shape[-1]} slices but the DICOM series {folder} has {len(slices)}; "
                    "give the label volume of this series"
                )
    return Scan(
        name=folder.name,
        kind="dicom",
        slices=np.stack([s[2] for s in slices]),
        slice_names=[f.name for f in files],
        image_files=[str(f) for f in files],
        masks=None if labels is None else list(labels.transpose(2, 1, 0)),
        mask_files=None if labels is None else [f"{mask_path} slice {k}" for k in range(len(files))],
        spacing_mm=tuple(float(s) for s in headers[0].PixelSpacing)
        if all("PixelSpacing" in ds for ds in headers)
        else None,
        thickness_mm=_slice_distance(headers[:2]),
        source=str(folder),
        dicom_files=files,
    )


ORDER_ATTRIBUTES = (("ImagePositionPatient", "ImageOrientationPatient"), ("InstanceNumber",))
"""What puts the slices in order: position along the normal (both attributes), else instance number, else file name."""


def _check_one_order(slices, folder):
    """Refuses a series whose files cannot all be ordered the same way (an attribute some files lack)."""
    ranks = sorted({key[0] for key, *_ in slices})
    if len(ranks) == 1:
        return
    missing = next((f, ds) for (rank, *_), f, _, ds in slices if rank != ranks[0])
    attribute = next(a for a in ORDER_ATTRIBUTES[ranks[0]] if a not in missing[1])
    others = sum(1 for (rank, *_), *_ in slices if rank == ranks[0])
    raise DataError(
        f"DICOM file {missing[0]} lacks {attribute}, which {others} other files of the series {folder} have, so the slices "
        "cannot be put in order; restore it from the original series or remove the file"
    )


def _order_key(ds, path):
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        return (0, float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))), path.name)
    if "InstanceNumber" in ds:
        return (1, float(ds.InstanceNumber), path.name)
    return (2, 0.0, path.name)


def _slice_distance(first_two):
    """Distance between the first two slices' positions, else SpacingBetweenSlices or SliceThickness, else None."""
    if len(first_two) == 2 and all("ImagePositionPatient" in ds for ds in first_two):
        distance = float(
            np.linalg.norm(np.subtract(first_two[1].ImagePositionPatient, first_two[0].ImagePositionPatient))
        )
        if distance > 0:
            return distance
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        if keyword in first_two[0]:
            return float(first_two[0].get(keyword))
    return None
