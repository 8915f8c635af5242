"""The one place where LSH attention calls backend-specific kernels.

On the TensorFlow backend these go to `tf_resattn.ops` (the compiled op
library when it is available, pure TensorFlow otherwise); on other backends
they use `keras.ops`.

- `sort_by_bucket` and `gather_rows`: a stable sort by (bucket, position) and
  a gather of rows by the resulting permutation; every path gives the same
  permutation.
- `compiled_hash` and `compiled_chunk_attention`: the hashing, and the
  attention of all hash rounds with their combination, as compiled ops
  (TensorFlow on CPU, float32). Where `compiled_kernels_available` says no,
  `lsh_attention` computes the same with `keras.ops`, the sort and the gather.
- `compiled_layer_norm` and `compiled_group_norm`: layer normalisation over
  the last axis and group normalisation of channels-last maps, compiled
  likewise; elsewhere `LayerNormalization` and `GroupNormalization` are
  Keras's own.
"""

import keras
from keras import ops


def _on_tensorflow():
    return keras.backend.backend() == "tensorflow"


def sort_by_bucket(buckets, num_buckets):
    """Stable sort of int32 bucket ids `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    if _on_tensorflow():
        from tf_resattn import ops as tf_ops

        return tf_ops.bucket_sort(buckets, num_buckets)
    length = ops.shape(buckets)[1]
    keys = buckets * length + ops.arange(length, dtype="int32")
    permutation = ops.cast(ops.argsort(keys, axis=-1), "int32")
    inverse = ops.cast(ops.argsort(permutation, axis=-1), "int32")
    return permutation, inverse


def gather_rows(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]`; gradient gathers by `inverse`."""
    if _on_tensorflow():
        from tf_resattn import ops as tf_ops

        return tf_ops.permute_gather(x, permutation, inverse)
    return ops.take_along_axis(x, permutation[..., None], axis=1)


def compiled_kernels_available(dtype):
    """Whether the `compiled_*` functions below run here for tensors of `dtype`."""
    if not _on_tensorflow():
        return False
    from tf_resattn import ops as tf_ops

    return tf_ops.cpu_kernels_available(dtype)


def compiled_hash(qk, rotations, num_buckets, valid_length):
    """`hash_buckets` of `tf_resattn.layers.lsh_attention` as one op: int32 `[N, R, L]` (`qk [N, L, D]` or `[B, L, H, D]`)."""
    from tf_resattn import ops as tf_ops

    return tf_ops.lsh_hash(qk, rotations, num_buckets, valid_length)


def compiled_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """All rounds' chunk attention, combined, in original token order.

    Args:
        qk, v: `[N, L, D]` float32, or `[B, L, H, D]` for `N = B*H` heads side
            by side; `L` a multiple of `bucket_size`.
        permutation: int32 `[N, R, L]`, each round's sorting permutation.
        valid_length: keys at positions `>= valid_length` are masked.
        bucket_size: chunk length.

    Returns:
        Shaped as `qk`, as the composite path of `lsh_attention` computes it.
    """
    from tf_resattn import ops as tf_ops

    return tf_ops.lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size)


def compiled_layer_norm(x, gamma, beta, epsilon):
    """`keras.layers.LayerNormalization(axis=-1)`'s computation as one op: `x [..., C]` -> same shape."""
    from tf_resattn import ops as tf_ops

    return tf_ops.layer_norm(x, gamma, beta, epsilon)


def compiled_group_norm(x, gamma, beta, groups, epsilon):
    """`keras.layers.GroupNormalization(groups, axis=-1)`'s computation as one op: `x [B, ..., C]` -> same shape."""
    from tf_resattn import ops as tf_ops

    return tf_ops.group_norm(x, gamma, beta, groups, epsilon)
