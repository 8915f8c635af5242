"""Inference: segment scans with a `.keras`, SavedModel or `.tflite` model, and quantify the infection.

- `load_predictor(path)`: a `.keras`, SavedModel or `.tflite` model (or a
  cross-validation run's fold ensemble) chosen by path, mapping raw slices to
  probabilities at their own size, optionally with test-time augmentation;
- `predict_path(model, input, out_dir)` (also `tf_resattn.predict`): label maps in the input's format
  (`tf_resattn.io.write_labels`), overlays, and `report.json` with per-class
  amounts and the infection burden as a share of the lung field;
- `robustness`: Dice under controlled acquisition shifts.

Errors about models and output folders are `ExportError`, shared with export;
inputs and options that prediction rejects are `InferenceError`, a kind of
`ExportError`; data problems are `tf_resattn.io.DataError`. All carry one-line
messages (`errors.py`).
"""

from tf_resattn.inference.errors import ExportError, InferenceError
from tf_resattn.inference.predict import predict_path
from tf_resattn.inference.predictors import load_predictor
from tf_resattn.inference.quantify import quantify

__all__ = ["ExportError", "InferenceError", "load_predictor", "predict_path", "quantify"]
