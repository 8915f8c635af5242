"""`export_model`: a trained `.keras` model -> SavedModel, three TFLite files and a parity report.

Output folder (written under a temporary name and renamed when complete):

- `saved_model/`: for TensorFlow Serving (see `savedmodel.py`);
- `model_fp32.tflite`, `model_fp16.tflite`, `model_int8.tflite` (see `tflite.py`);
- `preprocessing.json`: what the TFLite files expect their input to have gone through;
- `metadata.json`: variant, classes, input kind and size, the source model;
- `parity.json`: agreement of each file with the Keras model (see `parity.py`).

`export_model` returns an `ExportedFiles`: where each file lies, and the parity report.
"""

import dataclasses
import os
import pathlib
from collections.abc import Callable

from tf_resattn.export import parity, savedmodel, tflite
from tf_resattn.inference.errors import ExportError
from tf_resattn.inference.model_files import PREPROCESSING_FILE, load_averaged_model
from tf_resattn.inference.output_folder import output_folder, write_json

SAVED_MODEL_FOLDER = "saved_model"


@dataclasses.dataclass(frozen=True)
class ExportedFiles:
    """What `export_model` wrote.

    Attributes:
        folder: the export folder; it also holds `preprocessing.json` and `metadata.json`.
        saved_model: `folder/saved_model`, for TensorFlow Serving.
        tflite: `{"fp32": path, "fp16": path, "int8": path}`, the TFLite files.
        parity: the parity report, also `folder/parity.json` (`parity.parity_report`).
    """

    folder: pathlib.Path
    saved_model: pathlib.Path
    tflite: dict
    parity: dict

    @property
    def missed_targets(self):
        """The quantizations whose TFLite file misses its parity target (`parity.TARGETS_PERCENT`), in that order."""
        return [
            quantization for quantization in parity.TARGETS_PERCENT if not self.parity[quantization]["meets_target"]
        ]


def tflite_path(folder, quantization):
    """`folder/model_<quantization>.tflite`, the TFLite file of one quantization."""
    return pathlib.Path(folder) / f"model_{quantization}.tflite"


def write_exports(model, preprocessing, folder, model_path, log=print):
    """Writes `saved_model/`, the three TFLite files, `preprocessing.json` and `metadata.json` into `folder`."""
    size = preprocessing.image_size
    log(f"SavedModel ({preprocessing.input_kind} input, resized to {size[0]}x{size[1]} inside) ...")
    savedmodel.export_saved_model(model, preprocessing, folder / SAVED_MODEL_FOLDER)
    frozen = tflite.frozen_inference_function(model, size)
    for quantization in tflite.QUANTIZATIONS:
        log(f"TFLite {quantization} ...")
        tflite_path(folder, quantization).write_bytes(tflite.convert(frozen, quantization))
    write_json(folder / PREPROCESSING_FILE, preprocessing.to_config())
    info = savedmodel.metadata(model, preprocessing) | {"source_model": str(pathlib.Path(model_path).resolve())}
    write_json(folder / "metadata.json", info)


def export_model(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    parity_count: int = 16,
    data_dir: str | os.PathLike = parity.MEDSEG100,
    overwrite: bool = False,
    log: Callable[[str], object] = print,
    tta: bool = False,
) -> ExportedFiles:
    """Exports a trained model and checks the exports against it.

    Args:
        model_path: a `.keras` file (its `preprocessing.json` beside it, as a training run writes),
            or a cross-validation run folder: its fold models' mean, exported as one model.
        out_dir: the folder to create.
        image_size: (h, w) for a model without a fixed input size and without a
            preprocessing size; otherwise None.
        parity_count: slices to compare on.
        data_dir: the MedSeg folder used for parity when the model takes 8-bit input.
        overwrite: replace an existing `out_dir`.
        log: where progress lines go.
        tta: bake in the mean over the 8 quarter turns and mirror images of each input.

    Returns:
        `ExportedFiles`: the paths written and the parity report (also `out_dir/parity.json`).

    Raises:
        ExportError: missing or unusable model, no known input size, existing output.
    """
    with output_folder(out_dir, overwrite, protected=(model_path,)) as partial:
        model, prep = load_averaged_model(model_path, tta=tta)
        if image_size is not None:
            prep = prep.resized(image_size)
        if prep.image_size is None:
            raise ExportError(
                f"{model_path} has no fixed input size and no preprocessing size; pass --image-size H W (its training size)"
            )
        write_exports(model, prep, partial, model_path, log)
        log("parity check ...")
        raw, description = parity.parity_slices(prep, parity_count, data_dir)
        report = parity.parity_report(model, prep, partial, raw, description)
        write_json(partial / "parity.json", report)
    folder = pathlib.Path(out_dir)
    tflite_files = {quantization: tflite_path(folder, quantization) for quantization in tflite.QUANTIZATIONS}
    return ExportedFiles(folder, folder / SAVED_MODEL_FOLDER, tflite_files, report)
