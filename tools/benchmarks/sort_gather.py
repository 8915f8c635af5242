"""Timing of LSH attention's sort + gather + un-sort, forward and backward.

Three implementations are compared, each inside one `tf.function`:

- `compiled`: the op library (counting sort; gradient = gather by the inverse);
- `pure`: `tf.argsort` + `tf.gather` with the gather-by-inverse gradient
  (what runs under XLA and in exports);
- `composite`: `tf.argsort` + `tf.gather` with TensorFlow's default gradient
  (a scatter-add), the baseline of the speed-up.
"""

import numpy as np
import tensorflow as tf

from tf_resattn.ops import compiled, pure
from tools.benchmarks.timing import interleaved_medians


def composite_bucket_sort(buckets, num_buckets):
    """Stable sort by (bucket, position) with `tf.argsort`; int32 `[N, L]` -> two int32 `[N, L]`."""
    del num_buckets
    length = tf.shape(buckets)[1]
    permutation = tf.argsort(buckets * length + tf.range(length), axis=-1)
    return permutation, tf.argsort(permutation, axis=-1)


def composite_gather(x, permutation, inverse):
    """`tf.gather` by `permutation`; its gradient is TensorFlow's scatter-add (`inverse` unused)."""
    del inverse
    return tf.gather(x, permutation, batch_dims=1)


IMPLEMENTATIONS = {
    "compiled": (compiled.bucket_sort, compiled.permute_gather),
    "pure": (pure.bucket_sort, pure.permute_gather),
    "composite": (composite_bucket_sort, composite_gather),
}


def sort_gather_unsort_step(bucket_sort, permute_gather, num_buckets):
    """A `tf.function` `(buckets [N, L], x [N, L, D], dy [N, L, D]) -> (restored x, gradient)`.

    Forward: sort, gather into bucket order, gather back (un-sort); backward:
    the gradient of the round trip for the upstream gradient `dy`. Nothing
    else runs, so the time is that of the sort and the four gathers.
    """

    @tf.function
    def step(buckets, x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            permutation, inverse = bucket_sort(buckets, num_buckets)
            restored = permute_gather(permute_gather(x, permutation, inverse), inverse, permutation)
        return restored, tape.gradient(restored, x, output_gradients=dy)

    return step


def time_sort_gather_unsort(rows, length, depth, num_buckets, repeats, names=tuple(IMPLEMENTATIONS)):
    """Median seconds of one forward+backward sort/gather/un-sort per implementation.

    Args:
        rows, length, depth: the problem `[N, L, D]`.
        num_buckets: bucket ids are drawn uniformly from `[0, num_buckets)`.
        repeats: timed calls per implementation.
        names: implementations to time (keys of `IMPLEMENTATIONS`).

    Returns:
        dict name -> median seconds.
    """
    rng = np.random.default_rng(0)
    buckets = tf.constant(rng.integers(0, num_buckets, size=(rows, length)), tf.int32)
    x = tf.constant(rng.standard_normal((rows, length, depth)), tf.float32)
    dy = tf.constant(rng.standard_normal((rows, length, depth)), tf.float32)
    functions = {}
    for name in names:
        step = sort_gather_unsort_step(*IMPLEMENTATIONS[name], num_buckets)
        # Reading one element of each output waits for the step without copying its outputs.
        functions[name] = lambda step=step: [t[0, 0, 0].numpy() for t in step(buckets, x, dy)]
    return interleaved_medians(functions, repeats)
