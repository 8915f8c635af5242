"""The one place where LSH attention sorts tokens and gathers rows.

On the TensorFlow backend both calls go to `tf_resattn.ops` (the compiled op
library when it is available, pure TensorFlow otherwise); on other backends
they use `keras.ops`. Both give the same permutation: a stable sort by
(bucket, position).
"""

import keras
from keras import ops


def sort_by_bucket(buckets, num_buckets):
    """Stable sort of int32 bucket ids `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    if keras.backend.backend() == "tensorflow":
        from tf_resattn import ops as tf_ops

        return tf_ops.bucket_sort(buckets, num_buckets)
    length = ops.shape(buckets)[1]
    keys = buckets * length + ops.arange(length, dtype="int32")
    permutation = ops.cast(ops.argsort(keys, axis=-1), "int32")
    inverse = ops.cast(ops.argsort(permutation, axis=-1), "int32")
    return permutation, inverse


def gather_rows(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]`; gradient gathers by `inverse`."""
    if keras.backend.backend() == "tensorflow":
        from tf_resattn import ops as tf_ops

        return tf_ops.permute_gather(x, permutation, inverse)
    return ops.take_along_axis(x, permutation[..., None], axis=1)
