"""Python wrappers of the compiled ops and the gradient of the gather.

Call these only once `loader.load_library()` has returned a module;
`tf_resattn.ops.dispatch` does that check.
"""

import tensorflow as tf

from tf_resattn.ops import loader


def _library():
    module, reason = loader.load_library()
    if module is None:
        raise RuntimeError(f"the compiled op library is not available: {reason}")
    return module


def bucket_sort(buckets, num_buckets):
    """`TfResattn>BucketSort`: int32 `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    permutation, inverse = _library().tf_resattn_bucket_sort(buckets, num_buckets)
    return permutation, inverse


def permute_gather(x, permutation, inverse):
    """`TfResattn>PermuteGather`: `x [N, L, D]` gathered by `permutation [N, L]` along L."""
    return _library().tf_resattn_permute_gather(x, permutation, inverse)


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """`TfResattn>LshHash`: int32 `[N, R, L]` bucket ids of `qk [N, L, D]` (or `[B, L, H, D]`) under `rotations [D, R, K]`."""
    return _library().tf_resattn_lsh_hash(qk, rotations, num_buckets, valid_length)


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """`TfResattn>LshChunkAttention`: fused chunk attention of all rounds, shaped as `qk`."""
    out, _ = _library().tf_resattn_lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size=bucket_size)
    return out


@tf.RegisterGradient("TfResattn>LshChunkAttention")
def _lsh_chunk_attention_gradient(op, d_out, unused_d_lse):
    """Recomputes each chunk's attention from the saved output and log-sum-exps (only `out` is differentiable)."""
    d_qk, d_v = _library().tf_resattn_lsh_chunk_attention_grad(
        *op.inputs, *op.outputs, d_out, bucket_size=op.get_attr("bucket_size")
    )
    return d_qk, d_v, None, None


def layer_norm(x, gamma, beta, epsilon):
    """`TfResattn>LayerNorm`: `x [..., C]` normalised over its last axis, then scaled and shifted."""
    y, _, _ = _library().tf_resattn_layer_norm(x, gamma, beta, epsilon=epsilon)
    return y


@tf.RegisterGradient("TfResattn>LayerNorm")
def _layer_norm_gradient(op, dy, unused_d_mean, unused_d_rstd):
    """Gradients of `x`, `gamma` and `beta` from the saved row means and inverse deviations."""
    x, gamma, _ = op.inputs
    _, mean, rstd = op.outputs
    return _library().tf_resattn_layer_norm_grad(x, gamma, mean, rstd, dy)


def group_norm(x, gamma, beta, groups, epsilon):
    """`TfResattn>GroupNorm`: `x [B, ..., C]` normalised per batch entry and group of channels, then scaled and shifted."""
    y, _, _ = _library().tf_resattn_group_norm(x, gamma, beta, groups=groups, epsilon=epsilon)
    return y


@tf.RegisterGradient("TfResattn>GroupNorm")
def _group_norm_gradient(op, dy, unused_d_mean, unused_d_rstd):
    """Gradients of `x`, `gamma` and `beta` from the saved group means and inverse deviations."""
    x, gamma, _ = op.inputs
    _, mean, rstd = op.outputs
    return _library().tf_resattn_group_norm_grad(x, gamma, mean, rstd, dy, groups=op.get_attr("groups"))


@tf.RegisterGradient("TfResattn>PermuteGather")
def _permute_gather_gradient(op, dy):
    """A gather by a permutation has, as gradient, the gather by its inverse (no scatter-add)."""
    permutation, inverse = op.inputs[1], op.inputs[2]
    return permute_gather(dy, inverse, permutation), None, None


tf.no_gradient("TfResattn>BucketSort")
tf.no_gradient("TfResattn>LshHash")
