"""`read_scans`: from a path on disk to scans, values as stored; `read_path`: the same as a flat list of slices.

Supported inputs (picked by what is found, in this order):

- a NIfTI volume (`tr_im.nii.gz`, Hounsfield units), its label volume beside it
  (`tr_mask.nii.gz`) or given as `mask_path` (`tf_resattn.io.nifti`);
- a manifest CSV, or a folder holding `manifest.csv` (`tf_resattn.io.manifest`);
- an image file (`IMAGE_EXTENSIONS`);
- a folder with `images/` and `masks/` (the layout of `../shared/data/medseg100`):
  `images/img_NNNN.png` is paired with `masks/mask_NNNN.png` (or a mask of the same name);
- a DICOM series folder (one file per slice; `tf_resattn.io.dicom`), labels from
  `mask_path` or a `mask.nii.gz` in the folder;
- a folder of image files (no masks).

A folder holding more than one kind (image files, DICOM files, NIfTI volumes) is
refused rather than read in part.

Training (`tf_resattn.data.load_slices`) and prediction (`tf_resattn.inference.predict_path`)
both read through here, so a model is served its input read exactly as it was trained on.
"""

import pathlib

from tf_resattn.io.dicom import SERIES_MASK_NAME, dicom_files, read_dicom_series
from tf_resattn.io.errors import DataError
from tf_resattn.io.image_files import IMAGE_EXTENSIONS, image_scans, is_image_file, mask_candidates
from tf_resattn.io.manifest import read_manifest
from tf_resattn.io.nifti import is_nifti, read_nifti
from tf_resattn.io.non_finite import warn_non_finite, with_finite_values
from tf_resattn.io.scan import flatten

MANIFEST_NAME = "manifest.csv"
KINDS_ACCEPTED = "a PNG/JPG/TIFF/BMP slice or a folder of them, images/ with masks/, a manifest .csv, a NIfTI volume or a DICOM series folder"


def read_scans(path, mask_path=None, masks=False):
    """Reads any supported input (see the module docstring).

    Args:
        path: the input.
        mask_path: the label volume of a NIfTI image or DICOM series, when not found by name.
        masks: also read the label maps that belong to the images (training).

    Returns:
        A list of `Scan`: one per image file, or one volume. Non-finite voxels are read as their
        scan's lowest value, with one warning (`tf_resattn.io.non_finite`).

    Raises:
        DataError: missing, empty, unknown, corrupt or truncated input, 4-D NIfTI, a DICOM series
            of mixed slice sizes, a mask of another shape than its volume, a folder that mixes
            kinds of input, a slice with no finite value.
    """
    scans = [with_finite_values(scan) for scan in _read_as_stored(pathlib.Path(path), mask_path, masks)]
    warn_non_finite(scans)
    return scans


def read_path(path, mask_path=None):
    """Reads any supported input with its label maps and returns its slices as one `RawSlices`."""
    return flatten(read_scans(path, mask_path, masks=True), path)


def _read_as_stored(path, mask_path, masks):
    """`read_scans` before non-finite values are dealt with."""
    if not path.exists():
        raise DataError(f"{path} does not exist; pass {KINDS_ACCEPTED}")
    if path.is_file():
        if is_nifti(path):
            return [read_nifti(path, mask_path, masks)]
        if path.suffix.lower() == ".csv":
            return read_manifest(path, masks)
        if is_image_file(path):
            return image_scans([path], [None] if masks else None)
        raise DataError(f"{path}: unknown kind of file; pass {KINDS_ACCEPTED}")
    if not any(not p.name.startswith(".") for p in path.iterdir()):
        raise DataError(f"folder {path} is empty; put {KINDS_ACCEPTED} in it")
    if (path / MANIFEST_NAME).is_file():
        return read_manifest(path / MANIFEST_NAME, masks)
    if (path / "images").is_dir():
        return _read_image_folder(path / "images", path / "masks" if masks else None)
    kinds = folder_kinds(path)
    if len(kinds) > 1:
        counts = ", ".join(f"{len(files)} {kind} ({_first_names(files)})" for kind, files in kinds.items())
        raise DataError(f"folder {path} mixes {counts}; put each kind in a folder of its own and pass one at a time")
    if "DICOM files" in kinds:
        return [read_dicom_series(path, mask_path, masks)]
    if "image files" in kinds:
        return _read_image_folder(path, None)
    if "NIfTI volumes" in kinds:
        raise DataError(f"folder {path} holds NIfTI volumes; pass one volume (.nii or .nii.gz) at a time")
    raise DataError(
        f"{path}: no images/ folder, manifest.csv, DICOM or image files ({', '.join(IMAGE_EXTENSIONS)}) found; "
        f"pass {KINDS_ACCEPTED}"
    )


def folder_kinds(folder):
    """The inputs a folder holds, by kind (`"DICOM files"`, `"image files"`, `"NIfTI volumes"`), kinds with none left out.

    The label volume of a DICOM series (`mask.nii.gz`) is part of the series, not a NIfTI input.
    """
    dicom = dicom_files(folder)
    visible = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    kinds = {
        "DICOM files": dicom,
        "image files": [p for p in visible if is_image_file(p)],
        "NIfTI volumes": [p for p in visible if is_nifti(p) and not (dicom and p.name == SERIES_MASK_NAME)],
    }
    return {kind: files for kind, files in kinds.items() if files}


def _first_names(files, shown=3):
    """`a.png, b.png, ...`: the names of the first `shown` files."""
    return ", ".join(f.name for f in files[:shown]) + (", ..." if len(files) > shown else "")


def _read_image_folder(image_folder, mask_folder):
    """The image files of `image_folder` in name order; their masks from `mask_folder` (see `mask_candidates`)."""
    image_files = sorted(p for p in image_folder.iterdir() if is_image_file(p))
    if not image_files:
        raise DataError(f"folder {image_folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); put the slices there")
    mask_files = None
    if mask_folder is not None:
        mask_files = [next((m for m in mask_candidates(mask_folder, f) if m.is_file()), None) for f in image_files]
    return image_scans(image_files, mask_files)
