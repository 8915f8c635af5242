"""Running a `.tflite` segmentation model (from `tf_resattn.export.tflite`) on `ai-edge-litert`.

Input float32 `[N, h, w, 1]` already preprocessed to [0, 1] at the model's
fixed training size; output float32 probabilities `[N, h, w, C]`. The batch
size is free: the input tensor is resized when it changes.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.inference.errors import ExportError, InferenceError


class TFLiteRunner:
    """Runs a `.tflite` segmentation model with `ai_edge_litert`.

    Args:
        model: path of a `.tflite` file, or its bytes.
        num_threads: interpreter threads (None: the runtime's default).

    Example:
        runner = TFLiteRunner("export/model_fp32.tflite")
        runner.image_size, runner.num_classes  # ((128, 128), 4)
        probabilities = runner(images)  # [N, 128, 128, 1] in [0, 1] -> [N, 128, 128, 4]
    """

    def __init__(self, model, num_threads=None):
        Interpreter = optional.require("ai_edge_litert.interpreter", "export").Interpreter

        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        try:
            self.interpreter = Interpreter(num_threads=num_threads, **source)
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

    def __call__(self, images):
        """Probabilities float32 `[N, h, w, C]` for preprocessed images float32 `[N, h, w, 1]`."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.shape[1:] != (*self.image_size, 1):
            raise InferenceError(
                f"TFLite model takes [N, {self.image_size[0]}, {self.image_size[1]}, 1] images, got {list(images.shape)}"
            )
        if self._batch != len(images):
            self.interpreter.resize_tensor_input(self._input["index"], list(images.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input["index"], images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()
