"""Export and inference: SavedModel for serving, TFLite for devices, and a predict command.

- `export_model(model.keras, out_dir)`: `saved_model/` (preprocessing baked in,
  any input size), `model_{fp32,fp16,int8}.tflite` (training size, builtin ops
  only) and `parity.json` (agreement with the Keras model);
- `load_predictor(path)`: a `.keras`, SavedModel or `.tflite` model chosen by
  path, mapping raw slices to probabilities at their own size;
- `predict_path(model, input, out_dir)`: label maps in the input's format,
  overlays, and `report.json` with per-class amounts and the infection burden
  as a share of the lung field.

TensorFlow-only. Errors about models, paths and options are `ExportError`;
data problems are `tf_resattn.data.DataError`; both carry one-line messages.
"""

from tf_resattn.export.errors import ExportError
from tf_resattn.export.exporter import export_model
from tf_resattn.export.predict import predict_path
from tf_resattn.export.predictors import load_predictor
from tf_resattn.export.quantify import quantify

__all__ = ["ExportError", "export_model", "load_predictor", "predict_path", "quantify"]
