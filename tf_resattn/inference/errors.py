"""The errors of prediction and export, each with a one-line message naming the problem and the fix.

- `ExportError`: a model (file, folder, released name, its `preprocessing.json`) or an output
  folder that export or prediction cannot use. Both load models and write output folders the
  same way (`model_files.py`, `output_folder.py`), so both raise it.
- `InferenceError`, a kind of `ExportError`: an input or option that prediction alone rejects,
  such as a batch size below 1, an array of the wrong shape, a spacing, an HU window for 8-bit
  input or a class count the model does not predict.

Every command line of prediction and export catches `ExportError` (and
`tf_resattn.io.DataError` for data problems) and prints its message as it is,
with exit status 2.
"""


class ExportError(ValueError):
    """A model, model path or output folder that export or prediction cannot use."""


class InferenceError(ExportError):
    """An input or option that prediction cannot use (batch size, array shape, spacing, window, class count, ...)."""
