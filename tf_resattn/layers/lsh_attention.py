"""Multi-round LSH self-attention (Reformer, Kitaev et al. 2020) in `keras.ops`.

Design. Queries and keys share one projection (`qk`); keys are the queries
normalised to unit length, so a token's largest dot product would be with
itself, which is why attending to oneself is masked unless nothing else is
available. Each hash round draws an angular hash from a fixed random rotation
(`argmax([xR, -xR])`), sorts the tokens by (bucket, position), cuts the sorted
sequence into chunks of `bucket_size` tokens and lets every chunk attend to
itself and to the chunk before it (the first chunk looks at itself only).
Rounds are combined through the log-sum-exp of their attention normalisers,
which is exact softmax attention over the union of the keys each round saw.

Sequences are padded to a multiple of `bucket_size`; padding tokens are hashed
into a bucket of their own that sorts last and are masked as keys, so they
change neither the order nor the outputs of real tokens. Sequences no longer
than two buckets use exact full attention.

Shapes below: `N` rows (batch x heads), `R` hash rounds, `L` tokens, `D` head
dimension, `C = L / bucket_size` chunks, `b = bucket_size`.

Everything here is `keras.ops` except the sort, the gather and the hash's argmax, which go through
`tf_resattn.layers.kernels` (a compiled op on TensorFlow, an XLA FFI custom
call on JAX, when available). On the CPU the hashing, and the attention of
all rounds with their combination, run as compiled kernels as well
(`lsh_hash`, `lsh_chunk_attention` of `tf_resattn.ops` on TensorFlow, under
XLA as custom calls, or of `tf_resattn.jax_ffi` on JAX, where `lsh_kernels`
names one); the `keras.ops` code below is their reference and their fallback
everywhere else.
"""

import keras
from keras import ops

from tf_resattn.layers.kernels import gather_rows, largest_magnitude_index, lsh_kernels, sort_by_bucket
from tf_resattn.layers.lsh_settings import LSH_DEFAULTS, check_lsh_settings


def mask_values(dtype):
    """Returns `(self_mask, padding_mask)` logits for a compute dtype.

    The self mask is far below any real logit but above the padding mask, so
    a token with nothing else to attend to attends to itself rather than to
    padding. float16 gets values that stay finite (its maximum is 65504).
    """
    if keras.backend.standardize_dtype(dtype) == "float16":
        return -1e4, -5e4
    return -1e5, -1e9


def l2_normalize(x, epsilon=1e-6):
    """Normalises `x [..., D]` to unit length along the last axis."""
    return x * ops.rsqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + epsilon)


def number_of_buckets(num_chunks, max_buckets):
    """An even bucket count near the chunk count, capped at `max_buckets`.

    Plain integers stay plain (static shapes, as on JAX); tensors stay tensors.
    """
    if isinstance(num_chunks, int):
        return min(max(2, num_chunks + num_chunks % 2), max_buckets)
    return ops.minimum(ops.maximum(2, num_chunks + num_chunks % 2), max_buckets)


def hash_buckets(qk, rotations, num_buckets, valid_length):
    """Angular LSH of every token in every round.

    Args:
        qk: `[N, L, D]` shared query/key vectors (or `[B, L, H, D]`, `N = B*H`,
            where the compiled kernels run).
        rotations: `[D, R, max_buckets // 2]` fixed random rotations; the first
            `num_buckets // 2` columns of each round are used.
        num_buckets: even number of hash buckets (scalar).
        valid_length: tokens at positions `>= valid_length` are padding and go
            to bucket `num_buckets`, which sorts after every real bucket.

    Returns:
        int32 `[N, R, L]` bucket ids in `[0, num_buckets]`.
    """
    qk = ops.stop_gradient(qk)
    kernels = lsh_kernels(qk.dtype, xla_operands=(qk, rotations))
    if kernels is not None:
        return kernels.lsh_hash(qk, rotations, num_buckets, valid_length)
    half = num_buckets // 2
    length = ops.shape(qk)[1]
    is_padding = ops.arange(length) >= valid_length
    rounds = []
    for r in range(rotations.shape[1]):  # one round at a time bounds the memory to [N, L, half]
        rotated = ops.einsum("nld,dk->nlk", qk, rotations[:, r, :half])
        # argmax over [x, -x] is the index of the largest |x|, in the upper half when x < 0.
        index = largest_magnitude_index(rotated)
        is_negative = ops.take_along_axis(rotated, index, axis=-1)[..., 0] < 0
        buckets = ops.cast(index[..., 0], "int32") + ops.where(is_negative, half, 0)
        rounds.append(ops.where(is_padding, num_buckets, buckets))
    return ops.stack(rounds, axis=1)


def look_one_back(x):
    """`[M, C, b, ...] -> [M, C, 2b, ...]`: each chunk followed by the chunk before it (cyclic).

    The cyclic shift is two slices and a concatenation (`roll` is no TFLite builtin).
    """
    previous = ops.concatenate([x[:, -1:], x[:, :-1]], axis=1)
    return ops.concatenate([x, previous], axis=2)


def attend_with_bias(queries, keys, values, bias):
    """Softmax attention within chunks, with a hand-written gradient.

    Args:
        queries: `[M, C, b, D]`, already scaled by `D**-0.5`.
        keys, values: `[M, C, 2b, D]`.
        bias: additive logit bias broadcastable to `[M, C, b, 2b]` (masks).

    Returns:
        `(outputs [M, C, b, D], lse [M, C, b, 1])`.

    Only the attention weights `P` are kept for the backward pass, and the
    logit gradient is `P * (dP - rowsum(dO * O) + dlse)`: a few passes over
    the `[M, C, b, 2b]` logits instead of the many that automatic
    differentiation of log-sum-exp and exp takes. This layer is bound by
    memory traffic over those logits, so this is where its time goes.
    """

    @ops.custom_gradient
    def attend(queries, keys, values):
        dots = ops.einsum("mcid,mcjd->mcij", queries, keys) + bias
        top = ops.stop_gradient(ops.max(dots, axis=-1, keepdims=True))
        weights = ops.exp(dots - top)
        total = ops.sum(weights, axis=-1, keepdims=True)
        weights = weights / total
        outputs = ops.einsum("mcij,mcjd->mcid", weights, values)
        lse = top + ops.log(total)

        def grad(*args, upstream=None):
            upstream = upstream if upstream is not None else args
            d_outputs, d_lse = upstream[0] if len(upstream) == 1 else upstream  # JAX passes one tuple
            d_values = ops.einsum("mcij,mcid->mcjd", weights, d_outputs)
            d_weights = ops.einsum("mcid,mcjd->mcij", d_outputs, values)
            delta = ops.sum(d_outputs * outputs, axis=-1, keepdims=True) - d_lse
            d_dots = weights * (d_weights - delta)
            d_queries = ops.einsum("mcij,mcjd->mcid", d_dots, keys)
            d_keys = ops.einsum("mcij,mcid->mcjd", d_dots, queries)
            return d_queries, d_keys, d_values

        return (outputs, lse), grad

    return attend(queries, keys, values)


def chunked_attention(sorted_qk, sorted_v, positions, bucket_size, valid_length):
    """Attention of each chunk over itself and the previous chunk.

    Within a chunk the keys of its own half are its queries in the same
    order, so a token meets itself only on the diagonal of that half: the
    self mask is a constant `[b, 2b]` pattern. The padding mask depends on
    the keys alone (`[M, C, 1, 2b]`), and the first chunk's look-back half
    (the last chunk, reached cyclically) is masked like padding.

    Args:
        sorted_qk, sorted_v: `[M, L, D]` tokens in sorted order.
        positions: int32 `[M, L]`, the original position of each sorted token.
        bucket_size: chunk length `b`; `L` is a multiple of it.
        valid_length: keys at positions `>= valid_length` are masked.

    Returns:
        `(outputs [M, L, D], lse [M, L, 1])`: attention outputs and the
        log-sum-exp of each query's logits, in sorted order.
    """
    rows, length, depth = ops.shape(sorted_qk)[0], ops.shape(sorted_qk)[1], sorted_qk.shape[-1]
    chunks = (rows, length // bucket_size, bucket_size)
    queries = ops.reshape(sorted_qk, chunks + (depth,))
    keys = look_one_back(l2_normalize(queries))
    values = look_one_back(ops.reshape(sorted_v, chunks + (depth,)))
    key_positions = look_one_back(ops.reshape(positions, chunks))

    dtype = sorted_qk.dtype
    self_mask, padding_mask = mask_values(dtype)
    self_bias = ops.pad(ops.eye(bucket_size, dtype=dtype) * self_mask, [[0, 0], [0, bucket_size]])
    is_first_look_back = (ops.arange(chunks[1])[:, None] == 0) & (ops.arange(2 * bucket_size)[None, :] >= bucket_size)
    is_masked = (key_positions >= valid_length) | is_first_look_back
    key_bias = ops.where(is_masked, ops.cast(padding_mask, dtype), ops.cast(0, dtype))
    outputs, lse = attend_with_bias(queries * (depth**-0.5), keys, values, self_bias + key_bias[:, :, None, :])
    return ops.reshape(outputs, (rows, length, depth)), ops.reshape(lse, (rows, length, 1))


def heads_to_rows(x):
    """`[B, L, H, D] -> [B*H, L, D]`: each head of each sequence becomes a row."""
    batch, length, heads, depth = ops.shape(x)[0], ops.shape(x)[1], x.shape[2], x.shape[3]
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch * heads, length, depth))


def rows_to_heads(x, heads):
    """`[B*H, L, D] -> [B, L, H, D]`, the inverse of `heads_to_rows`."""
    length, depth = ops.shape(x)[1], x.shape[-1]
    return ops.transpose(ops.reshape(x, (-1, heads, length, depth)), (0, 2, 1, 3))


def lsh_attention(qk, v, rotations, bucket_size, valid_length, max_buckets):
    """Multi-round LSH attention on padded sequences.

    Args:
        qk, v: `[N, L, D]`, or `[B, L, H, D]` for `H` heads side by side (as a
            linear projection leaves them; the compiled kernels read them in
            place, elsewhere they become `N = B*H` rows); `L` a multiple of
            `bucket_size`.
        rotations: `[D, R, max_buckets // 2]`.
        bucket_size: tokens per chunk.
        valid_length: number of real (non-padding) tokens.
        max_buckets: cap on the number of hash buckets.

    Returns:
        Attention outputs in the original token order, shaped as `qk`.
    """
    kernels = lsh_kernels(qk.dtype, xla_operands=(qk, v, rotations))
    use_kernels = kernels is not None
    if len(qk.shape) == 4:
        if not use_kernels:
            out = lsh_attention(heads_to_rows(qk), heads_to_rows(v), rotations, bucket_size, valid_length, max_buckets)
            return rows_to_heads(out, qk.shape[2])
        rows = ops.shape(qk)[0] * qk.shape[2]
    else:
        rows = ops.shape(qk)[0]
    length, depth = ops.shape(qk)[1], qk.shape[-1]
    n_hashes = rotations.shape[1]
    num_buckets = number_of_buckets(length // bucket_size, max_buckets)
    buckets = ops.reshape(hash_buckets(qk, rotations, num_buckets, valid_length), (rows * n_hashes, length))
    permutation, inverse = sort_by_bucket(buckets, num_buckets + 1)
    if use_kernels:
        permutation = ops.reshape(permutation, (rows, n_hashes, length))
        return kernels.lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size)

    # Every round sorts its own copy of the tokens, so the gather is a true
    # permutation of rows (its gradient is a gather by the inverse).
    tokens = ops.concatenate([qk, v], axis=-1)
    tokens = ops.reshape(ops.repeat(tokens[:, None], n_hashes, axis=1), (rows * n_hashes, length, 2 * depth))
    sorted_tokens = gather_rows(tokens, permutation, inverse)
    outputs, lse = chunked_attention(
        sorted_tokens[..., :depth], sorted_tokens[..., depth:], permutation, bucket_size, valid_length
    )

    unsorted = gather_rows(ops.concatenate([outputs, ops.cast(lse, outputs.dtype)], axis=-1), inverse, permutation)
    if n_hashes == 1:
        return unsorted[..., :depth]
    unsorted = ops.reshape(unsorted, (rows, n_hashes, length, depth + 1))
    round_weights = ops.softmax(unsorted[..., depth:], axis=1)
    return ops.sum(unsorted[..., :depth] * round_weights, axis=1)


def full_attention(qk, v):
    """Exact shared-QK softmax attention with the self mask, `[N, L, D] -> [N, L, D]`."""
    depth = qk.shape[-1]
    dots = ops.einsum("nid,njd->nij", qk, l2_normalize(qk)) * (depth**-0.5)
    self_mask, _ = mask_values(dots.dtype)
    length = ops.shape(qk)[1]
    is_self = ops.arange(length)[:, None] == ops.arange(length)[None, :]
    dots = ops.where(is_self, ops.cast(self_mask, dots.dtype), dots)
    return ops.einsum("nij,njd->nid", ops.softmax(dots, axis=-1), v)


@keras.saving.register_keras_serializable(package="tf_resattn")
class LSHSelfAttention(keras.layers.Layer):
    """Multi-head, multi-round LSH self-attention on token sequences.

    Input `[B, L, C]` -> output `[B, L, C]`. Each head projects the tokens to
    a shared query/key and a value of `key_dim` dimensions, attends with
    Reformer's locality-sensitive hashing (see the module docstring), and an
    output projection maps the heads back to `C` channels. Time and memory
    grow as `L * bucket_size * n_hashes` instead of `L**2`.

    The random rotations are a non-trainable weight drawn once from `seed`
    and saved with the model, so inference is deterministic and exported
    models hash exactly as the Keras model does.

    Args (the defaults and the rule that checks them are in
    `tf_resattn.layers.lsh_settings`):
        num_heads: number of attention heads.
        key_dim: dimension of each head's query/key and value.
        bucket_size: tokens per chunk; also the unit the sequence is padded to.
            Sequences of at most `2 * bucket_size` tokens use full attention.
        n_hashes: number of hash rounds.
        max_buckets: cap on the hash buckets per round (an even number). The
            bucket count follows the number of chunks up to this cap; longer
            sequences share buckets, which widens them.
        seed: seed of the random rotations (`None`: unseeded).
        output_kernel_initializer: initializer of the output projection;
            `"zeros"` makes the layer start as a no-op residual branch.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> layer = LSHSelfAttention(num_heads=2, key_dim=16, bucket_size=32, seed=0)
    >>> tuple(layer(keras.random.normal((1, 1000, 24))).shape)
    (1, 1000, 24)

    References:
        Kitaev, Kaiser, Levskaya. Reformer: The Efficient Transformer. ICLR 2020.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        bucket_size=LSH_DEFAULTS["bucket_size"],
        n_hashes=LSH_DEFAULTS["n_hashes"],
        max_buckets=LSH_DEFAULTS["max_buckets"],
        seed=None,
        output_kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_lsh_settings(num_heads, key_dim, bucket_size, n_hashes, max_buckets)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.max_buckets = max_buckets
        self.seed = seed
        self.output_kernel_initializer = keras.initializers.get(output_kernel_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"LSHSelfAttention needs a known channel dimension, got input shape {input_shape}.")
        width = self.num_heads * self.key_dim
        self.qk_dense = keras.layers.Dense(width, use_bias=False, name="qk", dtype=self.dtype_policy)
        self.value_dense = keras.layers.Dense(width, use_bias=False, name="value", dtype=self.dtype_policy)
        self.output_dense = keras.layers.Dense(
            channels, kernel_initializer=self.output_kernel_initializer, name="output", dtype=self.dtype_policy
        )
        self.qk_dense.build(input_shape)
        self.value_dense.build(input_shape)
        self.output_dense.build(tuple(input_shape[:-1]) + (width,))
        self.rotations = self.add_weight(
            name="rotations",
            shape=(self.key_dim, self.n_hashes, self.max_buckets // 2),
            initializer=keras.initializers.RandomNormal(seed=self.seed),
            trainable=False,
        )

    def _attend(self, qk, v):
        """Full attention for short sequences, LSH attention otherwise; `[B, L, H, D] -> [B, L, H, D]`."""
        length = ops.shape(qk)[1]
        padding = (-length) % self.bucket_size

        def lsh():
            rotations = ops.cast(self.rotations, qk.dtype)
            if isinstance(padding, int) and padding == 0:  # static length, a multiple of the bucket
                return lsh_attention(qk, v, rotations, self.bucket_size, length, self.max_buckets)
            pad = [[0, 0], [0, padding], [0, 0], [0, 0]]
            out = lsh_attention(
                ops.pad(qk, pad), ops.pad(v, pad), rotations, self.bucket_size, length, self.max_buckets
            )
            return out[:, :length]

        def full():
            return rows_to_heads(full_attention(heads_to_rows(qk), heads_to_rows(v)), self.num_heads)

        static_length = qk.shape[1]
        if static_length is not None:
            return full() if static_length <= 2 * self.bucket_size else lsh()
        return ops.cond(length <= 2 * self.bucket_size, full, lsh)

    def call(self, inputs):
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        heads = (batch, length, self.num_heads, self.key_dim)
        qk = ops.reshape(self.qk_dense(inputs), heads)
        v = ops.reshape(self.value_dense(inputs), heads)
        attended = self._attend(qk, v)
        return self.output_dense(ops.reshape(attended, (batch, length, self.num_heads * self.key_dim)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "bucket_size": self.bucket_size,
                "n_hashes": self.n_hashes,
                "max_buckets": self.max_buckets,
                "seed": self.seed,
                "output_kernel_initializer": keras.initializers.serialize(self.output_kernel_initializer),
            }
        )
        return config
