"""Export: SavedModel for serving, TFLite for devices, and their parity with the Keras model.

`export_model(model.keras, out_dir)` (also `tf_resattn.export_model`) writes
`saved_model/` (preprocessing baked in, any input size),
`model_{fp32,fp16,int8}.tflite` (training size, builtin ops only) and
`parity.json` (agreement with the Keras model), and returns them as an
`ExportedFiles`. The exported files are run by `tf_resattn.inference`.

TensorFlow-only. Errors about models, paths and options are
`tf_resattn.inference.ExportError`, with one-line messages.
"""

from tf_resattn.export.exporter import ExportedFiles, export_model

__all__ = ["ExportedFiles", "export_model"]
