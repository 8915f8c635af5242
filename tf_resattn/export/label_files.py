"""Writing label maps in the input's own format and geometry, and colour overlays with a legend.

- image input: `labels/<name>.png`, uint8 label values at the image's size;
- NIfTI input: `labels/<name>_labels.nii.gz`, uint8, the input's affine and header
  (its data type set to uint8, scaling removed), same shape;
- DICOM input: `labels/<name>/<file>`, one DICOM file per input file holding the
  labels as 16-bit pixels (new series and instance UIDs, rescale 1/0,
  derived image type), every other attribute kept;
- every input: `overlays/<name>[_<slice>].png`, the slice (in the model's window)
  with the label colours of `tf_resattn.classes.CLASS_COLORS` and a legend.
"""

import pathlib

import cv2
import numpy as np

from tf_resattn.classes import CLASS_COLORS, class_names

OVERLAY_OPACITY = 0.45
SERIES_DESCRIPTION = "tf_resattn labels (values: see report.json)"


def write_labels(scan, labels, out_dir):
    """Writes the label maps `[N, H, W]` of `scan` under `out_dir/labels`; returns the paths relative to `out_dir`."""
    folder = pathlib.Path(out_dir) / "labels"
    folder.mkdir(exist_ok=True)
    labels = np.asarray(labels, dtype=np.uint8)
    if scan.kind == "image":
        path = folder / f"{scan.name}.png"
        cv2.imwrite(str(path), labels[0])
        return [str(path.relative_to(out_dir))]
    if scan.kind == "nifti":
        return [str(_write_nifti_labels(scan, labels, folder / f"{scan.name}_labels.nii.gz").relative_to(out_dir))]
    return [str(p.relative_to(out_dir)) for p in _write_dicom_labels(scan, labels, folder / scan.name)]


def _write_nifti_labels(scan, labels, path):
    import nibabel

    header = scan.nifti.header.copy()
    header.set_data_dtype(np.uint8)
    volume = labels.transpose(2, 1, 0).reshape(scan.nifti.shape)
    image = nibabel.Nifti1Image(volume, scan.nifti.affine, header)
    image.header.set_slope_inter(1.0, 0.0)
    nibabel.save(image, str(path))
    return path


def _write_dicom_labels(scan, labels, folder):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    series_uid = generate_uid()
    paths = []
    for source, label_slice in zip(scan.dicom_files, labels):
        ds = pydicom.dcmread(source)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = SERIES_DESCRIPTION
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = label_slice.astype(np.uint16).tobytes()
        path = folder / source.name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def overlay(grey, labels, num_classes):
    """RGB uint8 `[H, W, 3]`: grey `[H, W]` in [0, 1] with the infection labels blended in and a legend."""
    rgb = np.repeat(np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    colours = np.array([CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(num_classes)], dtype=np.float32)
    infected = labels > 0
    rgb[infected] = np.round((1 - OVERLAY_OPACITY) * rgb[infected] + OVERLAY_OPACITY * colours[labels[infected]]).astype(np.uint8)
    return draw_legend(rgb, num_classes)


def draw_legend(rgb, num_classes):
    """Draws a box with each infection class's colour and name in the top-left corner of `rgb` (in place)."""
    scale = max(0.3, rgb.shape[1] / 1400)
    line = int(round(28 * scale / 0.5))
    names = class_names(num_classes)[1:]
    width = int(max(cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for n in names) + 2.2 * line)
    cv2.rectangle(rgb, (0, 0), (min(width, rgb.shape[1] - 1), min(line * len(names) + line // 3, rgb.shape[0] - 1)), (0, 0, 0), -1)
    for row, name in enumerate(names, start=0):
        top = row * line + line // 4
        cv2.rectangle(rgb, (line // 4, top), (line // 4 + line // 2, top + line // 2), CLASS_COLORS[(row + 1) % len(CLASS_COLORS)], -1)
        cv2.putText(rgb, name, (line, top + line // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return rgb


def write_overlays(scan, labels, preprocessing, num_classes, out_dir):
    """Writes one overlay PNG per slice under `out_dir/overlays`; returns the paths relative to `out_dir`."""
    folder = pathlib.Path(out_dir) / "overlays"
    folder.mkdir(exist_ok=True)
    paths = []
    for k, (raw, label_slice) in enumerate(zip(scan.slices, labels)):
        suffix = "" if len(scan.slices) == 1 else f"_{k:03d}"
        path = folder / f"{scan.name}{suffix}.png"
        rgb = overlay(preprocessing.scale(raw), np.asarray(label_slice), num_classes)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(str(path.relative_to(out_dir)))
    return paths
