"""Writing label maps in the input's own format and geometry.

- image input: `labels/<name>.png`, uint8 label values at the image's size;
- NIfTI input: `labels/<name>_labels.nii.gz`, uint8, the input's affine and header
  (its data type set to uint8, scaling removed), same shape;
- DICOM input: `labels/<name>_seg.dcm`, a DICOM Segmentation object
  (`tf_resattn.io.dicom_seg`) referencing the input series.
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.io.dicom_seg import source_headers, write_dicom_seg
from tf_resattn.io.names import check_unique

cv2 = optional.module("cv2", "io")
nibabel = optional.module("nibabel", "io")


def check_writable(scans):
    """Refuses, before any slice is segmented, label maps that could not be written.

    Two scans of one output name (`a.png` and `a.jpg` both give `labels/a.png`) and a DICOM
    series that lacks what a DICOM SEG needs (`tf_resattn.io.dicom_seg.source_headers`) raise `DataError`.
    """
    check_unique(
        [label_file(scan) for scan in scans],
        [scan.source for scan in scans],
        "{first} and {second} would both be written as {name}; rename one of them or predict them into separate folders",
    )
    for scan in scans:
        if scan.kind == "dicom":
            source_headers(scan)


def label_file(scan):
    """Where the label maps of `scan` go, relative to the output folder: `labels/<name>.png`, `_labels.nii.gz` or `_seg.dcm`."""
    suffix = {"image": ".png", "nifti": "_labels.nii.gz", "dicom": "_seg.dcm"}[scan.kind]
    return f"labels/{scan.name}{suffix}"


def write_labels(scan, labels, out_dir, num_classes=None):
    """Writes the label maps uint8 `[N, H, W]` of `scan` under `out_dir/labels`; returns the paths relative to `out_dir`.

    `num_classes` names the segments of a DICOM SEG (see `write_dicom_seg`).
    """
    out_dir = pathlib.Path(out_dir)
    path = out_dir / label_file(scan)
    path.parent.mkdir(exist_ok=True)
    labels = np.asarray(labels, dtype=np.uint8)
    if scan.kind == "image":
        cv2.imwrite(str(path), labels[0])
    elif scan.kind == "nifti":
        _write_nifti_labels(scan, labels, path)
    else:
        write_dicom_seg(scan, labels, path, num_classes)
    return [str(path.relative_to(out_dir))]


def _write_nifti_labels(scan, labels, path):
    header = scan.nifti.header.copy()
    header.set_data_dtype(np.uint8)
    volume = labels.transpose(2, 1, 0).reshape(scan.nifti.shape)
    image = nibabel.Nifti1Image(volume, scan.nifti.affine, header)
    image.header.set_slope_inter(1.0, 0.0)
    nibabel.save(image, str(path))
