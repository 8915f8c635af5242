"""The compiled kernels as XLA custom calls, for functions that XLA compiles.

XLA cannot run the op library's TensorFlow ops, but the library also
registers its kernels with XLA as custom-call targets (for the `Host`
platform, and for `CUDA` in the CUDA build: `custom_ops/lsh_sort/cc/xla/`).
While a `tf.function(jit_compile=True)` is traced, `tf_resattn.ops.dispatch`
calls the functions here instead of `tf_resattn.ops.compiled`: each emits an
`XlaCustomCallV2` op naming a target, which XLA compiles into a
`custom-call` of the same name: the sort, gather, hash, chunk attention,
layer norm and group norm. The gradients are the same as the op library's
(a gather by the inverse permutation; the gradient kernels of the chunk
attention and the normalisations), themselves custom calls.

The targets receive buffers without shapes, so every static dimension goes
into the backend config (integers separated by spaces; see
`custom_ops/lsh_sort/cc/xla/host_targets.cc` for each target's list), and
the results' shapes into the op. Both must be known when the function is
traced (`static`), except the leading (batch) axis: Keras traces its
training step with the batch size unknown, so where it is, the call runs
once per batch entry inside a `tf.map_fn`, a loop whose trip count XLA knows
when it compiles (every kernel treats the entries independently; the
normalisations' parameter gradients are then summed over the entries).
"""

import tensorflow as tf
from tensorflow.compiler.tf2xla.ops import gen_xla_ops


def static(operands):
    """Whether the operands are known when traced.

    Tensors need their shape known past the leading (batch) axis; other
    values (a bucket count read with `tf.get_static_value`) must not be None.
    """
    return all(
        operand.shape.rank is not None and operand.shape[1:].is_fully_defined()
        if tf.is_tensor(operand)
        else operand is not None
        for operand in operands
    )


def _custom_call(target, operands, results, config):
    """One `XlaCustomCallV2` of `target`; `results` are `(dtype, shape)` pairs; returns the list of results."""
    return gen_xla_ops.xla_custom_call_v2(
        operands=operands,
        call_target_name=target,
        backend_config=" ".join(str(int(value)) for value in config),
        has_side_effect=False,
        result_dtypes=[dtype for dtype, _ in results],
        result_shapes=[shape for _, shape in results],
    )


def _over_batch(call, operands, results, summed=()):
    """`call(operands, batch, shaped)` where the operands' leading axis may be unknown when traced.

    Args:
        call: `(operands, batch, shaped) -> list of results`, for operands
            whose leading axis is the Python int `batch`; `shaped` are the
            `(dtype, shape)` of its results, `batch` first.
        operands: tensors, all with the same leading (batch) axis.
        results: `(dtype, shape)` of each result of one batch entry (the
            shape without the leading axis).
        summed: `(dtype, shape)` of further results that are sums over the
            batch entries (a parameter's gradient): one call writes the sum,
            and where the call runs once per entry, the entries' sums are added.

    Returns:
        The results, each with the batch axis first, then the summed results.
    """

    def shaped(batch):
        return [(dtype, (batch, *shape)) for dtype, shape in results] + list(summed)

    batch = operands[0].shape[0]
    if batch is not None:
        return call(operands, batch, shaped(batch))
    signature = [tf.TensorSpec(shape, dtype) for dtype, shape in [*results, *summed]]

    def entry_call(entries):
        outputs = call([entry[None] for entry in entries], 1, shaped(1))
        return [output[0] for output in outputs[: len(results)]] + list(outputs[len(results) :])

    outputs = tf.map_fn(entry_call, operands, fn_output_signature=signature)
    return [*outputs[: len(results)], *(tf.reduce_sum(output, axis=0) for output in outputs[len(results) :])]


def _token_dims(qk):
    """`(L, H, D)` of tokens `[B, L, H, D]`, or of `[N, L, D]` as `(L, 1, D)`."""
    shape = qk.shape.as_list()
    return tuple(shape[1:]) if len(shape) == 4 else (shape[1], 1, shape[2])


def _as_heads(tokens):
    """Tokens `[B, L, H, D]`, or `[N, L, D]` as `[N, L, 1, D]`."""
    return tokens if tokens.shape.rank == 4 else tokens[:, :, None, :]


def bucket_sort(buckets, num_buckets):
    """Stable sort of int32 ids `[N, L]` -> int32 `(permutation, inverse)` `[N, L]`; `num_buckets` known when traced."""
    length = buckets.shape[1]
    num_buckets = int(tf.get_static_value(num_buckets))
    results = [(tf.int32, (length,))] * 2

    def call(operands, rows, shaped):
        return _custom_call("tf_resattn_bucket_sort", operands, shaped, (rows, length, num_buckets))

    permutation, inverse = _over_batch(call, [buckets], results)
    return permutation, inverse


@tf.custom_gradient
def permute_gather(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]` (2- or 4-byte elements); gradient gathers by `inverse`."""
    length, depth = x.shape[1:]

    def call(operands, rows, shaped):
        return _custom_call("tf_resattn_permute_gather", operands, shaped, (rows, length, depth, x.dtype.size))

    (y,) = _over_batch(call, [x, permutation], [(x.dtype, (length, depth))])

    def grad(dy):
        return permute_gather(dy, inverse, permutation), None, None

    return y, grad


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """Angular LSH bucket ids, as `tf_resattn.ops.lsh_hash`: `[N, L, D]` or `[B, L, H, D]` -> int32 `[N, R, L]`."""
    length, heads, depth = _token_dims(qk)
    _, rounds, columns = rotations.shape.as_list()
    scalars = [tf.cast(num_buckets, tf.int32), tf.cast(valid_length, tf.int32)]

    def call(operands, batch, shaped):
        config = (batch, length, heads, depth, rounds, columns)
        return _custom_call("tf_resattn_lsh_hash", [*operands, rotations, *scalars], shaped, config)

    (buckets,) = _over_batch(call, [tf.stop_gradient(qk)], [(tf.int32, (heads, rounds, length))])
    return tf.reshape(buckets, (-1, rounds, length))


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """The attention of all LSH rounds, as `tf_resattn.ops.lsh_chunk_attention` (float32, shaped as `qk`).

    The kernels read the permutation `[N, R, L]` and the log-sum-exps `[N, L]`
    (`N = B*H`) as the same memory as the batch-first `[B, H, R, L]` and
    `[B, H, L]` that `_over_batch` splits.
    """
    length, heads, depth = _token_dims(qk)
    rounds = permutation.shape[1]
    valid_length = tf.cast(valid_length, tf.int32)
    tokens = (tf.float32, (length, heads, depth))
    lse = (tf.float32, (heads, length))
    permutation = tf.reshape(permutation, (-1, heads, rounds, length))

    def kernel(target, results):
        """`target` on batch-first `[qk, v, permutation, *rest]`, returning `results`."""

        def call(operands, batch, shaped):
            config = (batch, length, heads, depth, rounds, bucket_size)
            return _custom_call(target, [*operands[:3], valid_length, *operands[3:]], shaped, config)

        return lambda operands: _over_batch(call, operands, results)

    forward = kernel("tf_resattn_lsh_chunk_attention", [tokens, lse])
    backward = kernel("tf_resattn_lsh_chunk_attention_grad", [tokens, tokens])

    @tf.custom_gradient
    def attend(qk, v):
        out, out_lse = forward([qk, v, permutation])

        def grad(d_out):
            return backward([qk, v, permutation, out, out_lse, d_out])

        return out, grad

    return tf.reshape(attend(_as_heads(qk), _as_heads(v)), tf.shape(qk))


def _normalization(target, x, gamma, beta, epsilon, config, statistics):
    """`target` (a normalisation) on `x [B, P, C]` and its gradient custom call, as one differentiable function.

    Args:
        target: the forward target; its gradient is `target + "_grad"`.
        x: float32 `[B, P, C]`, `P` and `C` known when traced.
        gamma, beta: float32 `[C]`.
        epsilon: added to the variance.
        config: `batch -> backend config` (the integers the targets read).
        statistics: the shape of one batch entry's mean and rstd.

    Returns:
        float32 `[B, P, C]`.
    """
    tokens = (tf.float32, tuple(x.shape[1:]))
    stats = (tf.float32, statistics)
    vector = (tf.float32, (x.shape[-1],))
    epsilon = tf.constant(epsilon, tf.float32)

    def call(name, parameters):
        return lambda operands, batch, shaped: _custom_call(
            name, [*operands[:1], *parameters, *operands[1:]], shaped, config(batch)
        )

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        y, mean, rstd = _over_batch(call(target, [gamma, beta, epsilon]), [x], [tokens, stats, stats])

        def grad(dy):
            return _over_batch(call(f"{target}_grad", [gamma]), [x, mean, rstd, dy], [tokens], [vector, vector])

        return y, grad

    return normalize(x, gamma, beta)


def layer_norm(x, gamma, beta, epsilon):
    """Layer normalisation over the last axis, as `tf_resattn.ops.layer_norm`: float32 `[..., C]` -> same shape."""
    rows = x.shape[1:-1].num_elements()
    channels = x.shape[-1]
    tokens = tf.reshape(x, (-1, rows, channels))
    y = _normalization(
        "tf_resattn_layer_norm", tokens, gamma, beta, epsilon, lambda batch: (batch * rows, channels), (rows,)
    )
    return tf.reshape(y, tf.shape(x))


def group_norm(x, gamma, beta, groups, epsilon):
    """Group normalisation of channels-last maps, as `tf_resattn.ops.group_norm`: `[B, ..., C]` -> same shape."""
    pixels = x.shape[1:-1].num_elements()
    channels = x.shape[-1]
    groups = int(groups)
    pixels_first = tf.reshape(x, (-1, pixels, channels))
    y = _normalization(
        "tf_resattn_group_norm",
        pixels_first,
        gamma,
        beta,
        epsilon,
        lambda batch: (batch, pixels, channels, groups),
        (groups,),
    )
    return tf.reshape(y, tf.shape(x))
