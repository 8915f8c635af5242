"""TFLite conversion (float32, float16, dynamic-range int8) and a runner on `ai-edge-litert`.

The TFLite model is the Keras model alone, at a fixed input size: input float32
`[N, h, w, 1]` already preprocessed to [0, 1] (`Preprocessing.apply`), `(h, w)`
being the training size; output float32 probabilities `[N, h, w, C]`. The batch
size is free (the runner resizes the input tensor). A fixed size keeps the LSH
attention layer's choice between full and LSH attention static and every op a
TFLite builtin; scaling, resizing and argmax are left to the caller (`predict`
does them in NumPy, exactly as for the Keras model).

Tracing uses the pure-TensorFlow sort/gather (`tf_resattn.ops.pure_path`) and
the variables are frozen into constants, so the files hold builtin ops only
(no Flex/SELECT_TF_OPS).
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tf_resattn.export.errors import ExportError
from tf_resattn.ops import pure_path

QUANTIZATIONS = ("fp32", "fp16", "int8")
"""File suffixes: float32, float16 weights, dynamic-range int8 weights."""


def frozen_inference_function(model, image_size):
    """The model as a concrete function of `[None, h, w, 1]` float32, variables frozen, builtin-lowerable ops only."""
    spec = tf.TensorSpec([None, image_size[0], image_size[1], 1], tf.float32, name="image")
    with pure_path():
        function = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(function)


def convert(frozen_function, quantization):
    """Converts a frozen concrete function to TFLite bytes.

    Args:
        frozen_function: from `frozen_inference_function`.
        quantization: `"fp32"` (none), `"fp16"` (float16 weights) or `"int8"`
            (dynamic-range: int8 weights, activations quantized on the fly).

    Returns:
        The `.tflite` flatbuffer as bytes.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


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
        from ai_edge_litert.interpreter import Interpreter

        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        try:
            self.interpreter = Interpreter(num_threads=num_threads, **source)
        except (ValueError, RuntimeError) as e:
            raise ExportError(f"cannot load TFLite model {source.get('model_path', '<bytes>')} ({' '.join(str(e).split())}); re-export it") from e
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
            raise ExportError(
                f"TFLite model takes [N, {self.image_size[0]}, {self.image_size[1]}, 1] images, got {list(images.shape)}"
            )
        if self._batch != len(images):
            self.interpreter.resize_tensor_input(self._input["index"], list(images.shape))
            self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input["index"], images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()
