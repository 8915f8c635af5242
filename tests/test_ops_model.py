"""The LSHSelfAttention layer and a resattn model give the same results with and without the compiled op."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_resattn
from tf_resattn import ops
from tf_resattn.ops import loader

LIBRARY, LIBRARY_REASON = loader.load_library()
pytestmark = pytest.mark.skipif(LIBRARY is None, reason=f"compiled op library unavailable: {LIBRARY_REASON}")

IMAGE_SIZE = 32


def _layer_and_inputs():
    """A layer long enough (200 tokens > 2 * bucket_size) to hash, and its input `[2, 200, 12]`."""
    layer = tf_resattn.layers.LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=16, n_hashes=2, seed=0)
    inputs = tf.constant(np.random.default_rng(0).standard_normal((2, 200, 12)), tf.float32)
    layer(inputs)
    return layer, inputs


def _layer_output_and_gradients(layer, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * tf.cos(outputs))
    return [outputs, *tape.gradient(loss, [inputs, *layer.trainable_weights])]


def _op_types(function, *specs):
    graph = tf.function(function).get_concrete_function(*specs).graph
    op_types = {op.type for op in graph.get_operations()}
    for nested in graph._functions.values():  # branches and nested functions
        op_types |= {node.op for node in nested.cached_definition.node_def}
    return op_types


def test_layer_runs_the_compiled_ops_in_graphs():
    layer, inputs = _layer_and_inputs()

    def forward_and_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, x)

    op_types = _op_types(forward_and_backward, tf.TensorSpec(inputs.shape, tf.float32))
    if ops.compiled_kernels(tf.float32, fused=True)[0]:  # CPU machine: hash and attention fused
        expected = {"TfResattn>LshHash", "TfResattn>BucketSort", "TfResattn>LshChunkAttention"}
        expected.add("TfResattn>LshChunkAttentionGrad")
    else:  # GPU machine: sort and gather only
        expected = {"TfResattn>BucketSort", "TfResattn>PermuteGather"}
    assert expected <= op_types


def test_float16_layer_uses_the_sort_and_gather_ops():
    layer = tf_resattn.layers.LSHSelfAttention(num_heads=1, key_dim=8, bucket_size=16, seed=0, dtype="float16")
    op_types = _op_types(layer, tf.TensorSpec((1, 200, 12), tf.float16))
    assert {"TfResattn>BucketSort", "TfResattn>PermuteGather"} <= op_types
    assert "TfResattn>LshChunkAttention" not in op_types


def test_layer_same_with_and_without_op():
    layer, inputs = _layer_and_inputs()
    with_op = _layer_output_and_gradients(layer, inputs)
    with ops.pure_path():
        without_op = _layer_output_and_gradients(layer, inputs)
    np.testing.assert_allclose(with_op[0].numpy(), without_op[0].numpy(), rtol=1e-5, atol=1e-6)
    # Gradients sum hundreds of float32 terms, in another order in the compiled op.
    for ours, reference in zip(with_op[1:], without_op[1:]):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-5)


def _batch():
    rng = np.random.default_rng(1)
    images = rng.random((2, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")
    masks = rng.integers(0, 4, size=(2, IMAGE_SIZE, IMAGE_SIZE)).astype("int32")
    return images, masks


def _train_one_step(initial_weights, jit_compile, pure=False):
    """Loss and weights after one SGD step of a tiny resattn model from `initial_weights`."""
    model = tf_resattn.build_model(
        "resattn", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), base_filters=8, depth=2, bucket_size=16
    )
    model.set_weights(initial_weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
    images, masks = _batch()
    if pure:
        with ops.pure_path():
            loss = model.train_on_batch(images, masks)
    else:
        loss = model.train_on_batch(images, masks)
    return loss, [weight.numpy() for weight in model.weights]


@pytest.fixture(scope="module")
def initial_weights():
    keras.utils.set_random_seed(0)
    model = tf_resattn.build_model(
        "resattn", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), base_filters=8, depth=2, bucket_size=16
    )
    return model.get_weights()


@pytest.fixture(scope="module")
def graph_step(initial_weights):
    return _train_one_step(initial_weights, jit_compile=False)


def test_training_step_same_with_and_without_op(initial_weights, graph_step):
    loss, weights = graph_step
    pure_loss, pure_weights = _train_one_step(initial_weights, jit_compile=False, pure=True)
    np.testing.assert_allclose(loss, pure_loss, rtol=1e-6)
    for ours, reference in zip(weights, pure_weights):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def test_xla_training_step_matches_graph_step(initial_weights, graph_step):
    loss, weights = graph_step
    xla_loss, xla_weights = _train_one_step(initial_weights, jit_compile=True)
    np.testing.assert_allclose(loss, xla_loss, rtol=1e-4)
    changed = [not np.array_equal(after, before) for after, before in zip(xla_weights, initial_weights)]
    assert sum(changed) > len(changed) // 2, "the XLA step left most weights unchanged"
    for ours, reference in zip(xla_weights, weights):
        np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-5)


def _saved_model_bytes(path, pure):
    model = tf_resattn.build_model(
        "resattn", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), base_filters=8, depth=2, bucket_size=16
    )
    model(_batch()[0])  # eager call: uses the compiled op when available
    if pure:
        with ops.pure_path():
            model.export(str(path), format="tf_saved_model", verbose=False)
    else:
        model.export(str(path), format="tf_saved_model", verbose=False)
    return (path / "saved_model.pb").read_bytes()


def test_export_inside_pure_path_holds_no_custom_op(tmp_path):
    assert b"TfResattn>" in _saved_model_bytes(tmp_path / "with_op", pure=False)
    assert b"TfResattn>" not in _saved_model_bytes(tmp_path / "pure", pure=True)
