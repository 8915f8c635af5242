"""Checks that the compiled op library is built, loads, and agrees with the pure path.

    python -m tf_resattn.kernel_check

Importing the package starts TensorFlow, so its start-up notices come first; for
the quiet start of the command lines (CI's way, `.ci/run`):

    python -c 'import tf_resattn_process; tf_resattn_process.configure_process(); from tf_resattn.kernel_check import main; raise SystemExit(main())'

Compares the sort and gather, and (where they run) the LSH hash, chunk
attention and layer and group normalisations, with the pure path. Prints one
line and exits 0 when the compiled ops are usable; otherwise prints the reason
to stderr and exits 1 (so a broken build cannot hide behind the pure-TensorFlow
fallback). `TF_RESATTN_PURE_TF` is ignored here. It runs the layers on both
paths, so it sits above `tf_resattn.layers` and `tf_resattn.ops` and imports
both.
"""

import sys

import numpy as np
import tensorflow as tf

from tf_resattn.layers import GroupNormalization, LayerNormalization
from tf_resattn.layers.lsh_attention import lsh_attention
from tf_resattn.ops import compiled, dispatch, loader, pure


def _sort_gather_unsort(sort, gather, buckets, num_buckets, x):
    """Sorted and un-sorted copies of `x` and the gradient of their weighted sum."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        permutation, inverse = sort(buckets, num_buckets)
        sorted_x = gather(x, permutation, inverse)
        restored = gather(sorted_x * 2.0, inverse, permutation)
        loss = tf.reduce_sum(restored * x)
    return permutation, inverse, sorted_x, restored, tape.gradient(loss, x)


def _lsh_attention_and_gradients(qk, v, rotations):
    """LSH attention of `qk, v [2, 160, 8]` (5 chunks, a padded tail) and its gradients."""
    with tf.GradientTape() as tape:
        tape.watch([qk, v])
        out = lsh_attention(qk, v, rotations, bucket_size=32, valid_length=150, max_buckets=8)
        loss = tf.reduce_sum(out * tf.sin(out))
    return [out, *tape.gradient(loss, [qk, v])]


def _normalization_and_gradients(layer, x):
    """`layer(x)` (a fused normalisation, gamma and beta all ones) and its gradients (x, gamma, beta)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.sin(y))
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


def _layer_norm_and_gradients(x):
    """The decoder's `LayerNormalization` of `x [2, 50, 12]` and its gradients."""
    layer = LayerNormalization(beta_initializer="ones", gamma_initializer="ones")
    return _normalization_and_gradients(layer, x)


def _group_norm_and_gradients(x):
    """The blocks' `GroupNormalization` (4 groups) of `x [2, 9, 9, 12]` and its gradients."""
    layer = GroupNormalization(groups=4, beta_initializer="ones", gamma_initializer="ones")
    return _normalization_and_gradients(layer, x)


def _mismatches(names, ours, reference, **tolerance):
    """The names of the results that differ between the two paths."""
    return [name for name, a, b in zip(names, ours, reference) if not np.allclose(a, b, **tolerance)]


def _compiled_and_pure(function, *args):
    """`function(*args)` with the compiled kernels, then inside `pure_path()`."""
    ours = function(*args)
    with dispatch.pure_path():
        return ours, function(*args)


def compare_with_pure_path():
    """Runs a small sort/gather/un-sort, LSH attention, layer and group norm on both paths; returns a list of mismatches."""
    rng = np.random.default_rng(0)
    num_buckets = 7
    buckets = tf.constant(rng.integers(0, num_buckets, size=(3, 101)), tf.int32)
    x = tf.constant(rng.standard_normal((3, 101, 5)), tf.float32)
    ours = _sort_gather_unsort(compiled.bucket_sort, compiled.permute_gather, buckets, num_buckets, x)
    reference = _sort_gather_unsort(pure.bucket_sort, pure.permute_gather, buckets, num_buckets, x)
    mismatches = _mismatches(("permutation", "inverse", "sorted x", "un-sorted x", "gradient"), ours, reference)
    qk, v = (tf.constant(rng.standard_normal((2, 160, 8)), tf.float32) for _ in range(2))
    rotations = tf.constant(rng.standard_normal((8, 2, 4)), tf.float32)
    names = ("LSH attention", "its qk gradient", "its v gradient")
    mismatches += _mismatches(names, *_compiled_and_pure(_lsh_attention_and_gradients, qk, v, rotations), atol=1e-5)
    x = tf.constant(rng.standard_normal((2, 50, 12)) * 3.0 + 1.0, tf.float32)
    names = ("layer norm", "its x gradient", "its gamma gradient", "its beta gradient")
    mismatches += _mismatches(names, *_compiled_and_pure(_layer_norm_and_gradients, x), atol=1e-4)
    x = tf.constant(rng.standard_normal((2, 9, 9, 12)) * 3.0 + 1.0, tf.float32)
    names = ("group norm", "its x gradient", "its gamma gradient", "its beta gradient")
    mismatches += _mismatches(names, *_compiled_and_pure(_group_norm_and_gradients, x), atol=1e-4)
    return mismatches


def main():
    module, reason = loader.load_library()
    if module is None:
        print(f"error: compiled op library unusable: {reason}", file=sys.stderr)
        return 1
    mismatches = compare_with_pure_path()
    if mismatches:
        print(f"error: compiled ops disagree with the pure path on: {', '.join(mismatches)}", file=sys.stderr)
        return 1
    print(f"compiled op library OK: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
