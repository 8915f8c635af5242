"""tf_resattn.ops: the compiled sort/gather ops against the pure path and NumPy, dispatch, loading."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_resattn import ops
from tf_resattn.ops import compiled, dispatch, loader, pure

LIBRARY, LIBRARY_REASON = loader.load_library()
needs_library = pytest.mark.skipif(LIBRARY is None, reason=f"compiled op library unavailable: {LIBRARY_REASON}")

PATHS = {
    "pure": (pure.bucket_sort, pure.permute_gather),
    "compiled": (compiled.bucket_sort, compiled.permute_gather),
}
PATH_PARAMS = [pytest.param("pure"), pytest.param("compiled", marks=needs_library)]
DTYPES = [tf.float32, tf.float16, tf.bfloat16]


def _ids(case, rng):
    """(bucket ids int32 [N, L], num_buckets) for a named edge case."""
    if case == "many ties":
        return rng.integers(0, 3, size=(4, 1000)), 5
    if case == "one bucket":
        return np.zeros((3, 777)), 1
    if case == "own bucket each":
        return np.tile(np.arange(513)[::-1], (2, 1)), 513
    if case == "L = 1":
        return rng.integers(0, 2, size=(5, 1)), 2
    if case == "odd L":
        return rng.integers(0, 97, size=(3, 1237)), 97
    if case == "N = 0":
        return np.zeros((0, 64)), 4
    if case == "far more buckets than tokens":
        return rng.integers(0, 100_000, size=(2, 100)), 100_000
    raise ValueError(case)


CASES = ["many ties", "one bucket", "own bucket each", "L = 1", "odd L", "N = 0", "far more buckets than tokens"]


def _numpy_sort(ids):
    permutation = np.argsort(ids, axis=1, kind="stable")
    return permutation, np.argsort(permutation, axis=1, kind="stable")


@pytest.mark.parametrize("path", PATH_PARAMS)
@pytest.mark.parametrize("case", CASES)
def test_bucket_sort_matches_numpy_stable_argsort(path, case):
    ids, num_buckets = _ids(case, np.random.default_rng(1))
    bucket_sort, _ = PATHS[path]
    permutation, inverse = bucket_sort(tf.constant(ids, tf.int32), num_buckets)
    want_permutation, want_inverse = _numpy_sort(ids)
    assert permutation.dtype == tf.int32 and inverse.dtype == tf.int32
    np.testing.assert_array_equal(permutation.numpy(), want_permutation)
    np.testing.assert_array_equal(inverse.numpy(), want_inverse)


@pytest.mark.parametrize("path", PATH_PARAMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.name)
@pytest.mark.parametrize("case", ["many ties", "L = 1", "odd L", "N = 0"])
def test_permute_gather_matches_numpy_fancy_indexing(path, dtype, case):
    rng = np.random.default_rng(2)
    ids, num_buckets = _ids(case, rng)
    x = tf.constant(rng.standard_normal(ids.shape + (6,)), dtype)
    permutation, inverse = _numpy_sort(ids)
    _, permute_gather = PATHS[path]
    y = permute_gather(x, tf.constant(permutation, tf.int32), tf.constant(inverse, tf.int32))
    assert y.dtype == dtype
    want = np.take_along_axis(x.numpy(), permutation[..., None], axis=1)
    np.testing.assert_array_equal(y.numpy(), want)


@needs_library
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.name)
def test_sort_gather_unsort_same_on_both_paths(dtype):
    rng = np.random.default_rng(3)
    buckets = tf.constant(rng.integers(0, 9, size=(6, 301)), tf.int32)
    x = tf.constant(rng.standard_normal((6, 301, 16)), dtype)
    results = {}
    for name, (bucket_sort, permute_gather) in PATHS.items():
        permutation, inverse = bucket_sort(buckets, 9)
        sorted_x = permute_gather(x, permutation, inverse)
        restored = permute_gather(sorted_x, inverse, permutation)
        results[name] = (permutation, inverse, sorted_x, restored)
    for ours, reference in zip(results["compiled"], results["pure"]):
        np.testing.assert_array_equal(ours.numpy(), reference.numpy())
    np.testing.assert_array_equal(results["compiled"][3].numpy(), x.numpy())


@needs_library
def test_large_gather_matches_numpy():
    """Outputs above 8 MiB take the huge-page branch of the CPU gather."""
    rng = np.random.default_rng(9)
    ids = rng.integers(0, 129, size=(2, 16384))
    x = tf.constant(rng.standard_normal((2, 16384, 72)), tf.float32)
    permutation, inverse = compiled.bucket_sort(tf.constant(ids, tf.int32), 129)
    y = compiled.permute_gather(x, permutation, inverse)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(x.numpy(), _numpy_sort(ids)[0][..., None], axis=1))


@needs_library
def test_gradient_matches_numerical_jacobian():
    rng = np.random.default_rng(4)
    permutation, inverse = _numpy_sort(rng.integers(0, 3, size=(2, 7)))
    permutation, inverse = tf.constant(permutation, tf.int32), tf.constant(inverse, tf.int32)
    x = tf.constant(rng.standard_normal((2, 7, 3)), tf.float32)
    theoretical, numerical = tf.test.compute_gradient(lambda t: compiled.permute_gather(t, permutation, inverse), [x])
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-3)
    # The Jacobian of a permutation gather is a 0/1 permutation matrix.
    np.testing.assert_array_equal(np.sort(theoretical[0].sum(axis=0)), np.ones(x.shape.num_elements()))


@needs_library
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: dtype.name)
def test_gradient_matches_pure_path(dtype):
    rng = np.random.default_rng(5)
    buckets = tf.constant(rng.integers(0, 4, size=(3, 50)), tf.int32)
    x = tf.constant(rng.standard_normal((3, 50, 8)), dtype)
    weights = tf.constant(rng.standard_normal((3, 50, 8)), dtype)
    gradients = {}
    for name, (bucket_sort, permute_gather) in PATHS.items():
        with tf.GradientTape() as tape:
            tape.watch(x)
            permutation, inverse = bucket_sort(buckets, 4)
            sorted_x = permute_gather(x, permutation, inverse) * weights
            loss = tf.reduce_sum(permute_gather(sorted_x, inverse, permutation) * weights)
        gradients[name] = tape.gradient(loss, x)
    assert gradients["compiled"].dtype == dtype
    np.testing.assert_array_equal(gradients["compiled"].numpy(), gradients["pure"].numpy())


@needs_library
def test_second_order_gradient_is_defined():
    permutation, inverse = (tf.constant(a, tf.int32) for a in _numpy_sort(np.array([[2, 0, 1, 0]])))
    x = tf.constant(np.arange(4.0).reshape(1, 4, 1), tf.float32)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(compiled.permute_gather(x, permutation, inverse) ** 3)
        first = inner.gradient(loss, x)
    np.testing.assert_allclose(first.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(outer.gradient(first, x).numpy(), 6 * x.numpy())


@needs_library
@pytest.mark.parametrize(
    "buckets, num_buckets, message",
    [
        ([[0, 1], [2, 5]], 5, r"`buckets`\[1, 1\] = 5 is outside \[0, num_buckets\) = \[0, 5\)"),
        ([[0, -1]], 3, r"`buckets`\[0, 1\] = -1 is outside"),
        ([[0, 0]], 0, r"`num_buckets` must be at least 1, got 0"),
        ([0, 1, 2], 3, r"`buckets` must have rank 2 \[N, L\], got shape \[3\]"),
    ],
)
def test_bucket_sort_rejects_bad_input(buckets, num_buckets, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        compiled.bucket_sort(tf.constant(buckets, tf.int32), num_buckets)


@needs_library
@pytest.mark.parametrize(
    "x_shape, permutation, inverse_shape, message",
    [
        ((1, 3, 2), [[0, 1]], (1, 2), r"`permutation` has shape \[1,2\] but `x` has shape \[1,3,2\]"),
        ((1, 2, 2), [[0, 1]], (2, 2), r"`inverse` has shape \[2,2\] but `x` has shape \[1,2,2\]"),
        ((2, 2), [[0, 1], [1, 0]], (2, 2), r"`x` must have rank 3 \[N, L, D\], got shape \[2,2\]"),
        ((1, 3, 2), [[0, 3, 1]], (1, 3), r"`permutation`\[0, 1\] = 3 is outside \[0, L\) = \[0, 3\)"),
    ],
)
def test_permute_gather_rejects_bad_input(x_shape, permutation, inverse_shape, message):
    x = tf.zeros(x_shape)
    inverse = tf.zeros(inverse_shape, tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        compiled.permute_gather(x, tf.constant(permutation, tf.int32), inverse)


@needs_library
def test_graph_construction_rejects_wrong_rank_with_named_input():
    @tf.function
    def sort(buckets):
        return compiled.bucket_sort(buckets, 3)

    with pytest.raises(ValueError, match=r"`buckets` must have rank 2"):
        sort.get_concrete_function(tf.TensorSpec([4], tf.int32))


def test_dispatch_rejects_non_int32_ids():
    with pytest.raises(TypeError, match=r"`buckets` must be int32, got int64"):
        ops.bucket_sort(tf.constant([[1, 0]], tf.int64), 2)
    with pytest.raises(TypeError, match=r"`permutation` must be int32"):
        ops.permute_gather(tf.zeros((1, 2, 1)), tf.constant([[1, 0]], tf.int64), tf.constant([[1, 0]]))


def test_dispatch_accepts_bucket_count_as_tensor():
    permutation, inverse = ops.bucket_sort(tf.constant([[1, 0, 1]]), tf.constant(2, tf.int64))
    np.testing.assert_array_equal(permutation.numpy(), [[1, 0, 2]])
    np.testing.assert_array_equal(inverse.numpy(), [[1, 0, 2]])


def _traced_op_types(function, *specs):
    graph = function.get_concrete_function(*specs).graph
    return {op.type for op in graph.get_operations()}


def _sort_and_gather(buckets, x):
    permutation, inverse = ops.bucket_sort(buckets, 4)
    return ops.permute_gather(x, permutation, inverse)


SPECS = (tf.TensorSpec([2, 9], tf.int32), tf.TensorSpec([2, 9, 3], tf.float32))


@needs_library
def test_dispatch_uses_compiled_ops_in_graphs():
    assert {"TfResattn>BucketSort", "TfResattn>PermuteGather"} <= _traced_op_types(
        tf.function(_sort_and_gather), *SPECS
    )


def test_dispatch_uses_pure_path_under_xla():
    rng = np.random.default_rng(6)
    buckets = tf.constant(rng.integers(0, 4, size=(2, 9)), tf.int32)
    x = tf.constant(rng.standard_normal((2, 9, 3)), tf.float32)
    xla_function = tf.function(_sort_and_gather, jit_compile=True)
    assert not any(op_type.startswith("TfResattn>") for op_type in _traced_op_types(xla_function, *SPECS))
    want = np.take_along_axis(x.numpy(), _numpy_sort(buckets.numpy())[0][..., None], axis=1)
    np.testing.assert_array_equal(xla_function(buckets, x).numpy(), want)


@needs_library
def test_dispatch_sees_xla_from_nested_functions():
    inner = tf.function(_sort_and_gather)
    outer = tf.function(lambda buckets, x: inner(buckets, x), jit_compile=True)
    assert not any(op_type.startswith("TfResattn>") for op_type in _traced_op_types(outer, *SPECS))


def _answer_under_xla(**kwargs):
    answers = []

    @tf.function(jit_compile=True)
    def record(t):
        answers.append(ops.compiled_kernels(**kwargs))
        return t + 1

    record(tf.constant(1.0))
    return answers[0]


def _answer_inside_pure_path(**kwargs):
    with ops.pure_path():  # what SavedModel and TFLite export trace under
        return ops.compiled_kernels(**kwargs)


def _answer_without_library(monkeypatch, tmp_path, **kwargs):
    monkeypatch.setattr(loader, "LIBRARY_PATH", tmp_path / "_lsh_sort_ops.so")
    monkeypatch.setattr(loader, "_loaded", None)
    monkeypatch.setattr(dispatch, "_warned", True)
    return ops.compiled_kernels(**kwargs)


def _answer_when_forced_off(monkeypatch, **kwargs):
    monkeypatch.setenv("TF_RESATTN_PURE_TF", "1")
    return ops.compiled_kernels(**kwargs)


@pytest.mark.parametrize("question", [{}, {"dtype": tf.float32}, {"dtype": tf.float32, "fused": True}], ids=repr)
@pytest.mark.parametrize(
    "condition, reason",
    [
        ("xla", "XLA compilation (jit_compile=True) cannot run custom ops"),
        ("pure_path", "inside tf_resattn.ops.pure_path()"),
        ("no library", "_lsh_sort_ops.so is not built"),
        ("forced off", "forced off by TF_RESATTN_PURE_TF=1"),
    ],
)
def test_the_one_decision_says_pure_under_each_condition(condition, reason, question, monkeypatch, tmp_path):
    answer = {
        "xla": lambda: _answer_under_xla(**question),
        "pure_path": lambda: _answer_inside_pure_path(**question),
        "no library": lambda: _answer_without_library(monkeypatch, tmp_path, **question),
        "forced off": lambda: _answer_when_forced_off(monkeypatch, **question),
    }[condition]()
    assert answer[0] is False and answer[1].startswith(reason)


@pytest.mark.parametrize(
    "dtype, fused, reason",
    [
        (tf.int32, False, "the gather kernels take float32, float16, bfloat16, not int32"),
        (tf.float16, True, "the fused kernels take float32, not float16"),
        (tf.bfloat16, True, "the fused kernels take float32, not bfloat16"),
    ],
)
def test_the_one_decision_names_uncovered_dtypes(dtype, fused, reason):
    assert ops.compiled_kernels(dtype, fused=fused) == (False, reason)


@needs_library
def test_the_one_decision_says_compiled_in_eager_and_graph_mode():
    assert ops.compiled_kernels(tf.float16) == (True, LIBRARY_REASON)
    answers = []
    tf.function(lambda t: answers.append(ops.compiled_kernels(tf.float32)) or t).get_concrete_function(tf.constant(1.0))
    assert answers == [(True, LIBRARY_REASON)]


def test_layers_on_another_backend_never_import_tensorflow():
    script = (
        "import sys, numpy as np, keras\n"
        "from tf_resattn.layers import kernels\n"
        "assert kernels.tensorflow_ops is None and not kernels.fused_kernels_run('float32')\n"
        "permutation, inverse = kernels.sort_by_bucket(keras.ops.convert_to_tensor(np.array([[1, 0, 1, 0]], 'int32')), 2)\n"
        "assert keras.ops.convert_to_numpy(permutation).tolist() == [[1, 3, 0, 2]], permutation\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_pure_path_scope_and_environment_switch(monkeypatch):
    with ops.pure_path():
        scoped = _traced_op_types(tf.function(_sort_and_gather), *SPECS)
    assert not any(op_type.startswith("TfResattn>") for op_type in scoped)
    monkeypatch.setenv("TF_RESATTN_PURE_TF", "1")
    forced = _traced_op_types(tf.function(_sort_and_gather), *SPECS)
    assert not any(op_type.startswith("TfResattn>") for op_type in forced)


def test_missing_library_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(loader, "LIBRARY_PATH", tmp_path / "_lsh_sort_ops.so")
    monkeypatch.setattr(loader, "_loaded", None)
    monkeypatch.setattr(dispatch, "_warned", False)
    buckets = tf.constant([[2, 0, 1, 0]], tf.int32)
    with pytest.warns(RuntimeWarning, match=r"_lsh_sort_ops.so is not built; rebuild it") as caught:
        permutation, _ = ops.bucket_sort(buckets, 3)
        ops.bucket_sort(buckets, 3)
    assert len(caught) == 1
    np.testing.assert_array_equal(permutation.numpy(), [[1, 3, 2, 0]])
    assert ops.compiled_kernels() == (False, loader.load_library()[1])


def test_failed_install_build_is_named_in_the_warning(monkeypatch, tmp_path):
    (tmp_path / loader.BUILD_ERROR_PATH.name).write_text("C++ compiler 'g++' not found\n(install g++ or set CXX)\n")
    monkeypatch.setattr(loader, "LIBRARY_PATH", tmp_path / "_lsh_sort_ops.so")
    monkeypatch.setattr(loader, "_loaded", None)
    monkeypatch.setattr(dispatch, "_warned", False)
    with pytest.warns(
        RuntimeWarning,
        match=r"could not be built at install \(C\+\+ compiler 'g\+\+' not found \(install g\+\+ or set CXX\)\); fix that and reinstall",
    ):
        ops.bucket_sort(tf.constant([[1, 0]], tf.int32), 2)


def test_library_for_other_tensorflow_is_refused(monkeypatch, tmp_path):
    corrupt = tmp_path / "_lsh_sort_ops.so"
    corrupt.write_bytes(b"not a shared library")
    module, reason = loader._load(corrupt)
    assert module is None and "does not match this TensorFlow" in reason and loader.REBUILD_HINT in reason
    if LIBRARY is not None:
        monkeypatch.setattr(loader, "library_info", lambda module: {"tf_version": "2.0.0", "cxx11_abi": "1"})
        module, reason = loader._load(loader.LIBRARY_PATH)
        assert module is None and "built for TensorFlow 2.0.0" in reason


@needs_library
def test_avx2_build_is_refused_on_a_cpu_without_avx2(monkeypatch):
    info = loader.library_info(LIBRARY)
    monkeypatch.setattr(loader, "library_info", lambda module: {**info, "avx2_fma": "1", "cpu_avx2_fma": "0"})
    module, reason = loader._load(loader.LIBRARY_PATH)
    assert module is None and "AVX2 and FMA" in reason and loader.REBUILD_HINT in reason


class _SortByFirstFeature(keras.layers.Layer):
    """Sorts the tokens of `[B, L, D]` by the sign of their first feature (a stand-in for LSH buckets)."""

    def call(self, x):
        buckets = tf.cast(x[..., 0] > 0, tf.int32)
        permutation, inverse = ops.bucket_sort(buckets, 2)
        return ops.permute_gather(x, permutation, inverse) * tf.range(1.0, 17.0)[None, :, None]


def _one_training_step(jit_compile):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [keras.Input((16, 4)), keras.layers.Dense(4), _SortByFirstFeature(), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=jit_compile)
    rng = np.random.default_rng(8)
    model.fit(rng.standard_normal((8, 16, 4)), rng.standard_normal((8, 16, 1)), batch_size=8, epochs=1, verbose=0)
    return [weight.numpy() for weight in model.weights]


def test_keras_jit_compile_training_matches_graph_training():
    for xla_weight, graph_weight in zip(_one_training_step(True), _one_training_step(False)):
        np.testing.assert_allclose(xla_weight, graph_weight, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_hash_argmax_is_numpy_argmax_of_magnitudes_with_the_first_index_on_ties(dtype, monkeypatch):
    """The TensorFlow path (ARG_MAX in TFLite) and the `keras.ops` path of other backends agree with NumPy."""
    from tf_resattn.layers import kernels

    x = np.random.default_rng(4).normal(size=(3, 40, 16)).astype(dtype)
    x[0, 0] = 0.0  # all zero: index 0
    x[0, 1] = -0.0  # negative zeros
    x[0, 2, [3, 9]] = [-5.0, 5.0]  # equal magnitudes, the negative first
    x[1, 0, [1, 2]] = [7.0, -7.0]
    expected = np.argmax(np.abs(x), axis=-1)[..., None]
    np.testing.assert_array_equal(ops.largest_magnitude_index(tf.constant(x)).numpy(), expected)
    monkeypatch.setattr(kernels, "tensorflow_ops", None)
    fallback = kernels.largest_magnitude_index(keras.ops.convert_to_tensor(x))
    assert keras.ops.dtype(fallback) == "int32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fallback), expected)
