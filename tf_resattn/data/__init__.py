"""Data for the COVID-19 CT segmentation: preprocessing, synthetic slices, augmentation, batches.

`load_slices(path)` turns a folder of PNG images and masks, a NIfTI pair, a DICOM series (read
by `tf_resattn.io`) or the word `"synthetic"` into a `SliceSet` (images float32 `[N, H, W, 1]` in [0, 1], masks uint8
`[N, H, W]`). `augment_offline` builds the paper's 6x training set. Every data problem raises
`DataError`, with a one-line message naming the file and the fix.

`tf_resattn.data.pipeline.make_dataset` (TensorFlow only, imported on demand) batches the arrays
as a `tf.data.Dataset`, with optional online augmentation.
`tf_resattn.data.batches.make_batches` picks it on TensorFlow and NumPy batches (a
`keras.utils.PyDataset`) on other backends, such as JAX without TensorFlow installed.
"""

from tf_resattn.data.augmentation import augment_offline, crop_or_pad, rotate90, scale_fixed_size
from tf_resattn.data.loading import check_labels, load_slices
from tf_resattn.data.preprocessing import LUNG_WINDOW, Preprocessing, detect_input_kind
from tf_resattn.data.slices import SliceSet
from tf_resattn.data.synthetic import synthetic_hu_slices, synthetic_slices
from tf_resattn.io import DataError

__all__ = [
    "DataError",
    "LUNG_WINDOW",
    "Preprocessing",
    "SliceSet",
    "augment_offline",
    "check_labels",
    "crop_or_pad",
    "detect_input_kind",
    "load_slices",
    "rotate90",
    "scale_fixed_size",
    "synthetic_hu_slices",
    "synthetic_slices",
]
