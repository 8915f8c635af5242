"""Writing label maps in the input's own format and geometry.

- image input: `labels/<name>.png`, uint8 label values at the image's size;
- NIfTI input: `labels/<name>_labels.nii.gz`, uint8, the input's affine and header
  (its data type set to uint8, scaling removed), same shape;
- DICOM input: `labels/<name>_seg.dcm`, a DICOM Segmentation object
  (`tf_resattn.io.dicom_seg`) referencing the input series.
"""

import pathlib

import cv2
import numpy as np

from tf_resattn.io.dicom_seg import write_dicom_seg


def write_labels(scan, labels, out_dir, num_classes=None):
    """Writes the label maps uint8 `[N, H, W]` of `scan` under `out_dir/labels`; returns the paths relative to `out_dir`.

    `num_classes` names the segments of a DICOM SEG (see `write_dicom_seg`).
    """
    out_dir = pathlib.Path(out_dir)
    folder = out_dir / "labels"
    folder.mkdir(exist_ok=True)
    labels = np.asarray(labels, dtype=np.uint8)
    if scan.kind == "image":
        path = folder / f"{scan.name}.png"
        cv2.imwrite(str(path), labels[0])
    elif scan.kind == "nifti":
        path = _write_nifti_labels(scan, labels, folder / f"{scan.name}_labels.nii.gz")
    else:
        path = write_dicom_seg(scan, labels, folder / f"{scan.name}_seg.dcm", num_classes)
    return [str(path.relative_to(out_dir))]


def _write_nifti_labels(scan, labels, path):
    import nibabel

    header = scan.nifti.header.copy()
    header.set_data_dtype(np.uint8)
    volume = labels.transpose(2, 1, 0).reshape(scan.nifti.shape)
    image = nibabel.Nifti1Image(volume, scan.nifti.affine, header)
    image.header.set_slope_inter(1.0, 0.0)
    nibabel.save(image, str(path))
    return path
