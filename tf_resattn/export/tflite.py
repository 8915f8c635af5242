"""TFLite conversion: float32, float16 and dynamic-range int8 files (run by `tf_resattn.inference.tflite_runner`).

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

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

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
