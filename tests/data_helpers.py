"""Writers of small test inputs (PNG folders, NIfTI volumes, DICOM series, split files) for the data tests."""

import json

import cv2
import nibabel
import numpy as np


def write_png_set(folder, images, masks, names=None):
    """Writes `images/img_<name>.png` and, where the mask is not None, `masks/mask_<name>.png`."""
    names = names or [f"{i:04d}" for i in range(len(images))]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for name, image, mask in zip(names, images, masks):
        cv2.imwrite(str(folder / "images" / f"img_{name}.png"), image)
        if mask is not None:
            cv2.imwrite(str(folder / "masks" / f"mask_{name}.png"), mask)
    return folder


def write_split(folder, **content):
    """Writes `content` (e.g. `train=[ids], test=[ids]`) as `folder/split.json`; returns its path."""
    path = folder / "split.json"
    path.write_text(json.dumps(content))
    return path


def write_nifti(path, slices, zooms=(0.7, 0.8, 5.0), dtype=np.int16):
    """Writes slices `[N, rows, cols]` as a NIfTI volume `data[x, y, z]` with `data[:, :, k] = slices[k].T`."""
    volume = np.ascontiguousarray(np.transpose(np.asarray(slices), (2, 1, 0))).astype(dtype)
    image = nibabel.Nifti1Image(volume, np.diag(list(zooms) + [1.0]))
    image.header.set_zooms(zooms[: volume.ndim])
    nibabel.save(image, str(path))
    return path


def write_dicom_series(folder, stored, positions, file_names, *, slope=1.0, intercept=0.0, spacing=(0.6, 0.9)):
    """Writes one CT DICOM file per slice of `stored` (uint16 `[N, rows, cols]`) at z = `positions[k]`."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    for k, (pixels, z, name) in enumerate(zip(stored, positions, file_names)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / name), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "CT", "TEST", "Test^Patient"
        ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "", "", "20200101", "120000"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName, ds.SeriesNumber = "1", "", "", 1
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.InstanceNumber = len(stored) - k
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
        ds.save_as(str(folder / name), enforce_file_format=True)
    return folder


def labelled_squares(n, size, rng, values=(0.25, 0.5, 0.75), square=6):
    """Images `[n, size, size, 1]` with squares of value `values[k-1]` exactly where the mask has label k."""
    images = np.zeros((n, size, size, 1), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for label, value in enumerate(values, start=1):
            r, c = rng.integers(0, size - square, size=2)
            images[i, r : r + square, c : c + square, 0] = value
            masks[i, r : r + square, c : c + square] = label
    return images, masks
