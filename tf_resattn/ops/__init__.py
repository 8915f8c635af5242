"""Compiled kernels of LSH attention, with their dispatch (TensorFlow only).

These functions serve `tf_resattn.layers.LSHSelfAttention` on the TensorFlow
backend:

- `bucket_sort(buckets, num_buckets) -> (permutation, inverse)`: a stable sort
  of each row of int32 bucket ids `[N, L]` (ties keep their position order),
  returning the sorting permutation and its inverse, both int32 `[N, L]`.
- `permute_gather(x, permutation, inverse) -> y`: `y[n, i] = x[n, permutation[n, i]]`
  for `x` of shape `[N, L, D]`; its gradient is a gather by `inverse`.

- `lsh_hash(qk, rotations, num_buckets, valid_length)`: the angular hash of
  every token in every round, without the `[N, L, num_buckets / 2]` rotated
  tokens in memory.
- `lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size)`: the
  attention of all hash rounds and their combination as one op whose
  gradient recomputes each chunk's logits.
- `layer_norm(x, gamma, beta, epsilon)`: layer normalisation over the last
  axis in one pass each way.
- `group_norm(x, gamma, beta, groups, epsilon)`: group normalisation of a
  channels-last map in two passes each way.

These four are compiled only (CPU, float32): `cpu_kernels_available(dtype)`
says whether they run; where not, the layers compute the same with `keras.ops`.

The first two run either the compiled op library from `custom_ops/` or an equivalent
pure-TensorFlow path (`tf_resattn.ops.pure`); they give identical permutations.
`custom_ops_available() -> (bool, reason)` says which one is used and why.
The pure path is chosen under XLA (`jit_compile=True`), inside
`with pure_path():` (use it when tracing for SavedModel/TFLite export), when
`TF_RESATTN_PURE_TF=1`, and when the library cannot load (one warning names
the reason). `python -m tf_resattn.ops.check` exits non-zero unless the
compiled library loads and agrees with the pure path.
"""

from tf_resattn.ops.dispatch import (
    bucket_sort,
    cpu_kernels_available,
    custom_ops_available,
    group_norm,
    layer_norm,
    lsh_chunk_attention,
    lsh_hash,
    permute_gather,
    pure_path,
)

__all__ = [
    "bucket_sort",
    "cpu_kernels_available",
    "custom_ops_available",
    "group_norm",
    "layer_norm",
    "lsh_chunk_attention",
    "lsh_hash",
    "permute_gather",
    "pure_path",
]
