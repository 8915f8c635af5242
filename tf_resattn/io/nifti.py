"""NIfTI volumes: a CT in Hounsfield units and its label volume, sliced along the last axis.

NIfTI stores `data[x, y, z]`; slice `k` is `data[:, :, k].T`, so that rows run
along y and columns along x, which is how the MedSeg PNG slices were written
from `tr_im.nii.gz` (equivalently `np.fliplr(np.rot90(data[:, :, k], 3))`).
Trailing axes of length 1 (a 4-D volume of one time point) are dropped; a 2-D
image is one slice; anything else with more than 3 axes is refused.
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.io.errors import DataError, one_line
from tf_resattn.io.scan import Scan

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NIFTI_MASK_NAMES = (("_im", "_mask"), ("_ct", "_seg"), ("image", "mask"), ("image", "label"))
"""(image token, mask token): the mask of `tr_im.nii.gz` is `tr_mask.nii.gz`, of `x_ct.nii.gz` is `x_seg.nii.gz`."""


def is_nifti(path):
    """True for a `.nii` or `.nii.gz` name."""
    return pathlib.Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def read_nifti(image_path, mask_path=None, masks=False):
    """A NIfTI CT volume (HU) as a scan; with `masks`, its label volume too.

    The mask is `mask_path` or, by default, the file beside the image named by `NIFTI_MASK_NAMES`
    (`tr_im.nii.gz` -> `tr_mask.nii.gz`). Spacing (row, col) comes from the header's zooms (y, x),
    the slice distance from z.
    """
    image_path = pathlib.Path(image_path)
    volume, image = load_nifti(image_path)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    zooms += (1.0,) * (3 - len(zooms))
    labels = None
    if masks:
        mask_path = pathlib.Path(mask_path) if mask_path is not None else _default_mask(image_path)
        if mask_path is not None and not mask_path.is_file():
            raise DataError(
                f"mask file {mask_path} does not exist; pass the label volume of {image_path.name} as mask_path"
            )
        labels = None if mask_path is None else load_nifti(mask_path)[0]
        if labels is not None and labels.shape != volume.shape:
            raise DataError(
                f"{image_path.name} has shape {volume.shape} but its mask {mask_path.name} has {labels.shape}; "
                "give the label volume that belongs to this image"
            )
    stem = nifti_stem(image_path)
    n = volume.shape[-1]
    return Scan(
        name=stem,
        kind="nifti",
        slices=np.ascontiguousarray(volume.transpose(2, 1, 0)),
        slice_names=[f"{stem}:{k:03d}" for k in range(n)],
        image_files=[f"{image_path} slice {k}" for k in range(n)],
        masks=None if labels is None else list(labels.transpose(2, 1, 0)),
        mask_files=None if labels is None else [f"{mask_path} slice {k}" for k in range(n)],
        spacing_mm=(zooms[1], zooms[0]),
        thickness_mm=zooms[2],
        source=str(image_path),
        nifti=image,
    )


def load_nifti(path):
    """Returns (float32 volume `[x, y, z]`, the nibabel image); see the module docstring for the axes."""
    nibabel = optional.require("nibabel", "io")

    try:
        image = nibabel.load(str(path))
        volume = image.get_fdata(dtype=np.float32, caching="unchanged")  # the image is kept: no second copy
    except Exception as e:  # nibabel/gzip raise many types for corrupt or truncated files
        raise DataError(
            f"cannot read NIfTI file {path} ({one_line(e)}); the file is corrupt or truncated, replace it"
        ) from e
    if 0 in image.shape:
        raise DataError(f"{path} holds no voxels (shape {image.shape}); give a volume with at least one slice")
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim == 2:
        volume = volume[..., None]
    if volume.ndim != 3:
        raise DataError(
            f"{path} is a {volume.ndim}D NIfTI (shape {volume.shape}); give a 3D volume with slices along the last axis "
            "(for a time series, save one time point)"
        )
    return volume, image


def nifti_stem(path):
    """`tr_im.nii.gz` -> `tr_im`."""
    name = pathlib.Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return pathlib.Path(path).stem


def _default_mask(image_path):
    stem = nifti_stem(image_path)
    suffix = image_path.name[len(stem) :]
    for image_token, mask_token in NIFTI_MASK_NAMES:
        if image_token in stem:
            head, _, tail = stem.rpartition(image_token)
            candidate = image_path.with_name(f"{head}{mask_token}{tail}{suffix}")
            if candidate.is_file():
                return candidate
    return None
