"""Python wrappers of the compiled ops, with their gradients.

Call these only where `tf_resattn.ops.compiled_kernels` says yes (that is, the
library loaded): `tf_resattn.ops.dispatch` picks between `bucket_sort` /
`permute_gather` here and their twins in `tf_resattn.ops.pure`; the layers
call the four fused ops directly where the same function says they run.
"""

import tensorflow as tf

from tf_resattn.ops import loader


def _library():
    module, reason = loader.load_library()
    if module is None:
        raise RuntimeError(f"the compiled op library is not available: {reason}")
    return module


def require_int32(tensor, name, function):
    """Raises `TypeError` unless `tensor` is int32 (the ops take int32 ids and permutations)."""
    if tensor.dtype != tf.int32:
        raise TypeError(
            f"{function}: `{name}` must be int32, got {tensor.dtype.name}; cast it with tf.cast({name}, tf.int32)"
        )


def bucket_sort(buckets, num_buckets):
    """`TfResattn>BucketSort`: int32 `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`."""
    permutation, inverse = _library().tf_resattn_bucket_sort(buckets, tf.cast(num_buckets, tf.int32))
    return permutation, inverse


def permute_gather(x, permutation, inverse):
    """`TfResattn>PermuteGather`: `x [N, L, D]` gathered by `permutation [N, L]` along L."""
    return _library().tf_resattn_permute_gather(x, permutation, inverse)


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """Angular LSH bucket ids (`TfResattn>LshHash`; no gradient).

    Its reference is `hash_buckets` in `tf_resattn.layers.lsh_attention`.

    Args:
        qk: float32 `[N, L, D]`, or `[B, L, H, D]` for `N = B*H` heads side by
            side (row `n` of the result is head `n % H` of entry `n // H`).
        rotations: float32 `[D, R, K]`; the first `num_buckets // 2` columns are used.
        num_buckets: even int or int32 scalar.
        valid_length: positions `>= valid_length` get bucket `num_buckets`.

    Returns:
        int32 `[N, R, L]`.
    """
    return _library().tf_resattn_lsh_hash(
        qk, rotations, tf.cast(num_buckets, tf.int32), tf.cast(valid_length, tf.int32)
    )


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """The attention of all LSH rounds and their combination (`TfResattn>LshChunkAttention`).

    Its reference is the `keras.ops` composite in `tf_resattn.layers.lsh_attention`.

    Args:
        qk, v: float32 `[N, L, D]`, or `[B, L, H, D]` for `N = B*H` heads side
            by side; `L` a multiple of `bucket_size`.
        permutation: int32 `[N, R, L]`, each round's sorting permutation.
        valid_length: int or int32 scalar; keys at positions `>= valid_length` are masked.
        bucket_size: chunk length (a Python int).

    Returns:
        float32, shaped as `qk`.
    """
    permutation = tf.convert_to_tensor(permutation)
    require_int32(permutation, "permutation", "lsh_chunk_attention")
    out, _ = _library().tf_resattn_lsh_chunk_attention(
        qk, v, permutation, tf.cast(valid_length, tf.int32), bucket_size=int(bucket_size)
    )
    return out


@tf.RegisterGradient("TfResattn>LshChunkAttention")
def _lsh_chunk_attention_gradient(op, d_out, unused_d_lse):
    """Recomputes each chunk's attention from the saved output and log-sum-exps (only `out` is differentiable)."""
    d_qk, d_v = _library().tf_resattn_lsh_chunk_attention_grad(
        *op.inputs, *op.outputs, d_out, bucket_size=op.get_attr("bucket_size")
    )
    return d_qk, d_v, None, None


def layer_norm(x, gamma, beta, epsilon):
    """Layer normalisation over the last axis in one pass each way (`TfResattn>LayerNorm`).

    Its reference is `keras.layers.LayerNormalization(axis=-1)`.

    Args:
        x: float32 `[..., C]`.
        gamma, beta: float32 `[C]`.
        epsilon: added to the variance.

    Returns:
        float32, shaped as `x`.
    """
    y, _, _ = _library().tf_resattn_layer_norm(x, gamma, beta, epsilon=float(epsilon))
    return y


@tf.RegisterGradient("TfResattn>LayerNorm")
def _layer_norm_gradient(op, dy, unused_d_mean, unused_d_rstd):
    """Gradients of `x`, `gamma` and `beta` from the saved row means and inverse deviations."""
    x, gamma, _ = op.inputs
    _, mean, rstd = op.outputs
    return _library().tf_resattn_layer_norm_grad(x, gamma, mean, rstd, dy)


def group_norm(x, gamma, beta, groups, epsilon):
    """Group normalisation of a channels-last map in two passes each way (`TfResattn>GroupNorm`).

    Its reference is `keras.layers.GroupNormalization(groups, axis=-1)`.

    Args:
        x: float32 `[B, ..., C]`, `C` a multiple of `groups`.
        gamma, beta: float32 `[C]`.
        groups: number of groups of neighbouring channels.
        epsilon: added to the variance.

    Returns:
        float32, shaped as `x`.
    """
    y, _, _ = _library().tf_resattn_group_norm(x, gamma, beta, groups=int(groups), epsilon=float(epsilon))
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
