"""The compiled kernels inside XLA (`jit_compile=True`) as custom calls, against the eager kernels and the pure path."""

import pathlib
import re
import runpy
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from norm_helpers import paired_layers

import tf_resattn
from tf_resattn import layers, ops
from tf_resattn.data import Preprocessing
from tf_resattn.export.savedmodel import export_saved_model
from tf_resattn.export.tflite import frozen_inference_function
from tf_resattn.layers import LSHSelfAttention
from tf_resattn.ops import dispatch, loader, xla_calls

needs_xla_targets = pytest.mark.skipif(
    "Host" not in loader.xla_platforms(),
    reason=f"the op library has no XLA custom-call targets for Host ({ops.compiled_kernels()[1]})",
)
ATTENTION_TARGETS = {
    "tf_resattn_bucket_sort",
    "tf_resattn_lsh_hash",
    "tf_resattn_lsh_chunk_attention",
    "tf_resattn_lsh_chunk_attention_grad",
}
SORT_AND_GATHER_TARGETS = {"tf_resattn_bucket_sort", "tf_resattn_permute_gather"}
NORM_TARGETS = {
    "layer norm": {"tf_resattn_layer_norm", "tf_resattn_layer_norm_grad"},
    "group norm": {"tf_resattn_group_norm", "tf_resattn_group_norm_grad"},
}
MODEL_TARGETS = ATTENTION_TARGETS | NORM_TARGETS["layer norm"] | NORM_TARGETS["group norm"]
IMAGE_SIZE = 16  # attention over 64 and 256 tokens, in chunks of 16
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _custom_calls(function, *args):
    """The custom-call targets in the HLO that XLA compiles for `function(*args)`."""
    return set(re.findall(r'custom_call_target="([^"]+)"', function.experimental_get_compiler_ir(*args)(stage="hlo")))


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _unknown_batch(*tensors):
    """Signatures with the batch axis unknown, as Keras traces its training step."""
    return [tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype) for tensor in tensors]


def _sort_and_gather(buckets, x):
    """Output and input gradient of a bucket sort and a gather, with a position-dependent loss."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        permutation, inverse = ops.bucket_sort(buckets, 5)
        y = ops.permute_gather(x, permutation, inverse)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(1.0, 1.0 + y.shape[1])[None, :, None])
    return y, tape.gradient(loss, x)


@needs_xla_targets
def test_compiled_kernels_reports_the_xla_case():
    answers = {}
    x = tf.zeros((2, 6, 3))

    @tf.function(jit_compile=True)
    def ask(x, unknown):
        answers["static"] = ops.compiled_kernels(tf.float32, xla_operands=(x,))
        answers["unknown"] = ops.compiled_kernels(tf.float32, xla_operands=(unknown,))
        answers["norms"] = ops.compiled_kernels(tf.float32, fused=True)
        answers["no sort value"] = ops.compiled_kernels(xla_operands=(x, None))
        return x

    ask.get_concrete_function(x, tf.TensorSpec([2, None, 3]))
    assert answers["static"][0] and answers["static"][1].startswith("XLA compilation: custom calls of loaded")
    assert answers["unknown"] == (
        False,
        "XLA compilation (jit_compile=True): the custom calls need shapes known when the function is traced",
    )
    assert not answers["norms"][0] and "cannot run custom ops" in answers["norms"][1]
    assert not answers["no sort value"][0]


@needs_xla_targets
@pytest.mark.parametrize(
    "dtype, ids, batch",
    [
        (tf.float32, "random", "static"),
        (tf.float32, "many ties", "unknown"),
        (tf.float32, "one bucket", "static"),
        (tf.float16, "random", "unknown"),
        (tf.bfloat16, "many ties", "static"),
    ],
    ids=str,
)
def test_sort_and_gather_custom_calls_equal_eager_kernels_and_pure_path(dtype, ids, batch):
    rng = np.random.default_rng(1)
    buckets = {
        "random": rng.integers(0, 5, (3, 11)),
        "many ties": rng.integers(3, 5, (3, 11)),
        "one bucket": np.zeros((3, 11)),
    }[ids]
    buckets = tf.constant(buckets, tf.int32)
    x = tf.cast(tf.constant(_random((3, 11, 4), 2)), dtype)
    signature = _unknown_batch(buckets, x) if batch == "unknown" else None
    xla = tf.function(_sort_and_gather, jit_compile=True, input_signature=signature)
    assert _custom_calls(xla, buckets, x) == SORT_AND_GATHER_TARGETS
    got = xla(buckets, x)
    with ops.pure_path():
        pure = _sort_and_gather(buckets, x)
    for want in (_sort_and_gather(buckets, x), pure):  # a gather moves values: equal bit for bit
        for ours, reference in zip(got, want):
            np.testing.assert_array_equal(ours.numpy(), reference.numpy())


@needs_xla_targets
def test_a_kernel_error_inside_xla_names_the_bad_input():
    xla = tf.function(lambda buckets: ops.bucket_sort(buckets, 4), jit_compile=True)
    with pytest.raises(tf.errors.InternalError, match=r"`buckets`\[1, 2\] = 7 is outside \[0, 4\)"):
        xla(tf.constant([[0, 1, 2], [3, 0, 7]], tf.int32))


@pytest.fixture(scope="module")
def layer():
    keras.utils.set_random_seed(3)
    layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=8, n_hashes=2, seed=0)
    layer.build((None, None, 12))
    return layer


def _layer_step(layer):
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]

    return step


LAYER_INPUTS = {
    "padded length": lambda: _random((2, 100, 12), 4),  # 100 tokens padded to 104, 13 chunks
    "many ties": lambda: _random((2, 4, 12), 5)[:, np.arange(40) % 4],  # four tokens repeated: ten of each hash alike
    "one chunk pair": lambda: _random((1, 24, 12), 6),  # 3 chunks, two buckets
}


@needs_xla_targets
@pytest.mark.parametrize(
    "inputs, batch",
    [("padded length", "static"), ("padded length", "unknown"), ("many ties", "static"), ("one chunk pair", "unknown")],
)
def test_layer_under_xla_runs_the_kernels_and_equals_eager_kernels_and_pure_path(layer, inputs, batch):
    x = tf.constant(LAYER_INPUTS[inputs]())
    signature = _unknown_batch(x) if batch == "unknown" else None
    xla = tf.function(_layer_step(layer), jit_compile=True, input_signature=signature)
    assert _custom_calls(xla, x) == ATTENTION_TARGETS
    got = xla(x)
    eager = _layer_step(layer)(x)
    with ops.pure_path():
        pure = _layer_step(layer)(x)
    for want in (eager, pure):
        np.testing.assert_allclose(got[0], want[0], atol=1e-5)
        for ours, reference in zip(got[1:], want[1:]):
            np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=2e-5)


NORMS = {
    # name: (our layer, Keras's, its arguments, input shape)
    "layer norm": (layers.LayerNormalization, keras.layers.LayerNormalization, {}, (2, 40, 12)),
    "group norm": (layers.GroupNormalization, keras.layers.GroupNormalization, {"groups": 4}, (2, 6, 5, 8)),
}


def _norms(name):
    """Our normalisation layer and Keras's with the same random weights, and a random input."""
    ours_class, keras_class, kwargs, shape = NORMS[name]
    ours, reference = paired_layers(ours_class, keras_class, shape, 0, **kwargs)
    return ours, reference, tf.constant(_random(shape, 8) * 3.0 + 1.0)


@needs_xla_targets
@pytest.mark.parametrize("batch", ["static", "unknown"])
@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalizations_under_xla_run_the_kernels_and_equal_eager_kernels_and_keras(name, batch):
    ours, reference, x = _norms(name)
    signature = _unknown_batch(x) if batch == "unknown" else None
    xla = tf.function(_layer_step(ours), jit_compile=True, input_signature=signature)
    assert _custom_calls(xla, x) == NORM_TARGETS[name]
    got = xla(x)
    for want in (_layer_step(ours)(x), _layer_step(reference)(x)):  # the eager kernels, Keras's layer
        np.testing.assert_allclose(got[0], want[0], atol=2e-5, rtol=1e-5)
        for ours_gradient, reference_gradient in zip(got[1:], want[1:]):  # x, then the weights
            np.testing.assert_allclose(ours_gradient, reference_gradient, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalizations_under_xla_have_no_custom_call_forced_off_or_inside_pure_path(name, monkeypatch):
    ours, _, x = _norms(name)
    with ops.pure_path():
        assert _custom_calls(tf.function(_layer_step(ours), jit_compile=True), x) == set()
    _forced_off(monkeypatch)
    assert _custom_calls(tf.function(_layer_step(ours), jit_compile=True), x) == set()


def _forced_off(monkeypatch):
    monkeypatch.setenv(dispatch.FORCE_PURE_ENV, "1")


def _without_xla_targets(monkeypatch):
    monkeypatch.setattr(loader, "xla_platforms", lambda: ())


@pytest.mark.parametrize("condition", [_forced_off, _without_xla_targets], ids=["forced off", "no XLA targets"])
def test_layer_under_xla_has_no_custom_call_where_the_kernels_cannot_run(layer, condition, monkeypatch):
    condition(monkeypatch)
    x = tf.constant(LAYER_INPUTS["padded length"]())
    assert _custom_calls(tf.function(_layer_step(layer), jit_compile=True), x) == set()


def test_layer_inside_pure_path_has_no_custom_call(layer):
    x = tf.constant(LAYER_INPUTS["padded length"]())
    with ops.pure_path():
        assert _custom_calls(tf.function(_layer_step(layer), jit_compile=True), x) == set()


def _tiny_model():
    keras.utils.set_random_seed(0)
    return tf_resattn.build_model(
        "resattn",
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
        base_filters=4,
        depth=1,
        cardinality=2,
        bottleneck_width=2,
        num_heads=1,
        key_dim=8,
        bucket_size=16,
        n_hashes=2,
    )


def _batch():
    rng = np.random.default_rng(7)
    images = rng.random((2, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32)
    masks = rng.integers(0, 4, (2, IMAGE_SIZE, IMAGE_SIZE)).astype(np.int32)
    return tf.constant(images), tf.constant(masks)


@pytest.fixture(scope="module")
def model():
    model = _tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", jit_compile=True)
    return model


def _model_step(model):
    def step(images, masks):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=images, y=masks, y_pred=model(images, training=True))
        return [loss, *tape.gradient(loss, model.trainable_weights)]

    return step


@needs_xla_targets
def test_model_gradients_under_xla_equal_eager_kernels_and_pure_path(model):
    images, masks = _batch()
    xla = tf.function(_model_step(model), jit_compile=True, input_signature=_unknown_batch(images, masks))
    assert MODEL_TARGETS <= _custom_calls(xla, images, masks)
    got = xla(images, masks)
    eager = _model_step(model)(images, masks)
    with ops.pure_path():
        pure = _model_step(model)(images, masks)
    for want in (eager, pure):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        for ours, reference in zip(got[1:], want[1:]):
            np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # a whole Keras fit compiled by XLA: about 12 s on two cores
@needs_xla_targets
def test_keras_jit_compile_training_emits_the_custom_calls(model, monkeypatch):
    emitted = []
    custom_call = xla_calls._custom_call

    def recording(target, *args):
        emitted.append(target)
        return custom_call(target, *args)

    monkeypatch.setattr(xla_calls, "_custom_call", recording)
    images, masks = _batch()
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(2)  # batch axis unknown when traced
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert MODEL_TARGETS <= set(emitted)
    assert np.isfinite(history.history["loss"][0])


@needs_xla_targets
def test_keras_file_saved_on_one_path_predicts_the_same_on_the_other(model, tmp_path):
    images, _ = _batch()
    with ops.pure_path():
        model.save(tmp_path / "model.keras")
        pure = model(images, training=False).numpy()
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    xla = tf.function(lambda x: loaded(x, training=False), jit_compile=True)
    assert ATTENTION_TARGETS - {"tf_resattn_lsh_chunk_attention_grad"} <= _custom_calls(xla, images)
    np.testing.assert_allclose(xla(images).numpy(), pure, atol=1e-5)


def test_exports_hold_no_custom_call(model, tmp_path):
    export_saved_model(model, Preprocessing("hu", (-1000.0, 400.0), (IMAGE_SIZE, IMAGE_SIZE)), tmp_path / "saved")
    frozen = frozen_inference_function(model, (IMAGE_SIZE, IMAGE_SIZE)).graph.as_graph_def().SerializeToString()
    for graph in ((tmp_path / "saved" / "saved_model.pb").read_bytes(), frozen):
        assert b"XlaCustomCall" not in graph and b"tf_resattn_" not in graph and b"TfResattn>" not in graph


@pytest.mark.slow  # compiles the whole op library: about a minute on two cores
def test_library_builds_without_xla_targets_where_they_fail_to_compile(tmp_path):
    build_library = runpy.run_path(str(REPO_ROOT / "custom_ops" / "build.py"))["build_library"]
    build_library.__globals__["XLA_SOURCES"] = ("cc/xla/no_such_file.cc",)
    lines = []
    library = build_library(tmp_path / "_lsh_sort_ops.so", log=lines.append)
    assert any(line.startswith("warning: building without the XLA custom-call targets") for line in lines)
    load = f"import tensorflow as tf; print(tf.load_op_library({str(library)!r}).tf_resattn_library_info().numpy())"
    result = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith(";xla='")
