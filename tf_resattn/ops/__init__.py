"""Bucket sort and permutation gather for LSH attention (TensorFlow only).

Two functions serve `tf_resattn.layers.LSHSelfAttention` on the TensorFlow
backend:

- `bucket_sort(buckets, num_buckets) -> (permutation, inverse)`: a stable sort
  of each row of int32 bucket ids `[N, L]` (ties keep their position order),
  returning the sorting permutation and its inverse, both int32 `[N, L]`.
- `permute_gather(x, permutation, inverse) -> y`: `y[n, i] = x[n, permutation[n, i]]`
  for `x` of shape `[N, L, D]`; its gradient is a gather by `inverse`.

Both run either the compiled op library from `custom_ops/` or an equivalent
pure-TensorFlow path (`tf_resattn.ops.pure`); they give identical permutations.
`custom_ops_available() -> (bool, reason)` says which one is used and why.
The pure path is chosen under XLA (`jit_compile=True`), inside
`with pure_path():` (use it when tracing for SavedModel/TFLite export), when
`TF_RESATTN_PURE_TF=1`, and when the library cannot load (one warning names
the reason). `python -m tf_resattn.ops.check` exits non-zero unless the
compiled library loads and agrees with the pure path.
"""

from tf_resattn.ops.dispatch import bucket_sort, custom_ops_available, permute_gather, pure_path

__all__ = ["bucket_sort", "custom_ops_available", "permute_gather", "pure_path"]
