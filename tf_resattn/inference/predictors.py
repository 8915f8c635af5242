"""One interface over the three model formats, chosen by path (`load_predictor`).

A predictor maps raw slices float32 `[N, H, W]` (HU or 8-bit grey, as its
`preprocessing.input_kind` says), and optionally their `SliceRegion`s, to
probabilities float32 `[N, H, W, C]` at the input's own size, or to label maps. `.keras` and `.tflite` run the
framing of `tf_resattn.data.framing` in NumPy (lung crop, scaling, resizing; back: paste or resize, lung
constraint); a SavedModel scales and resizes inside with TensorFlow ops, and the lung crop and
constraint, which its metadata records, are done around it here in NumPy.
"""

import dataclasses

import numpy as np

from tf_resattn.data import Preprocessing
from tf_resattn.data.framing import SliceRegion, model_inputs, slice_regions, source_labels, source_probabilities
from tf_resattn.data.roi import crop
from tf_resattn.inference.ensemble import fold_models
from tf_resattn.inference.errors import ExportError, InferenceError
from tf_resattn.inference.model_files import load_averaged_model, model_kind, read_preprocessing


@dataclasses.dataclass
class PreparedBatch:
    """Raw slices made ready for a predictor's `run`.

    Attributes:
        regions: one `SliceRegion` per slice (`tf_resattn.data.framing.slice_regions`).
        inputs: what `run` takes: model inputs float32 `[N, h, w, 1]`, or for a SavedModel the raw slices `[N, H, W]`
            or, when it crops, a list of raw squares `[side_i, side_i]`.
    """

    regions: list
    inputs: object


class Predictor:
    """Raw slices -> probabilities or label maps in three steps, which a pipeline may run apart (`pipeline.py`):
    `prepare` (lung field, crop, scaling), `run` (the model), `probabilities` or `labels` (back at the source size)."""

    preprocessing: Preprocessing
    num_classes: int

    def prepare(self, raw_slices, regions=None):
        """`PreparedBatch` of raw slices `[N, H, W]`; `regions` as `slice_regions` gives them, or None to find them."""
        regions = slice_regions(raw_slices, self.preprocessing) if regions is None else regions
        return PreparedBatch(regions, model_inputs(raw_slices, self.preprocessing, regions))

    def run(self, inputs):
        """The model on `PreparedBatch.inputs`: probabilities `[N, h, w, C]` (or a list of `[h_i, w_i, C]`)."""
        raise NotImplementedError

    def probabilities(self, prepared, outputs):
        """Probabilities float32 `[N, H, W, C]` at the slices' own size from `run`'s outputs."""
        return source_probabilities(outputs, self.preprocessing, prepared.regions)

    def labels(self, prepared, outputs):
        """Label maps uint8 `[N, H, W]` at the slices' own size from `run`'s outputs: the argmax of `probabilities`."""
        return source_labels(outputs, self.preprocessing, prepared.regions)

    def __call__(self, raw_slices, regions=None):
        """Probabilities float32 `[N, H, W, C]` of raw slices `[N, H, W]`."""
        prepared = self.prepare(raw_slices, regions)
        return self.probabilities(prepared, self.run(prepared.inputs))


class KerasPredictor(Predictor):
    """A `.keras` model with the `preprocessing.json` of its training run, or a run's fold ensemble.

    `tta` averages over the 8 quarter turns and mirror images of each slice (`ensemble.py`).
    """

    def __init__(self, path, tta=False):
        self.model, self.preprocessing = load_averaged_model(path, tta=tta)
        self.num_classes = int(self.model.output_shape[-1])

    def run(self, inputs):
        return self.model.predict_on_batch(inputs)


class TFLitePredictor(Predictor):
    """A `.tflite` file from `export`, with the `preprocessing.json` written beside it; `num_threads` for the interpreter."""

    def __init__(self, path, num_threads=None):
        from tf_resattn.inference.tflite_runner import TFLiteRunner

        self.runner = TFLiteRunner(path, num_threads=num_threads)
        prep = read_preprocessing(path)
        if prep.image_size not in (None, self.runner.image_size):
            raise ExportError(
                f"{path} takes {self.runner.image_size[0]}x{self.runner.image_size[1]} inputs but the preprocessing.json "
                f"beside it resizes to {prep.image_size[0]}x{prep.image_size[1]}; keep the files of one export together"
            )
        self.preprocessing = prep.resized(self.runner.image_size)
        self.num_classes = self.runner.num_classes

    def run(self, inputs):
        return self.runner(inputs)


class SavedModelPredictor(Predictor):
    """A SavedModel from `export`: its `metadata` signature says the preprocessing, `serving_default` does it.

    Where the model crops to the lung field, each slice's square is cut here and served on its own; the
    probabilities come back at the square's size and are pasted (and constrained) as for the other formats.
    """

    def __init__(self, path):
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:  # TensorFlow raises many types for corrupt SavedModels
            raise ExportError(f"cannot load SavedModel {path} ({type(e).__name__}); re-export it") from e
        if "serving_default" not in loaded.signatures or "metadata" not in loaded.signatures:
            raise ExportError(
                f"SavedModel {path} lacks the serving_default/metadata signatures of tf_resattn's export; re-export it"
            )
        self._loaded = loaded
        self._serve = loaded.signatures["serving_default"]
        info = {key: value.numpy() for key, value in loaded.signatures["metadata"]().items()}
        size = tuple(int(v) for v in info["image_size"])
        source_window = tuple(info["source_window"].tolist()) if "source_window" in info else ()
        lung = {
            key: float(info[key]) if float(info.get(key, -1.0)) >= 0 else None
            for key in ("lung_crop", "lung_constraint")
        }
        self.preprocessing = Preprocessing(
            info["input_kind"].decode(),
            tuple(info["hu_window"].tolist()),
            size if min(size) > 0 else None,
            source_window or None,
            **lung,
        )
        self.num_classes = int(info["num_classes"])

    def prepare(self, raw_slices, regions=None):
        raw_slices = np.asarray(raw_slices, dtype=np.float32)
        if self.preprocessing.lung_crop is None and self.preprocessing.lung_constraint is None:
            return PreparedBatch([SliceRegion(raw.shape) for raw in raw_slices], raw_slices)
        regions = slice_regions(raw_slices, self.preprocessing) if regions is None else regions
        if self.preprocessing.lung_crop is None:
            return PreparedBatch(regions, raw_slices)
        return PreparedBatch(regions, [crop(raw, r.box, float(raw.min())) for raw, r in zip(raw_slices, regions)])

    def run(self, inputs):
        if isinstance(inputs, np.ndarray):
            return self._serve_raw(inputs)
        return [self._serve_raw(square[None])[0] for square in inputs]

    def _serve_raw(self, raw_slices):
        """The `serving_default` signature on raw slices `[N, H, W]`: probabilities `[N, H, W, C]`."""
        import tensorflow as tf

        return self._serve(images=tf.constant(raw_slices[..., None]))["probabilities"].numpy()


PREDICTORS = {"keras": KerasPredictor, "saved_model": SavedModelPredictor, "tflite": TFLitePredictor}


def model_format(path):
    """The predictor kind of a model path: `"keras"` (a `.keras` file or a run's fold models), `"saved_model"` or `"tflite"`."""
    return "keras" if fold_models(path) else model_kind(path)


def trust_notice(path, safe_only=False):
    """The notice owed for the model at `path`, or None: a SavedModel runs its own graph, which is code.

    `.keras` files are loaded in Keras's safe mode and `.tflite` files run built-in operations
    only; a SavedModel's graph can read and write files as TensorFlow allows.

    Raises:
        InferenceError: a SavedModel and `safe_only`.
    """
    if model_format(path) != "saved_model":
        return None
    if safe_only:
        raise InferenceError(
            f"--safe-only refuses SavedModel {path}, whose graph runs as code; pass the .keras or .tflite model instead"
        )
    return (
        f"SavedModel {path} runs its own TensorFlow graph, which can read and write files like any program; "
        "use SavedModels only from a source you trust (--safe-only refuses them)"
    )


def load_predictor(path, num_classes=None, tta=False):
    """Loads the model at `path` (`.keras`, SavedModel folder, `.tflite`, or a run's fold models) as a predictor.

    Args:
        path: the model; a cross-validation run folder (or one variant's folder in it) gives the
            ensemble of its `fold_<k>/best.keras` models.
        num_classes: the class count the caller expects, or None for any.
        tta: average over the 8 quarter turns and mirror images of each slice (Keras models; an
            export has it baked in by `export.py --tta`).

    Raises:
        ExportError: unknown or unreadable model.
        InferenceError: a model whose class count differs from `num_classes`, or `tta` for an export.
    """
    kind = model_format(path)
    if kind == "keras":
        predictor = KerasPredictor(path, tta=tta)
    elif tta:
        raise InferenceError(
            f"{path} is an export: test-time augmentation is baked in when exporting (`export.py --tta`), not added here"
        )
    else:
        predictor = PREDICTORS[kind](path)
    if num_classes is not None and predictor.num_classes != num_classes:
        raise InferenceError(
            f"model {path} predicts {predictor.num_classes} classes but {num_classes} are expected; "
            f"pass --num-classes {predictor.num_classes} or use a {num_classes}-class model"
        )
    return predictor
