"""The layers' one way to compiled kernels: `tf_resattn.ops` on TensorFlow, `tf_resattn.jax_ffi` on JAX.

On Keras's TensorFlow backend, `tensorflow_ops` is `tf_resattn.ops`, imported
here once; on any other backend it is None and TensorFlow is never imported.
On Keras's JAX backend, `jax_ops` is `tf_resattn.jax_ffi`: the same kernels
as XLA FFI custom calls inside the compiled step (the sort, the gather, the
hash and the chunk attention; its `compiled_kernels` decides, likewise).
On other backends both are None and the layers run `keras.ops`.
Whether a compiled kernel runs is decided by `tf_resattn.ops.compiled_kernels`
alone (it says no inside `pure_path()`, with `TF_RESATTN_PURE_TF=1`, without
the library, for dtypes or machines a kernel does not cover, and under XLA
where a kernel has no XLA custom call or its shapes are unknown).

- `sort_by_bucket` and `gather_rows`: a stable sort by (bucket, position) and
  a gather of rows by the resulting permutation; every path gives the same
  permutation.
- `fused_kernels_run(dtype, xla_operands=None)`: whether
  `tensorflow_ops.lsh_hash`, `lsh_chunk_attention`, `layer_norm` and
  `group_norm` run here; where not, the layers compute the same with
  `keras.ops`. The layers pass the kernel's operands, so that it also runs
  under XLA (as a custom call).
- `lsh_kernels(dtype, xla_operands=None)`: the module whose `lsh_hash` and
  `lsh_chunk_attention` run here (`tensorflow_ops` or `jax_ops`), or None.
- `largest_magnitude_index(x)`: the hash's argmax of `|x|`, a plain ARG_MAX
  in a TFLite export.
"""

import keras
from keras import ops

tensorflow_ops = None
jax_ops = None
if keras.backend.backend() == "tensorflow":
    from tf_resattn import ops as tensorflow_ops
elif keras.backend.backend() == "jax":
    from tf_resattn import jax_ffi as jax_ops


def fused_kernels_run(dtype, xla_operands=None):
    """Whether the fused compiled kernels of `tensorflow_ops` run here for tensors of `dtype`.

    `xla_operands`: the kernel's operands, for the kernels that also run
    under XLA (see `tf_resattn.ops.compiled_kernels`).
    """
    return (
        tensorflow_ops is not None and tensorflow_ops.compiled_kernels(dtype, fused=True, xla_operands=xla_operands)[0]
    )


def lsh_kernels(dtype, xla_operands=None):
    """The module whose `lsh_hash` and `lsh_chunk_attention` run here for `dtype`, or None (`keras.ops`)."""
    if fused_kernels_run(dtype, xla_operands):
        return tensorflow_ops
    if jax_ops is not None and jax_ops.compiled_kernels(dtype, fused=True, xla_operands=xla_operands)[0]:
        return jax_ops
    return None


def sort_by_bucket(buckets, num_buckets):
    """Stable sort of int32 bucket ids `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    if tensorflow_ops is not None:
        return tensorflow_ops.bucket_sort(buckets, num_buckets)
    if jax_ops is not None and isinstance(num_buckets, int) and jax_ops.compiled_kernels(xla_operands=(buckets,))[0]:
        return jax_ops.bucket_sort(buckets, num_buckets)
    length = ops.shape(buckets)[1]
    keys = buckets * length + ops.arange(length, dtype="int32")
    permutation = ops.cast(ops.argsort(keys, axis=-1), "int32")
    inverse = ops.cast(ops.argsort(permutation, axis=-1), "int32")
    return permutation, inverse


def gather_rows(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]`; gradient gathers by `inverse`."""
    if tensorflow_ops is not None:
        return tensorflow_ops.permute_gather(x, permutation, inverse)
    if jax_ops is not None and jax_ops.compiled_kernels(x.dtype, xla_operands=(x, permutation, inverse))[0]:
        return jax_ops.permute_gather(x, permutation, inverse)
    return ops.take_along_axis(x, permutation[..., None], axis=1)


def largest_magnitude_index(x):
    """The first index of the largest `|x|` along the last axis: `[..., K]` -> int32 `[..., 1]`.

    On TensorFlow a plain `tf.argmax` (`|x|` has no negative zeros for Keras's
    float `argmax` to mend, and its mend is no TFLite builtin).
    """
    if tensorflow_ops is not None:
        return tensorflow_ops.largest_magnitude_index(x)
    return ops.cast(ops.argmax(ops.abs(x), axis=-1, keepdims=True), "int32")
