"""`Scan`: one input as stored (a 2-D image or a volume) with its geometry; `RawSlices`: scans as a flat list of slices."""

import dataclasses

import numpy as np

from tf_resattn.io.names import check_unique


@dataclasses.dataclass
class Scan:
    """One input read from disk: a 2-D image (one slice) or a volume, values as stored.

    Attributes:
        name: output name stem (`img_0001` for `img_0001.png`, `tr_im` for `tr_im.nii.gz`,
            the folder name of a DICOM series).
        kind: `"image"`, `"nifti"` or `"dicom"`.
        slices: `[N, H, W]` raw values: the file's dtype for images (8- or 16-bit grey),
            float32 Hounsfield units for volumes.
        slice_names: N names (`0001` for `img_0001.png` or the manifest's id, `tr_im:007`,
            the DICOM file name).
        image_files: N descriptions of where each slice came from, for messages.
        masks: N label maps `[h, w]` as stored, or None when not asked for or not found.
        mask_files: N descriptions of where each mask came from (None where there is none).
        group: the group id (patient) of a manifest row, or None.
        spacing_mm: (row, col) pixel size in mm, or None when unknown.
        thickness_mm: distance between slices in mm (volumes), or None.
        source: the path read.
        nifti: the nibabel image (affine and header) of a NIfTI input.
        dicom_files: the DICOM files in slice order.
        non_finite: bool `[N, H, W]`, True where the stored value was NaN or infinite (and `slices`
            holds the scan's lowest value instead; `tf_resattn.io.non_finite`), or None when there was none.
    """

    name: str
    kind: str
    slices: np.ndarray
    slice_names: list
    image_files: list
    masks: list | None = None
    mask_files: list | None = None
    group: str | None = None
    spacing_mm: tuple | None = None
    thickness_mm: float | None = None
    source: str = ""
    nifti: object = None
    dicom_files: list | None = None
    non_finite: np.ndarray | None = None


@dataclasses.dataclass
class RawSlices:
    """The slices of one or more scans, one entry per slice.

    Attributes:
        images: list of 2-D arrays (stored dtype and values: 8/16-bit grey or HU).
        masks: list of 2-D label arrays, None where a slice has no mask.
        names: slice names.
        image_files, mask_files: where each image / mask came from, for messages.
        groups: group ids (patients) or None.
        spacing_mm: list of (row, col) pixel sizes in mm, or None.
        from_volume: True for NIfTI/DICOM (values expected in HU), False for 2-D image files.
        source: the path that was read.
    """

    images: list
    masks: list
    names: list
    image_files: list
    mask_files: list
    groups: list | None = None
    spacing_mm: list | None = None
    from_volume: bool = False
    source: str = ""


def flatten(scans, source):
    """The slices of `scans` (all read from `source`) as one `RawSlices`; two slices of one name are refused."""
    per_slice = [(scan, k) for scan in scans for k in range(len(scan.slices))]
    check_unique(
        [scan.slice_names[k] for scan, k in per_slice],
        [scan.image_files[k] for scan, k in per_slice],
        "{first} and {second} are both slice {name!r}; rename or remove one of them (each slice needs its own name)",
    )
    return RawSlices(
        images=[scan.slices[k] for scan, k in per_slice],
        masks=[None if scan.masks is None else scan.masks[k] for scan, k in per_slice],
        names=[scan.slice_names[k] for scan, k in per_slice],
        image_files=[scan.image_files[k] for scan, k in per_slice],
        mask_files=[None if scan.mask_files is None else scan.mask_files[k] for scan, k in per_slice],
        groups=None if any(scan.group is None for scan in scans) else [scan.group for scan, _ in per_slice],
        spacing_mm=None
        if any(scan.spacing_mm is None for scan in scans)
        else [scan.spacing_mm for scan, _ in per_slice],
        from_volume=any(scan.kind != "image" for scan in scans),
        source=str(source),
    )
