"""Chooses, per call, between the compiled op library and the pure-TensorFlow path.

The compiled ops (`custom_ops/`, loaded lazily by `tf_resattn.ops.loader`) are
used in eager mode and in ordinary `tf.function` graphs. The pure path
(`tf_resattn.ops.pure`) is used instead, giving the same permutations:

- while tracing a function that XLA compiles (`tf.function(jit_compile=True)`,
  `model.compile(jit_compile=True)`, or Keras's default `jit_compile="auto"`
  when it turns XLA on): XLA cannot run custom ops;
- inside `with tf_resattn.ops.pure_path():` -- use it when tracing functions
  for export (a SavedModel holding the custom op needs the library loaded
  before it can be read, and TFLite cannot convert it);
- when the environment variable `TF_RESATTN_PURE_TF=1` is set;
- when the library cannot be loaded (one warning says why);
- for dtypes the compiled gather does not cover (it takes float32, float16 and
  bfloat16).

The LSH hashing (`lsh_hash`), the fused chunk attention
(`lsh_chunk_attention`) and the fused layer and group normalisations
(`layer_norm`, `group_norm`) have
CPU kernels for float32 only and no pure twin here:
`cpu_kernels_available(dtype)` says whether they run, and where it says no
(other dtypes, a machine with a GPU, or any of the reasons above) the layers
compute the same thing with `keras.ops` (and the sort and gather).

The choice is made when the op is created, i.e. when a `tf.function` is
traced: a function traced before entering `pure_path()` keeps its ops.
"""

import contextlib
import os
import threading
import warnings

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from tf_resattn.ops import compiled, loader, pure

FORCE_PURE_ENV = "TF_RESATTN_PURE_TF"
GATHER_DTYPES = (tf.float32, tf.float16, tf.bfloat16)

_scope = threading.local()
_warned = False


@contextlib.contextmanager
def pure_path():
    """Uses the pure-TensorFlow path for every op created inside the scope (this thread).

    Example:
        with tf_resattn.ops.pure_path():
            serving = tf.function(model.__call__).get_concrete_function(spec)
    """
    _scope.depth = getattr(_scope, "depth", 0) + 1
    try:
        yield
    finally:
        _scope.depth -= 1


def inside_xla_compilation():
    """True while tracing a function that XLA will compile (or a function nested in one)."""
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _pure_path_reason():
    """Why the pure path must be used here and now, or None."""
    if os.environ.get(FORCE_PURE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return f"forced off by {FORCE_PURE_ENV}={os.environ[FORCE_PURE_ENV]}"
    if getattr(_scope, "depth", 0) > 0:
        return "inside tf_resattn.ops.pure_path()"
    if inside_xla_compilation():
        return "XLA compilation (jit_compile=True) cannot run custom ops"
    return None


def custom_ops_available():
    """Returns `(available, reason)`: whether the compiled ops are used here, and why (not).

    Loads the library on first call. `reason` names the library when it is
    used, otherwise what prevents it (not built, built for another
    TensorFlow, forced off, inside `pure_path()` or XLA).
    """
    reason = _pure_path_reason()
    if reason is not None:
        return False, reason
    module, reason = loader.load_library()
    return module is not None, reason


def _use_compiled():
    global _warned
    available, reason = custom_ops_available()
    if not available and not _warned and _pure_path_reason() is None:
        _warned = True
        warnings.warn(
            f"tf_resattn.ops: using the pure-TensorFlow sort/gather: {reason}", RuntimeWarning, stacklevel=3
        )
    return available


def cpu_kernels_available(dtype):
    """Whether `lsh_hash`, `lsh_chunk_attention`, `layer_norm` and `group_norm` run here (compiled, float32, no GPU on the machine)."""
    if tf.as_dtype(dtype) != tf.float32 or tf.config.list_logical_devices("GPU"):
        return False
    return _use_compiled()


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """Angular LSH bucket ids, compiled (see `TfResattn>LshHash`; no gradient).

    Call it only where `cpu_kernels_available(qk.dtype)` is true;
    its reference is `hash_buckets` in `tf_resattn.layers.lsh_attention`.

    Args:
        qk: float32 `[N, L, D]`, or `[B, L, H, D]` for `N = B*H` heads side by
            side (row `n` of the result is head `n % H` of entry `n // H`).
        rotations: float32 `[D, R, K]`; the first `num_buckets // 2` columns are used.
        num_buckets: even int or int32 scalar.
        valid_length: positions `>= valid_length` get bucket `num_buckets`.

    Returns:
        int32 `[N, R, L]`.
    """
    return compiled.lsh_hash(qk, rotations, tf.cast(num_buckets, tf.int32), tf.cast(valid_length, tf.int32))


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """The attention of all LSH rounds and their combination, compiled (see `TfResattn>LshChunkAttention`).

    Call it only where `cpu_kernels_available(qk.dtype)` is true;
    its reference is the `keras.ops` composite in `tf_resattn.layers.lsh_attention`.

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
    _require_int32(permutation, "permutation", "lsh_chunk_attention")
    valid_length = tf.cast(valid_length, tf.int32)
    return compiled.lsh_chunk_attention(qk, v, permutation, valid_length, int(bucket_size))


def layer_norm(x, gamma, beta, epsilon):
    """Layer normalisation over the last axis, compiled (see `TfResattn>LayerNorm`).

    Call it only where `cpu_kernels_available(x.dtype)` is true; its reference
    is `keras.layers.LayerNormalization(axis=-1)`.

    Args:
        x: float32 `[..., C]`.
        gamma, beta: float32 `[C]`.
        epsilon: added to the variance.

    Returns:
        float32, shaped as `x`.
    """
    return compiled.layer_norm(x, gamma, beta, float(epsilon))


def group_norm(x, gamma, beta, groups, epsilon):
    """Group normalisation of a channels-last map, compiled (see `TfResattn>GroupNorm`).

    Call it only where `cpu_kernels_available(x.dtype)` is true; its reference
    is `keras.layers.GroupNormalization(groups, axis=-1)`.

    Args:
        x: float32 `[B, ..., C]`, `C` a multiple of `groups`.
        gamma, beta: float32 `[C]`.
        groups: number of groups of neighbouring channels.
        epsilon: added to the variance.

    Returns:
        float32, shaped as `x`.
    """
    return compiled.group_norm(x, gamma, beta, int(groups), float(epsilon))


def _require_int32(tensor, name, function):
    if tensor.dtype != tf.int32:
        raise TypeError(
            f"{function}: `{name}` must be int32, got {tensor.dtype.name}; cast it with tf.cast({name}, tf.int32)"
        )


def bucket_sort(buckets, num_buckets):
    """Stable sort of int32 bucket ids per row (see `tf_resattn.ops`).

    Args:
        buckets: int32 `[N, L]`, values in `[0, num_buckets)`.
        num_buckets: int or int32 scalar tensor, the number of buckets.

    Returns:
        `(permutation, inverse)`, int32 `[N, L]`.
    """
    buckets = tf.convert_to_tensor(buckets)
    _require_int32(buckets, "buckets", "bucket_sort")
    if _use_compiled():
        return compiled.bucket_sort(buckets, tf.cast(num_buckets, tf.int32))
    return pure.bucket_sort(buckets, num_buckets)


def permute_gather(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]`; gradient gathers by `inverse`.

    Args:
        x: `[N, L, D]` float tensor.
        permutation: int32 `[N, L]`, a permutation of `[0, L)` per row.
        inverse: int32 `[N, L]`, its inverse.

    Returns:
        `[N, L, D]`, same dtype as `x`.
    """
    x = tf.convert_to_tensor(x)
    permutation = tf.convert_to_tensor(permutation)
    inverse = tf.convert_to_tensor(inverse)
    _require_int32(permutation, "permutation", "permute_gather")
    _require_int32(inverse, "inverse", "permute_gather")
    if x.dtype in GATHER_DTYPES and _use_compiled():
        return compiled.permute_gather(x, permutation, inverse)
    return pure.permute_gather(x, permutation, inverse)
