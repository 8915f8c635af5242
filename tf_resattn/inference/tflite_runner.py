"""Running a `.tflite` segmentation model (from `tf_resattn.export.tflite`) on `ai-edge-litert`.

Input float32 `[N, h, w, 1]` already preprocessed to [0, 1] at the model's
fixed training size; output float32 probabilities `[N, h, w, C]`. The batch
size is free: the input tensor is resized when it changes.

Files of `tf_resattn.export.tflite` hold a signature `slice`, the model on one
slice `[1, h, w, 1]` with every shape static; the runner calls it once per
slice. Files without it (earlier exports) run whole batches, the input tensor
resized. The interpreter runs on every core this process may use unless told
otherwise (`ai_edge_litert` itself takes one thread when given none), with
its default XNNPACK delegate.
"""

import os

import numpy as np

from tf_resattn import optional
from tf_resattn.inference.errors import ExportError, InferenceError

SLICE_SIGNATURE = "slice"
"""The signature of an exported file's one-slice subgraph: `image` `[1, h, w, 1]` -> `probabilities`."""


def default_threads():
    """The cores this process may run on (its CPU affinity where the system tells it, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


class TFLiteRunner:
    """Runs a `.tflite` segmentation model with `ai_edge_litert`.

    Args:
        model: path of a `.tflite` file, or its bytes.
        num_threads: interpreter threads (None: every core this process may use, `default_threads()`).

    Example:
        runner = TFLiteRunner("export/model_fp32.tflite")
        runner.image_size, runner.num_classes  # ((128, 128), 4)
        probabilities = runner(images)  # [N, 128, 128, 1] in [0, 1] -> [N, 128, 128, 4]
    """

    def __init__(self, model, num_threads=None):
        Interpreter = optional.require("ai_edge_litert.interpreter", "export").Interpreter

        self.num_threads = default_threads() if num_threads is None else num_threads
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        try:
            self.interpreter = Interpreter(num_threads=self.num_threads, **source)
        except (ValueError, RuntimeError) as e:
            raise ExportError(
                f"cannot load TFLite model {source.get('model_path', '<bytes>')} ({' '.join(str(e).split())}); re-export it"
            ) from e
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None
        shape = self._input["shape"]
        if len(shape) != 4 or shape[-1] != 1:
            raise ExportError(f"TFLite model input has shape {list(shape)}; expected [N, h, w, 1] (one grey channel)")
        self.image_size = (int(shape[1]), int(shape[2]))
        self.num_classes = int(self._output["shape"][-1])
        signatures = self.interpreter.get_signature_list()
        self._slice = None
        if SLICE_SIGNATURE in signatures:
            self._slice = self.interpreter.get_signature_runner(SLICE_SIGNATURE)
            self._slice_names = signatures[SLICE_SIGNATURE]["inputs"][0], signatures[SLICE_SIGNATURE]["outputs"][0]

    def __call__(self, images):
        """Probabilities float32 `[N, h, w, C]` for preprocessed images float32 `[N, h, w, 1]`."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.shape[1:] != (*self.image_size, 1):
            raise InferenceError(
                f"TFLite model takes [N, {self.image_size[0]}, {self.image_size[1]}, 1] images, got {list(images.shape)}"
            )
        if not len(images):
            return np.zeros((0, *self.image_size, self.num_classes), np.float32)
        if self._slice is not None:
            name_in, name_out = self._slice_names
            probabilities = np.empty((len(images), *self.image_size, self.num_classes), np.float32)
            for index in range(len(images)):
                probabilities[index] = self._slice(**{name_in: images[index : index + 1]})[name_out][0]
            return probabilities
        if self._batch != len(images):
            self.interpreter.resize_tensor_input(self._input["index"], list(images.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input["index"], images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()
