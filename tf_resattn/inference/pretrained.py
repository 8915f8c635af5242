"""Released models that ship with the package, and segmenting a NumPy volume with one.

A release is a folder `saved_models/<name>/` of the source tree (installed as
`tf_resattn/saved_models/<name>/`): `model.keras`, `preprocessing.json` and `MODEL_CARD.md`.
Everything is read from disk: no network access.

    model = tf_resattn.from_pretrained("resattn_medseg100")
    result = tf_resattn.segment(hu_volume, spacing=(5.0, 0.7, 0.7))  # [N, H, W] HU, (slice, row, col) mm
    result.labels, result.quantification["infection_burden_percent"]
"""

import dataclasses

import numpy as np

from tf_resattn.inference import predict as prediction
from tf_resattn.inference.errors import InferenceError
from tf_resattn.inference.memory import auto_batch_size
from tf_resattn.inference.model_files import load_keras_model, pretrained_model_path, released_or_path
from tf_resattn.inference.predictors import KerasPredictor
from tf_resattn.io import Scan

DEFAULT_MODEL = "resattn_medseg100"


def from_pretrained(name=DEFAULT_MODEL):
    """The released Keras model `name`, its preprocessing attached as `model.preprocessing`.

    Args:
        name: a name from `pretrained_names()`.

    Returns:
        A `keras.Model` (`[N, h, w, 1]` in [0, 1] -> probabilities `[N, h, w, C]`) whose
        `preprocessing` (`tf_resattn.data.Preprocessing`) maps raw slices to its input.
    """
    model, preprocessing = load_keras_model(pretrained_model_path(name))
    model.preprocessing = preprocessing
    return model


@dataclasses.dataclass
class Segmentation:
    """What `segment` returns.

    Attributes:
        labels: uint8 `[N, H, W]` (0 background, 1 ground glass, 2 consolidation, 3 effusion).
        quantification: `tf_resattn.inference.quantify.quantify`'s dict (volumes in mL when
            `spacing` has three values).
        hu_window: the HU window that mapped the input to the model's grey levels, or None.
    """

    labels: np.ndarray
    quantification: dict
    hu_window: tuple | None


def segment(volume, spacing=None, model=DEFAULT_MODEL, window=None, batch_size=None, tta=False):
    """Label maps and the infection report of a CT volume or slice held in NumPy.

    Args:
        volume: `[N, H, W]` slices or one `[H, W]` slice: uint8 for 8-bit grey, any other dtype for
            Hounsfield units (checked as training checks it, `tf_resattn.data.detect_input_kind`).
        spacing: `(slice, row, col)` distances in mm (volumes in mL), `(row, col)` (areas in mm^2),
            or None (amounts in pixels).
        model: a released model's name, or a `.keras` file / run folder.
        window: (low, high) HU window for HU input to a model trained on 8-bit slices, instead of
            the one recorded with it.
        batch_size: slices per model call; None chooses it from the slice size and the free memory.
        tta: average over the 8 flips and quarter turns of each slice.

    Returns:
        A `Segmentation`.

    Raises:
        InferenceError: a volume that is not `[H, W]` or `[N, H, W]`, or a spacing of other than 2 or 3 values.
    """
    volume = np.asarray(volume)
    if volume.ndim not in (2, 3):
        raise InferenceError(f"segment takes one slice [H, W] or slices [N, H, W], got shape {list(volume.shape)}")
    slices = volume[None] if volume.ndim == 2 else volume
    spacing = None if spacing is None else tuple(float(s) for s in spacing)
    if spacing is not None and len(spacing) not in (2, 3):
        raise InferenceError(f"spacing is (slice, row, col) or (row, col) in mm, got {spacing}")
    path = released_or_path(model)
    predictor = KerasPredictor(path, tta=tta)
    # 8-bit arrays are grey slices; any other dtype is taken for a volume in HU, as a NIfTI file would be.
    scan = Scan(
        name="volume",
        kind="image" if slices.dtype == np.uint8 else "nifti",
        slices=slices,
        slice_names=[str(k) for k in range(len(slices))],
        image_files=["array"] * len(slices),
        source="the array",
        spacing_mm=None if spacing is None else spacing[-2:],
        thickness_mm=spacing[0] if spacing is not None and len(spacing) == 3 else None,
    )
    (scan,), (applied_window,) = prediction.match_input_kind([scan], predictor.preprocessing, path, window)
    batch_size = batch_size or auto_batch_size(
        predictor.preprocessing.image_size, slices.shape[1:], predictor.num_classes, tta
    )
    labels, report, _ = prediction.segment_scan(predictor, scan, batch_size)
    return Segmentation(labels, report, None if applied_window is None else tuple(applied_window))
