"""Checks that the compiled op library is built, loads, and agrees with the pure path.

    python -m tf_resattn.ops.check

Prints one line and exits 0 when the compiled ops are usable; otherwise prints
the reason to stderr and exits 1 (so a broken build cannot hide behind the
pure-TensorFlow fallback). `TF_RESATTN_PURE_TF` is ignored here.
"""

import sys

import numpy as np
import tensorflow as tf

from tf_resattn.ops import compiled, loader, pure


def _sort_gather_unsort(sort, gather, buckets, num_buckets, x):
    """Sorted and un-sorted copies of `x` and the gradient of their weighted sum."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        permutation, inverse = sort(buckets, num_buckets)
        sorted_x = gather(x, permutation, inverse)
        restored = gather(sorted_x * 2.0, inverse, permutation)
        loss = tf.reduce_sum(restored * x)
    return permutation, inverse, sorted_x, restored, tape.gradient(loss, x)


def compare_with_pure_path():
    """Runs a small sort/gather/un-sort with both paths; returns a list of mismatches."""
    rng = np.random.default_rng(0)
    num_buckets = 7
    buckets = tf.constant(rng.integers(0, num_buckets, size=(3, 101)), tf.int32)
    x = tf.constant(rng.standard_normal((3, 101, 5)), tf.float32)
    ours = _sort_gather_unsort(compiled.bucket_sort, compiled.permute_gather, buckets, num_buckets, x)
    reference = _sort_gather_unsort(pure.bucket_sort, pure.permute_gather, buckets, num_buckets, x)
    names = ("permutation", "inverse", "sorted x", "un-sorted x", "gradient")
    return [name for name, a, b in zip(names, ours, reference) if not np.allclose(a.numpy(), b.numpy())]


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
