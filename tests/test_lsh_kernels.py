"""The compiled LSH hash and chunk-attention ops: against NumPy, the keras.ops path, and bad input."""

import contextlib

import numpy as np
import pytest
import tensorflow as tf

from tf_resattn import ops
from tf_resattn.layers.lsh_attention import hash_buckets, heads_to_rows, lsh_attention, rows_to_heads
from tf_resattn.ops import compiled

pytestmark = pytest.mark.skipif(
    not ops.compiled_kernels(tf.float32, fused=True)[0],
    reason=f"the compiled LSH kernels do not run here: {ops.compiled_kernels(tf.float32, fused=True)[1]}",
)


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize(
    "rows, length, depth, rounds, num_buckets, valid_length",
    [
        (2, 300, 16, 3, 64, 300),  # 32 rotation columns: two 16-wide tiles
        (1, 1000, 64, 2, 512, 950),  # the benchmark's depth, padded tail
        (3, 77, 4, 1, 6, 60),  # 3 columns: the untiled remainder path
        (1, 64, 33, 4, 2, 64),  # odd depth, two buckets
    ],
)
def test_hash_matches_numpy_up_to_near_ties(rows, length, depth, rounds, num_buckets, valid_length):
    qk, rotations = _random((rows, length, depth), 0), _random((depth, rounds, num_buckets), 1)
    got = compiled.lsh_hash(qk, rotations, num_buckets, valid_length).numpy()
    half = num_buckets // 2
    rotated = np.einsum("nld,drk->nrlk", qk.astype(np.float64), rotations[:, :, :half].astype(np.float64))
    want = np.argmax(np.concatenate([rotated, -rotated], axis=-1), axis=-1)
    want[:, :, valid_length:] = num_buckets
    assert got.shape == (rows, rounds, length) and got.dtype == np.int32
    # float32 products in another order may swap two entries of (almost) equal magnitude.
    picked = np.abs(np.take_along_axis(rotated, (got % half)[..., None], axis=-1))[..., 0]
    best = np.abs(rotated).max(axis=-1)
    differs = got != want
    assert differs[:, :, valid_length:].sum() == 0
    assert differs.mean() < 1e-3
    np.testing.assert_allclose(picked[differs], best[differs], rtol=1e-5)


def test_hash_equals_keras_ops_path():
    qk, rotations = _random((2, 500, 32), 2), _random((32, 4, 128), 3)
    got = hash_buckets(qk, rotations, 200, 470).numpy()
    with ops.pure_path():
        want = hash_buckets(qk, rotations, 200, 470).numpy()
    assert (got != want).mean() < 1e-3


@pytest.mark.parametrize(
    "rows, length, depth, rounds, bucket_size, valid_length",
    [
        (2, 160, 16, 3, 32, 160),  # 5 chunks
        (1, 112, 8, 4, 16, 100),  # 7 chunks, padded tail
        (3, 64, 4, 1, 64, 64),  # one chunk: its look-back is masked
        (2, 32, 48, 2, 16, 30),  # two chunks, depth not a multiple of 16
    ],
)
def test_chunk_attention_matches_keras_ops_path(rows, length, depth, rounds, bucket_size, valid_length):
    """The op and the keras.ops composite on the same permutations: outputs and gradients."""
    qk, v = tf.constant(_random((rows, length, depth), 4)), tf.constant(_random((rows, length, depth), 5))
    rotations = tf.constant(_random((depth, rounds, 8), 6))
    upstream = tf.constant(_random((rows, length, depth), 7))
    results = []
    for scope in (contextlib.nullcontext(), ops.pure_path()):
        with scope, tf.GradientTape() as tape:
            tape.watch([qk, v])
            out = lsh_attention(qk, v, rotations, bucket_size, valid_length, max_buckets=16)
            loss = tf.reduce_sum(out * upstream)
        results.append([out.numpy(), *(g.numpy() for g in tape.gradient(loss, [qk, v]))])
    compiled_results, reference = results
    np.testing.assert_allclose(compiled_results[0], reference[0], atol=1e-6)
    for ours, want in zip(compiled_results[1:], reference[1:]):
        np.testing.assert_allclose(ours, want, atol=1e-5)


def test_heads_side_by_side_give_what_heads_as_rows_give():
    """`[B, L, H, D]` read in place by the kernels against `[B*H, L, D]` rows on the keras.ops path."""
    qk, v = tf.constant(_random((2, 96, 3, 8), 8)), tf.constant(_random((2, 96, 3, 8), 9))
    rotations = tf.constant(_random((8, 2, 8), 10))
    upstream = tf.constant(_random((2, 96, 3, 8), 11))
    np.testing.assert_array_equal(
        compiled.lsh_hash(qk, rotations, 12, 90).numpy(),
        compiled.lsh_hash(heads_to_rows(qk), rotations, 12, 90).numpy(),
    )
    results = []
    for scope, layout in ((contextlib.nullcontext(), lambda x: x), (ops.pure_path(), heads_to_rows)):
        with scope, tf.GradientTape() as tape:
            tape.watch([qk, v])
            out = lsh_attention(layout(qk), layout(v), rotations, 16, 90, max_buckets=16)
            out = out if len(out.shape) == 4 else rows_to_heads(out, 3)
            loss = tf.reduce_sum(out * upstream)
        results.append([out.numpy(), *(g.numpy() for g in tape.gradient(loss, [qk, v]))])
    for ours, want in zip(*results):
        np.testing.assert_allclose(ours, want, atol=1e-5)


def _permutations(rows, rounds, length, seed):
    rng = np.random.default_rng(seed)
    return np.stack([np.stack([rng.permutation(length) for _ in range(rounds)]) for _ in range(rows)]).astype(np.int32)


@pytest.mark.parametrize(
    "qk_shape, permutation, valid_length, bucket_size, message",
    [
        ((1, 64, 8), _permutations(1, 2, 64, 0), 64, 48, "multiple of bucket_size"),
        ((1, 64, 8), np.full((1, 2, 64), 64, np.int32), 64, 16, "outside \\[0, L\\)"),
        ((1, 64, 8), _permutations(2, 2, 64, 1), 64, 16, "permutation"),
        ((1, 64, 8), _permutations(1, 2, 64, 2), [64], 16, "valid_length"),
        ((2, 64, 3, 8), _permutations(2, 2, 64, 3), 64, 16, "N = 6 rows"),  # heads side by side: B*H rows
        ((64, 8), _permutations(1, 2, 64, 4), 64, 16, "\\[B, L, H, D\\]"),
    ],
)
def test_chunk_attention_rejects_bad_input(qk_shape, permutation, valid_length, bucket_size, message):
    qk = tf.zeros(qk_shape)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
        compiled.lsh_chunk_attention(qk, qk, tf.constant(permutation), tf.constant(valid_length, tf.int32), bucket_size)


@pytest.mark.parametrize("num_buckets, message", [(7, "must be even"), (66, "at most twice"), (0, ">= 2")])
def test_hash_rejects_impossible_bucket_counts(num_buckets, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        compiled.lsh_hash(tf.zeros((1, 10, 4)), tf.zeros((4, 2, 32)), num_buckets, 10)
