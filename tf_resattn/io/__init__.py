"""Medical image I/O: the one place that reads and writes scans, for training and prediction alike.

Reading (`read_scans`, `read_path`): PNG/JPEG/TIFF/BMP slices and folders of
them, `images/` with `masks/`, a manifest CSV, NIfTI volumes and DICOM series,
values as stored and geometry kept (NIfTI affine and header, DICOM files in
patient order, pixel spacing, slice distance). Writing (`write_labels`): label
maps as PNG at the image's size, NIfTI with the source's affine and header, and
a DICOM Segmentation object referencing a DICOM series. Every problem raises
`DataError` with a one-line message naming the file and the fix.
"""

from tf_resattn.io.errors import DataError
from tf_resattn.io.image_files import IMAGE_EXTENSIONS
from tf_resattn.io.label_maps import check_writable, write_labels
from tf_resattn.io.reading import read_path, read_scans
from tf_resattn.io.scan import RawSlices, Scan

__all__ = [
    "DataError",
    "IMAGE_EXTENSIONS",
    "RawSlices",
    "Scan",
    "check_writable",
    "read_path",
    "read_scans",
    "write_labels",
]
