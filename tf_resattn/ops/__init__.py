"""Compiled kernels of LSH attention, with their dispatch (TensorFlow only).

These functions serve the layers of `tf_resattn.layers` on the TensorFlow
backend (through `tf_resattn.layers.kernels`):

- `bucket_sort(buckets, num_buckets) -> (permutation, inverse)`: a stable sort
  of each row of int32 bucket ids `[N, L]` (ties keep their position order),
  returning the sorting permutation and its inverse, both int32 `[N, L]`.
- `permute_gather(x, permutation, inverse) -> y`: `y[n, i] = x[n, permutation[n, i]]`
  for `x` of shape `[N, L, D]`; its gradient is a gather by `inverse`.
- `largest_magnitude_index(x) -> index`: int32 `[..., 1]`, the first index of
  the largest `|x|` along the last axis (the pure hash's argmax).

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

`compiled_kernels(dtype=None, fused=False, xla_operands=None) -> (use, reason)`
is the one decision between the compiled op library (`custom_ops/`) and the
pure path. The first two ops ask it themselves and otherwise run pure
TensorFlow (`tf_resattn.ops.pure`, identical permutations). The last four are
compiled only (CPU, float32): call them where `compiled_kernels(dtype,
fused=True, xla_operands=...)` says yes; elsewhere the layers compute the same
with `keras.ops`. While XLA compiles (`jit_compile=True`) they run as XLA
custom calls (`tf_resattn.ops.xla_calls`) where the library registered them
(all six on the CPU, the sort and gather on CUDA) and their shapes are known
when traced.
The pure path is chosen inside `with pure_path():` (use it when tracing for
SavedModel/TFLite export), when `TF_RESATTN_PURE_TF=1`, when the library
cannot load (one warning names the reason), and under XLA where the custom
calls cannot run. `python -m tf_resattn.kernel_check` exits non-zero unless
the compiled library loads and agrees with the pure path.
"""

from tf_resattn.ops.dispatch import (
    bucket_sort,
    compiled_kernels,
    group_norm,
    layer_norm,
    lsh_chunk_attention,
    lsh_hash,
    permute_gather,
    pure_path,
)
from tf_resattn.ops.pure import largest_magnitude_index

__all__ = [
    "bucket_sort",
    "compiled_kernels",
    "group_norm",
    "largest_magnitude_index",
    "layer_norm",
    "lsh_chunk_attention",
    "lsh_hash",
    "permute_gather",
    "pure_path",
]
