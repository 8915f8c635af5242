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

The model runs one slice at a time, at batch size 1, where the converter knows
every shape: it then folds the shape arithmetic that a free batch axis leaves
in the graph (`SHAPE`, `PACK`, `STRIDED_SLICE`, and the `BROADCAST_TO` copies of
`take_along_axis`, no-ops that took a third of the time at batch 8) and XNNPACK
takes every reshape. A file holds two signatures over the same weights:

- `serving_default`, the first subgraph, what a plain interpreter runs: any
  batch size, a `WHILE` loop over the slices (`slice_loop_function`);
- `slice` (`tflite_runner.SLICE_SIGNATURE`): the model on `[1, h, w, 1]` alone, which
  `TFLiteRunner` calls once per slice. It spares what the `WHILE` loop costs
  each call (about 25 ms on the `cpu` preset's model): TFLite frees the loop
  body's memory after each call and prepares it again on the next.
"""

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tf_resattn.inference.tflite_runner import SLICE_SIGNATURE
from tf_resattn.ops import pure_path

QUANTIZATIONS = ("fp32", "fp16", "int8")
"""File suffixes: float32, float16 weights, dynamic-range int8 weights."""

SERVING_SIGNATURE = "serving_default"
"""The signature of the first subgraph: `image` `[N, h, w, 1]` -> `probabilities` `[N, h, w, C]`."""


def frozen_inference_function(model, image_size):
    """The model as a concrete function of `[None, h, w, 1]` float32, variables frozen, builtin-lowerable ops only."""
    spec = tf.TensorSpec([None, image_size[0], image_size[1], 1], tf.float32, name="image")
    with pure_path():
        function = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(function)


def _shapes(frozen_function):
    """`(height, width, channels, classes)` of a frozen `[None, h, w, c] -> [None, h, w, C]` function."""
    height, width, channels = frozen_function.inputs[0].shape[1:]
    return height, width, channels, frozen_function.outputs[0].shape[-1]


def slice_function(frozen_function):
    """`frozen_function` on one slice `[1, h, w, c]`, as a concrete function.

    Converted, every shape in it is static (the converter specialises the
    frozen graph to the batch size of 1).
    """
    height, width, channels, _ = _shapes(frozen_function)
    spec = tf.TensorSpec([1, height, width, channels], tf.float32, name="image")
    return tf.function(lambda image: frozen_function(image)[0]).get_concrete_function(spec)


def slice_loop_function(frozen_function):
    """`frozen_function` (`[None, h, w, c] -> [None, h, w, C]`) run on one slice at a time, as a concrete function.

    A `tf.while_loop` over the batch calls `frozen_function` on `[1, h, w, c]`,
    so that when converted every shape inside the loop is static, and writes
    each slice's output into its place in an output of the batch's size
    (`DYNAMIC_UPDATE_SLICE`). Every tensor the loop carries keeps its shape
    from one step to the next, so TFLite prepares the loop's body once per
    call rather than at every step (as a growing concatenation would make it).
    The slices are independent in the model (no layer mixes the batch), so
    the result is that of `frozen_function` on the whole batch.
    """
    from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice  # the op the converter maps

    height, width, channels, classes = _shapes(frozen_function)

    def per_slice(image):
        count = tf.shape(image)[0]

        def body(index, done):
            start = tf.stack([index, 0, 0, 0])
            probabilities = frozen_function(tf.slice(image, start, [1, height, width, channels]))[0]
            return index + 1, dynamic_update_slice(done, probabilities, start)

        # Every row is written in the loop, so the start may hold anything of the output's shape; a tiling of the
        # input has that shape when the interpreter prepares (zeros of a computed shape would be a dynamic tensor,
        # which makes TFLite prepare the loop's body at every step).
        start = tf.tile(image[..., :1], [1, 1, 1, classes])
        return tf.while_loop(lambda index, done: index < count, body, [tf.constant(0), start])[1]

    spec = tf.TensorSpec([None, height, width, channels], tf.float32, name="image")
    return tf.function(per_slice).get_concrete_function(spec)


def _converted(function, quantization):
    """TFLite bytes of one concrete function, builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def convert(frozen_function, quantization, slice_loop=True):
    """Converts a frozen concrete function to TFLite bytes.

    Args:
        frozen_function: from `frozen_inference_function`.
        quantization: `"fp32"` (none), `"fp16"` (float16 weights) or `"int8"`
            (dynamic-range: int8 weights, activations quantized on the fly).
        slice_loop: run the model one slice at a time with static shapes: the
            two signatures of the module docstring. False converts the graph
            with its free batch axis as it is, without signatures (the slower
            file of earlier exports).

    Returns:
        The `.tflite` flatbuffer as bytes.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if not slice_loop:
        return _converted(frozen_function, quantization)
    loop = _converted(slice_loop_function(frozen_function), quantization)
    return with_signatures(loop, _converted(slice_function(frozen_function), quantization))


def _operator_code_key(code):
    return (code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version)


def with_signatures(model, single):
    """One file of two converted models: `model` as `SERVING_SIGNATURE`, `single`'s subgraph as `SLICE_SIGNATURE`.

    Args:
        model: TFLite bytes whose first subgraph has one input and one output
            (further subgraphs, a loop's condition and body, stay as they are).
        single: TFLite bytes of one subgraph with one input and one output.

    Returns:
        TFLite bytes: `model`'s subgraphs, then `single`'s, its operator codes
        added where new and its constant buffers shared with `model`'s where the
        bytes are equal (the weights, stored once).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    merged = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    extra = flatbuffer_utils.read_model_from_bytearray(bytearray(single))
    if len(extra.subgraphs) != 1:
        raise ValueError(f"with_signatures: the single model has {len(extra.subgraphs)} subgraphs, not 1")

    codes = [_operator_code_key(code) for code in merged.operatorCodes]
    code_index = []
    for code in extra.operatorCodes:
        if _operator_code_key(code) not in codes:
            codes.append(_operator_code_key(code))
            merged.operatorCodes.append(code)
        code_index.append(codes.index(_operator_code_key(code)))

    stored = {bytes(buffer.data): index for index, buffer in enumerate(merged.buffers) if buffer.data is not None}
    buffer_index = []
    for buffer in extra.buffers:
        data = b"" if buffer.data is None else bytes(buffer.data)
        if not data:
            buffer_index.append(0)  # buffer 0 is the empty sentinel: a tensor without constant data
            continue
        if data not in stored:
            stored[data] = len(merged.buffers)
            merged.buffers.append(buffer)
        buffer_index.append(stored[data])

    subgraph = extra.subgraphs[0]
    for operator in subgraph.operators:
        operator.opcodeIndex = code_index[operator.opcodeIndex]
    for tensor in subgraph.tensors:
        tensor.buffer = buffer_index[tensor.buffer]
    merged.subgraphs.append(subgraph)

    def tensor_map(name, index):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    def signature(key, index):
        definition = schema.SignatureDefT()
        definition.signatureKey, definition.subgraphIndex = key, index
        definition.inputs = [tensor_map("image", merged.subgraphs[index].inputs[0])]
        definition.outputs = [tensor_map("probabilities", merged.subgraphs[index].outputs[0])]
        return definition

    merged.signatureDefs = [signature(SERVING_SIGNATURE, 0), signature(SLICE_SIGNATURE, len(merged.subgraphs) - 1)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(merged))
