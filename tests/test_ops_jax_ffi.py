"""The compiled kernels inside XLA-compiled JAX functions (`jax.ffi` custom calls), against the `keras.ops` path.

Under `KERAS_BACKEND=jax` the layers run the library's CPU kernels as XLA FFI
custom calls (`tf_resattn.jax_ffi`, `tf_resattn/ops/_lsh_jax_ffi.so`, built by
`custom_ops/build.py` where jaxlib is installed). The checks run in one
separate process with `KERAS_BACKEND=jax` (as tests/test_jax_backend.py
does), which writes each check's outcome to a JSON file; every test below
reads its own. They skip where JAX or the FFI library is missing.

The tolerances are those of the TensorFlow path's tests (tests/test_ops_xla.py,
tests/test_lsh_kernels.py): the sort and the permutations are exact; outputs
to 1e-5 and gradients to rtol 1e-4, atol 2e-5 for the layer; 1e-6 and 1e-5
for `lsh_attention` itself.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY_PATH = REPO_ROOT / "tf_resattn" / "ops" / "_lsh_jax_ffi.so"

pytestmark = [
    pytest.mark.slow,  # JAX processes (about 15 s, 40 s and 20 s on 2 cores), as the other JAX-backend tests
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install jax to run the FFI checks)"
    ),
    pytest.mark.skipif(
        not LIBRARY_PATH.exists(),
        reason=f"{LIBRARY_PATH.name} is not built (python custom_ops/build.py, with jaxlib installed)",
    ),
]

SCRIPT = r'''
import json, os, re, sys, traceback
import numpy as np
import jax, jax.numpy as jnp, keras
import tf_resattn
from tf_resattn import jax_ffi
from tf_resattn.layers import kernels
from tf_resattn.layers.lsh_attention import LSHSelfAttention, lsh_attention

assert keras.backend.backend() == "jax"
ATTENTION = {"tf_resattn_jax_bucket_sort", "tf_resattn_jax_lsh_hash", "tf_resattn_jax_lsh_chunk_attention",
             "tf_resattn_jax_lsh_chunk_attention_grad"}
SORT_AND_GATHER = {"tf_resattn_jax_bucket_sort", "tf_resattn_jax_permute_gather"}
results = {}


def random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def custom_calls(function, *args):
    return set(re.findall(r"custom_call @(tf_resattn\w*)", jax.jit(function).lower(*args).as_text()))


def check(name, when=True):
    def run(body):
        if not when:
            return
        try:
            body()
            results[name] = "ok"
        except Exception:
            results[name] = traceback.format_exc()[-4000:]
    return run


def both_paths(function, *args):
    """(targets, results) of jit(function) with the kernels, then on the keras.ops path (pure_path).

    Each path traces its own function object: jax.jit caches traces per function.
    """
    targets = custom_calls(function, *args)
    got = jax.jit(function)(*args)
    with jax_ffi.pure_path():
        pure = lambda *args: function(*args)  # noqa: E731
        pure_targets = custom_calls(pure, *args)
        want = jax.jit(pure)(*args)
    assert not pure_targets, pure_targets
    return targets, got, want


def layer_step(layer, dtype="float32"):
    """Output and gradients (input, then weights) of the layer under a position-dependent loss."""
    trainable = [v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]

    def loss(weights, x):
        y, _ = layer.stateless_call(weights, frozen, x)
        y = y.astype("float32")
        return jnp.sum(y * jnp.sin(y)), y

    def step(x):
        (_, y), (d_weights, d_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(trainable, x)
        return [y, d_x.astype("float32"), *d_weights]

    return step


LAYER_INPUTS = {
    "padded length": lambda: random((2, 100, 12), 4),  # 100 tokens padded to 104, 13 chunks
    "many ties": lambda: random((2, 4, 12), 5)[:, np.arange(40) % 4],  # four tokens repeated
    "one chunk pair": lambda: random((1, 24, 12), 6),  # 3 chunks, two buckets
}
keras.utils.set_random_seed(0)
layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=8, n_hashes=2, seed=1)
layer.build((None, None, 12))

library, reason = jax_ffi.load_library()
results["library"] = "ok" if library is not None else reason
forced = os.environ.get("TF_RESATTN_PURE_TF") == "1"
if library is None or forced:
    if forced:
        step = layer_step(layer)
        x = LAYER_INPUTS["padded length"]()

        @check("forced off")
        def _():
            assert not jax_ffi.compiled_kernels("float32", fused=True)[0]
            assert custom_calls(step, x) == set()
    json.dump(results, open(sys.argv[1], "w"))
    sys.exit(0)

def assert_same_step(got, want):
    """Outputs within 1e-5, gradients within the tolerances of the TF-XLA path's tests."""
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    for ours, reference in zip(got[1:], want[1:]):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=2e-5)


for name, make in LAYER_INPUTS.items():

    @check(f"layer {name}")
    def _():
        x = make()
        targets, got, want = both_paths(layer_step(layer), x)
        assert targets == ATTENTION, targets
        assert_same_step(got, want)


@check("layer sort and gather")
def _():
    """The fused kernels off: the sort and the gather (and its gradient, the unsort) as custom calls."""
    real = kernels.lsh_kernels
    kernels.lsh_kernels = lambda *args, **kwargs: None
    import tf_resattn.layers.lsh_attention as module
    module.lsh_kernels = kernels.lsh_kernels
    try:
        x = LAYER_INPUTS["padded length"]()
        targets, got, want = both_paths(layer_step(layer), x)
    finally:
        kernels.lsh_kernels = module.lsh_kernels = real
    assert targets == SORT_AND_GATHER, targets
    assert_same_step(got, want)


@check("layer bfloat16")
def _():
    """bfloat16: the hash and attention are keras.ops, the sort and gather custom calls (moving bits only)."""
    bf_layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=8, n_hashes=2, seed=1, dtype="mixed_bfloat16")
    bf_layer.build((None, None, 12))
    for ours, theirs in zip(bf_layer.weights, layer.weights):
        ours.assign(theirs.value)
    x = LAYER_INPUTS["padded length"]()
    targets, got, want = both_paths(layer_step(bf_layer), x)
    assert targets == SORT_AND_GATHER, targets
    for ours, reference in zip(got, want):
        np.testing.assert_array_equal(ours, reference)


@check("lsh_attention")
def _():
    """The attention function on the same permutations, as tests/test_lsh_kernels.py (incl. one chunk)."""
    cases = [(2, 160, 16, 3, 32, 160), (1, 112, 8, 4, 16, 100), (3, 64, 4, 1, 64, 64), (2, 32, 48, 2, 16, 30)]
    for rows, length, depth, rounds, bucket_size, valid_length in cases:
        qk, v = random((rows, length, depth), 4), random((rows, length, depth), 5)
        rotations = random((depth, rounds, 8), 6)
        upstream = random((rows, length, depth), 7)

        def loss(qk, v):
            out = lsh_attention(qk, v, rotations, bucket_size, valid_length, max_buckets=16)
            return jnp.sum(out * upstream), out

        def step(qk, v):
            (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(qk, v)
            return [out, *grads]

        targets, got, want = both_paths(step, qk, v)
        assert targets == ATTENTION, (rows, length, targets)
        np.testing.assert_allclose(got[0], want[0], atol=1e-6)
        for ours, reference in zip(got[1:], want[1:]):
            np.testing.assert_allclose(ours, reference, atol=1e-5)


@check("sort and gather")
def _():
    """The sort (ties keep their order) and the gather with its gradient equal the keras.ops path exactly."""
    rng = np.random.default_rng(3)
    for num_buckets in (1, 5, 3000):  # one bucket (all ties), a few, far more buckets than tokens
        buckets = rng.integers(0, num_buckets, (4, 300)).astype(np.int32)
        x = random((4, 300, 6), 8)

        def step(buckets, x):
            permutation, inverse = kernels.sort_by_bucket(buckets, num_buckets)
            positions = jnp.arange(300, dtype="float32")[None, :, None]
            y, d_x = jax.value_and_grad(lambda x: jnp.sum(kernels.gather_rows(x, permutation, inverse) * positions))(x)
            return [permutation, inverse, kernels.gather_rows(x, permutation, inverse), d_x]

        targets, got, want = both_paths(step, buckets, x)
        assert targets == SORT_AND_GATHER, targets
        for ours, reference in zip(got, want):
            np.testing.assert_array_equal(ours, reference)
        np.testing.assert_array_equal(got[0], np.argsort(buckets, axis=-1, kind="stable"))


@check("bad input")
def _():
    """A bucket id outside its range fails the call with the kernel's message."""
    try:
        jax.jit(lambda b: jax_ffi.bucket_sort(b, 4))(np.full((2, 8), 7, np.int32))[0].block_until_ready()
    except Exception as error:
        assert "is outside [0, 4)" in str(error), error
    else:
        raise AssertionError("no error")


@check("model train step", when=os.environ.get("TF_RESATTN_CHECK_MODEL_STEP") == "1")
def _():
    """A whole resattn model: the compiled train step (loss, gradients, optimizer) runs the custom calls."""
    keras.utils.set_random_seed(0)
    model = tf_resattn.build_model("resattn", base_filters=4, depth=2, num_heads=1, key_dim=8, bucket_size=16,
                                   n_hashes=2)
    images = np.random.default_rng(0).random((2, 40, 36, 1), dtype=np.float32)
    labels = np.random.default_rng(1).integers(0, 4, (2, 40, 36))
    loss_fn = tf_resattn.losses.get("ce", 4)
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])

    def train_step(state, images, labels):
        trainable, frozen, optimizer_state = state

        def loss(trainable):
            predictions, frozen_out = model.stateless_call(trainable, frozen, images, training=True)
            return loss_fn(labels, predictions), frozen_out

        (value, frozen_out), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return value, (trainable, frozen_out, optimizer_state)

    targets = custom_calls(train_step, state, images, labels)
    assert ATTENTION <= targets, targets
    step = jax.jit(train_step)
    losses = []
    for _ in range(3):
        value, state = step(state, images, labels)
        losses.append(float(value))
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    model.compile("adam", loss_fn)
    history = model.fit(images, labels, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(history).all(), history


json.dump(results, open(sys.argv[1], "w"))
'''


def _run(tmp_path_factory, **env):
    out = tmp_path_factory.mktemp("jax_ffi") / "results.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", **env}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    if results.get("library") != "ok":
        pytest.skip(f"the JAX FFI library does not load: {results.get('library')}")
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return _run(tmp_path_factory)


CHECKS = [
    "layer padded length",
    "layer many ties",
    "layer one chunk pair",
    "layer sort and gather",
    "layer bfloat16",
    "lsh_attention",
    "sort and gather",
    "bad input",
]


@pytest.mark.timeout(600)  # the first test runs the whole script (about 80 s on 2 shared cores)
@pytest.mark.parametrize("check", CHECKS)
def test_jitted_step_runs_the_ffi_kernels_and_equals_the_keras_ops_path(results, check):
    assert results[check] == "ok", results[check]


@pytest.mark.timeout(900)
def test_a_whole_model_train_step_runs_the_ffi_kernels(tmp_path_factory):
    results = _run(tmp_path_factory, TF_RESATTN_CHECK_MODEL_STEP="1")
    assert results["model train step"] == "ok", results["model train step"]


@pytest.mark.timeout(600)
def test_no_custom_call_with_tf_resattn_pure_tf(tmp_path_factory):
    results = _run(tmp_path_factory, TF_RESATTN_PURE_TF="1")
    assert results["forced off"] == "ok", results["forced off"]
