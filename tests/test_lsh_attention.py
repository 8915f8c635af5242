"""LSHSelfAttention against independent references (NumPy LSH, NumPy full attention, finite differences), and the shared layer checks.

The tests marked with the `attention_path` fixture run twice on TensorFlow:
through the compiled hash and chunk-attention kernels (CPU, float32) and
through the `keras.ops` code they replace.
"""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_harness import run_layer_test

from tf_resattn import ops as tf_ops
from tf_resattn.layers import LSHSelfAttention
from tf_resattn.layers.lsh_attention import full_attention, lsh_attention


@pytest.fixture(params=["compiled kernels", "keras.ops"])
def attention_path(request):
    if request.param == "keras.ops":
        scope = tf_ops.pure_path()
    elif not tf_ops.compiled_kernels(tf.float32, fused=True)[0]:
        pytest.skip("the compiled LSH kernels do not run here (no library, or a GPU machine)")
    else:
        scope = contextlib.nullcontext()
    with scope:
        yield request.param


SELF_MASK, PADDING_MASK = -1e5, -1e9


def _normalize(x):
    return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + 1e-6)


def numpy_full_attention(qk, v):
    """Shared-QK attention over every key, self masked; `[N, L, D]` float64."""
    depth = qk.shape[-1]
    dots = np.einsum("nid,njd->nij", qk, _normalize(qk)) / np.sqrt(depth)
    eye = np.eye(qk.shape[1], dtype=bool)
    dots = np.where(eye, SELF_MASK, dots)
    weights = np.exp(dots - dots.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v


def numpy_lsh_attention(qk, v, rotations, bucket_size, valid_length, max_buckets):
    """Token-by-token LSH attention written from the Reformer paper, no shared code with the layer."""
    rows, length, depth = qk.shape
    n_hashes = rotations.shape[1]
    n_chunks = length // bucket_size
    n_buckets = min(max(2, n_chunks + n_chunks % 2), max_buckets)
    keys_all = _normalize(qk)
    outputs = np.zeros((rows, n_hashes, length, depth))
    lses = np.zeros((rows, n_hashes, length))
    for n in range(rows):
        for r in range(n_hashes):
            rotated = qk[n] @ rotations[:, r, : n_buckets // 2]
            buckets = np.argmax(np.concatenate([rotated, -rotated], axis=-1), axis=-1)
            buckets[valid_length:] = n_buckets
            order = np.argsort(buckets, kind="stable")
            for c in range(n_chunks):
                queries = order[c * bucket_size : (c + 1) * bucket_size]
                start = c * bucket_size if c == 0 else (c - 1) * bucket_size
                keys = order[start : (c + 1) * bucket_size]
                logits = qk[n, queries] @ keys_all[n, keys].T / np.sqrt(depth)
                logits[queries[:, None] == keys[None, :]] = SELF_MASK
                logits[:, keys >= valid_length] = PADDING_MASK
                top = logits.max(axis=-1, keepdims=True)
                lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=-1))
                outputs[n, r, queries] = np.exp(logits - lse[:, None]) @ v[n, keys]
                lses[n, r, queries] = lse
    round_weights = np.exp(lses - lses.max(axis=1, keepdims=True))
    round_weights /= round_weights.sum(axis=1, keepdims=True)
    return np.sum(outputs * round_weights[..., None], axis=1)


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_one_chunk_equals_full_attention():
    qk, v = _random((3, 64, 16), 0), _random((3, 64, 16), 1)
    rotations = _random((16, 4, 8), 2)
    lsh = np.asarray(lsh_attention(qk, v, rotations, bucket_size=64, valid_length=64, max_buckets=16))
    reference = numpy_full_attention(qk.astype(np.float64), v.astype(np.float64))
    assert np.abs(lsh - reference).max() <= 1e-5


@pytest.mark.parametrize(
    "length, bucket_size, valid_length, n_hashes, max_buckets",
    [
        (256, 32, 256, 3, 64),  # 8 chunks, 8 buckets
        (224, 32, 200, 2, 64),  # 7 chunks -> 8 buckets, padded tail
        (256, 16, 256, 2, 4),  # bucket count capped below the chunk count
    ],
)
def test_multi_chunk_matches_numpy_reference(length, bucket_size, valid_length, n_hashes, max_buckets, attention_path):
    qk, v = _random((2, length, 8), 3), _random((2, length, 8), 4)
    rotations = _random((8, n_hashes, max_buckets // 2), 5)
    got = np.asarray(lsh_attention(qk, v, rotations, bucket_size, valid_length, max_buckets))
    want = numpy_lsh_attention(
        qk.astype(np.float64), v.astype(np.float64), rotations, bucket_size, valid_length, max_buckets
    )
    assert np.abs(got[:, :valid_length] - want[:, :valid_length]).max() <= 1e-5


def test_padding_does_not_change_real_tokens(attention_path):
    length, valid = 256, 201
    qk, v = _random((2, length, 8), 6), _random((2, length, 8), 7)
    rotations = _random((8, 2, 32), 8)
    garbage_qk, garbage_v = qk.copy(), v.copy()
    qk[:, valid:] = 0
    v[:, valid:] = 0
    clean = np.asarray(lsh_attention(qk, v, rotations, 32, valid, 64))[:, :valid]
    noisy = np.asarray(lsh_attention(garbage_qk, garbage_v, rotations, 32, valid, 64))[:, :valid]
    np.testing.assert_array_equal(clean, noisy)


def _layer_reference(layer, x):
    """The layer's forward pass recomputed in NumPy from its weights."""
    qk = x @ keras.ops.convert_to_numpy(layer.qk_dense.kernel)
    v = x @ keras.ops.convert_to_numpy(layer.value_dense.kernel)
    batch, length, _ = x.shape

    def split(t):
        return (
            t.reshape(batch, length, layer.num_heads, layer.key_dim)
            .transpose(0, 2, 1, 3)
            .reshape(-1, length, layer.key_dim)
        )

    qk, v = split(qk), split(v)
    if length <= 2 * layer.bucket_size:
        attended = numpy_full_attention(qk, v)
    else:
        padded = -(-length // layer.bucket_size) * layer.bucket_size
        pad = ((0, 0), (0, padded - length), (0, 0))
        rotations = keras.ops.convert_to_numpy(layer.rotations).astype(np.float64)
        attended = numpy_lsh_attention(
            np.pad(qk, pad), np.pad(v, pad), rotations, layer.bucket_size, length, layer.max_buckets
        )[:, :length]
    merged = (
        attended.reshape(batch, layer.num_heads, length, layer.key_dim).transpose(0, 2, 1, 3).reshape(batch, length, -1)
    )
    return merged @ keras.ops.convert_to_numpy(layer.output_dense.kernel) + keras.ops.convert_to_numpy(
        layer.output_dense.bias
    )


@pytest.mark.parametrize("length", [1, 7, 64, 130, 333])
def test_layer_matches_numpy(length, attention_path):
    layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=32, n_hashes=2, seed=1)
    x = _random((2, length, 12), 9).astype(np.float64)
    got = keras.ops.convert_to_numpy(layer(x.astype(np.float32)))
    np.testing.assert_allclose(got, _layer_reference(layer, x), atol=1e-5)


def test_gradients_match_finite_differences():
    qk = tf.constant(_random((1, 32, 4), 10), dtype=tf.float64)
    v = tf.constant(_random((1, 32, 4), 11), dtype=tf.float64)
    rotations = tf.constant(_random((4, 2, 4), 12), dtype=tf.float64)

    @tf.function  # one graph for the 2 x 256 perturbed calls instead of 512 eager ones
    def attend(qk, v):  # 4 chunks, a padded tail
        return lsh_attention(qk, v, rotations, bucket_size=8, valid_length=29, max_buckets=8)

    theoretical, numerical = tf.test.compute_gradient(attend, [qk, v], delta=1e-6)
    for got, want in zip(theoretical, numerical):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_float32_gradients_match_float64_reference(attention_path):
    """float32 gradients (compiled or keras.ops) against the float64 keras.ops path checked above."""
    rng = np.random.default_rng(20)
    qk64, v64 = rng.normal(size=(2, 96, 8)), rng.normal(size=(2, 96, 8))
    rotations = rng.normal(size=(8, 3, 4))
    weights = rng.normal(size=(2, 96, 8))

    def gradients(dtype, scope):
        qk, v = tf.constant(qk64, dtype), tf.constant(v64, dtype)
        with scope, tf.GradientTape() as tape:
            tape.watch([qk, v])
            out = lsh_attention(qk, v, tf.constant(rotations, dtype), bucket_size=16, valid_length=90, max_buckets=8)
            loss = tf.reduce_sum(out * tf.constant(weights, dtype))
        return [g.numpy() for g in tape.gradient(loss, [qk, v])]

    got = gradients(tf.float32, contextlib.nullcontext())
    want = gradients(tf.float64, tf_ops.pure_path())
    for ours, reference in zip(got, want):
        np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_layer_gradients_are_finite_and_nonzero():
    layer = LSHSelfAttention(num_heads=1, key_dim=8, bucket_size=16, seed=0)
    x = tf.constant(_random((2, 100, 6), 13))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    for grad in grads:
        assert np.isfinite(grad.numpy()).all()
        assert np.abs(grad.numpy()).max() > 0


@pytest.mark.parametrize("length", [1, 100, 300])
def test_float16_outputs_are_finite(length):
    layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=32, seed=0, dtype="mixed_float16")
    out = layer(_random((2, length, 16), 14))
    assert out.dtype == "float16"
    assert np.isfinite(keras.ops.convert_to_numpy(out)).all()
    reference = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=32, seed=0)
    reference.build((2, length, 16))
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out).astype(np.float32),
        keras.ops.convert_to_numpy(reference(_random((2, length, 16), 14))),
        atol=0.05,
    )


def test_single_token_attends_to_itself():
    qk, v = _random((1, 1, 4), 15), _random((1, 1, 4), 16)
    np.testing.assert_allclose(np.asarray(full_attention(qk, v)), v, atol=1e-6)


def test_rotations_are_seeded():
    x = _random((1, 300, 8), 17)
    first = LSHSelfAttention(num_heads=1, key_dim=8, bucket_size=32, seed=3)
    second = LSHSelfAttention(num_heads=1, key_dim=8, bucket_size=32, seed=3)
    first(x), second(x)
    np.testing.assert_array_equal(first.rotations.numpy(), second.rotations.numpy())


@pytest.mark.parametrize("length", [12, 40])  # full attention (at most two buckets), LSH attention
def test_layer_contract(length):
    init_kwargs = {"num_heads": 2, "key_dim": 4, "bucket_size": 8, "n_hashes": 2, "max_buckets": 8, "seed": 1}
    run_layer_test(
        LSHSelfAttention,
        init_kwargs,
        _random((2, length, 6), 21),
        (2, length, 6),
        expected_num_trainable_weights=4,  # qk, value, output kernel and bias
        expected_num_non_trainable_weights=1,  # the rotations
    )


def test_unknown_length_in_graph_mode_matches_eager():
    layer = LSHSelfAttention(num_heads=2, key_dim=8, bucket_size=16, seed=0)
    x = _random((1, 90, 8), 18)
    eager = layer(x).numpy()
    graph = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 8))])
    np.testing.assert_allclose(graph(x).numpy(), eager, atol=1e-6)
    short = _random((1, 20, 8), 19)
    np.testing.assert_allclose(graph(short).numpy(), layer(short).numpy(), atol=1e-6)
