"""DICOM Segmentation objects (SEG) of label maps predicted on a DICOM series, written with `highdicom`.

One binary SEG instance per series: each infection class is a segment
(segment number = label value, named by `tf_resattn.classes.class_names`);
background (label 0) is not a segment, as the standard has a pixel outside
every segment for it. The SEG references the source series, shares its study,
patient and frame of reference, and takes the geometry (pixel spacing,
orientation, position of each frame) from the source slices, so PACS viewers,
3D Slicer and OHIF draw it over the scan. Every segment has one frame per source
slice, empty or not.

Anonymised series are taken as they come: the patient and study attributes that
anonymisers blank or drop (type 2) are written empty; a type-1 attribute the SEG
cannot do without (`REQUIRED_TYPE_1`) is refused with one line naming it, before
any slice is segmented (`source_headers`).
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.classes import class_names
from tf_resattn.io.errors import DataError
from tf_resattn.version import __version__

MANUFACTURER = "tf_resattn"
SERIES_DESCRIPTION = "tf_resattn infection segmentation"
SEGMENT_TYPES = {
    "ground_glass": ("DCM", "112120", "Ground glass opacity"),
    "consolidation": ("SCT", "95436008", "Lung consolidation"),
    "pleural_effusion": ("SCT", "60046008", "Pleural effusion"),
}
"""Coded segmented property type of each MedSeg class; other classes are an abnormal opacity."""
OTHER_SEGMENT_TYPE = ("DCM", "112033", "Abnormal opacity")
SEGMENT_CATEGORY = ("SCT", "49755003", "Morphologically Abnormal Structure")
ALGORITHM_FAMILY = ("DCM", "123109", "Artificial Intelligence")

PATIENT_AND_STUDY_TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
"""Type-2 attributes the SEG copies from its source; anonymisers drop them, the SEG then has them empty."""
REQUIRED_TYPE_1 = (
    ("StudyInstanceUID", "the study it belongs to"),
    ("SeriesInstanceUID", "the series it references"),
    ("SOPInstanceUID", "the slice each frame comes from"),
    ("FrameOfReferenceUID", "the patient coordinates it is drawn in"),
    ("ImagePositionPatient", "where each frame lies"),
    ("ImageOrientationPatient", "the orientation of its frames"),
    ("PixelSpacing", "its pixel size"),
)
"""Type-1 attributes of the source that a SEG cannot do without, and what the SEG takes from each."""


def write_dicom_seg(scan, labels, path, num_classes=None):
    """Writes label maps as a DICOM SEG over the source series; returns `path`.

    Args:
        scan: the DICOM series' `Scan` (its files in the order of `labels`; its slice distance
            stands for a missing SliceThickness).
        labels: uint8 `[N, H, W]`, one label map per source file.
        path: the `.dcm` file to write.
        num_classes: classes of the model (segments 1 .. num_classes - 1); default: up to the highest label,
            at least the four MedSeg classes.
    """
    highdicom = optional.require("highdicom", "io")

    labels = np.asarray(labels, dtype=np.uint8)
    num_classes = num_classes or max(4, int(labels.max()) + 1)
    sources = source_headers(scan)
    algorithm = highdicom.AlgorithmIdentificationSequence(
        name=MANUFACTURER,
        family=_code(ALGORITHM_FAMILY),
        version=__version__,
    )
    segments = [
        highdicom.seg.SegmentDescription(
            segment_number=label,
            segment_label=name,
            segmented_property_category=_code(SEGMENT_CATEGORY),
            segmented_property_type=_code(SEGMENT_TYPES.get(name, OTHER_SEGMENT_TYPE)),
            algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for label, name in enumerate(class_names(num_classes))
        if label > 0
    ]
    seg = highdicom.seg.Segmentation(
        source_images=sources,
        pixel_array=labels,
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=highdicom.UID(),
        series_number=int(getattr(sources[0], "SeriesNumber", None) or 0) + 1000,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=__version__,
        device_serial_number="0",
        series_description=SERIES_DESCRIPTION,
        omit_empty_frames=False,
    )
    path = pathlib.Path(path)
    seg.save_as(path)
    return path


def source_headers(scan):
    """The headers of the scan's DICOM files as the SEG takes them (in memory only; the files are not touched).

    A missing type-2 attribute of `PATIENT_AND_STUDY_TYPE_2` is set empty, a missing or empty
    SliceThickness to the scan's slice distance.

    Raises:
        DataError: a file lacks an attribute of `REQUIRED_TYPE_1`, or the slice thickness is
            unknown (a one-slice series without SliceThickness).
    """
    pydicom = optional.require("pydicom", "io")

    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in scan.dicom_files]
    for path, ds in zip(scan.dicom_files, sources):
        for keyword, use in REQUIRED_TYPE_1:
            if ds.get(keyword) in (None, ""):
                raise DataError(
                    f"DICOM file {path} lacks {keyword}, which a DICOM SEG needs for {use}; restore it from the original "
                    "series (anonymise keeping it) to get the labels as a DICOM SEG"
                )
        for keyword in PATIENT_AND_STUDY_TYPE_2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        if ds.get("SliceThickness") in (None, ""):
            if scan.thickness_mm is None:
                raise DataError(
                    f"DICOM file {path} lacks SliceThickness and the series has a single slice, so no slice distance stands in for it; "
                    "restore SliceThickness from the original series to get the labels as a DICOM SEG"
                )
            ds.SliceThickness = scan.thickness_mm
    return sources


def _code(coded):
    """(scheme, value, meaning) -> `pydicom.sr.coding.Code`."""
    scheme, value, meaning = coded
    return optional.require("pydicom.sr.coding", "io").Code(value, scheme, meaning)
