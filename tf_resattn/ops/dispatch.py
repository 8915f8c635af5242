"""The one choice between the compiled op library and the pure path, made per call.

`compiled_kernels(dtype, fused, xla_operands)` decides; every op of
`tf_resattn.ops` and every layer that can use a compiled kernel asks it. The
compiled kernels (`custom_ops/`, loaded lazily by `tf_resattn.ops.loader`)
run in one of two ways:

- as the library's TensorFlow ops (`tf_resattn.ops.compiled`) in eager mode
  and in ordinary `tf.function` graphs;
- as XLA custom calls (`tf_resattn.ops.xla_calls`) while tracing a function
  that XLA compiles (`tf.function(jit_compile=True)`,
  `model.compile(jit_compile=True)`, or Keras's `jit_compile="auto"` when it
  turns XLA on): the sort, gather, hash, chunk attention and the two
  normalisations, where the library registered custom-call targets for the
  platform (`Host`; `CUDA` in the CUDA build, for the sort and gather) and
  the operands' shapes are known when traced (the caller passes them as
  `xla_operands`).

The pure path is taken instead:

- under XLA, where the custom calls cannot run (see above);
- inside `with tf_resattn.ops.pure_path():` -- used when tracing functions
  for export (a SavedModel holding the custom op needs the library loaded
  before it can be read, and TFLite cannot convert it);
- when the environment variable `TF_RESATTN_PURE_TF=1` is set;
- when the library cannot be loaded (one warning says why);
- for dtypes a kernel does not cover: the gather takes float32, float16 and
  bfloat16; the fused kernels (`lsh_hash`, `lsh_chunk_attention`,
  `layer_norm`, `group_norm`) take float32 and run on CPU machines only.

For the sort and the gather the pure path is `tf_resattn.ops.pure` (the same
permutations); the fused kernels have no pure twin here: where the answer is
no, the layers compute the same with `keras.ops`. On other Keras backends the
layers never reach this module (see `tf_resattn.layers.kernels`).

The choice is made when the op is created, i.e. when a `tf.function` is
traced: a function traced before entering `pure_path()` keeps its ops.
"""

import contextlib
import os
import threading
import warnings

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from tf_resattn.ops import compiled, loader, pure, xla_calls

FORCE_PURE_ENV = "TF_RESATTN_PURE_TF"
GATHER_DTYPES = (tf.float32, tf.float16, tf.bfloat16)
FUSED_DTYPES = (tf.float32,)

_scope = threading.local()
_warned = False


@contextlib.contextmanager
def pure_path():
    """Uses the pure path for every op created inside the scope (this thread).

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


def _dtype_reason(dtype, fused):
    """Why no compiled kernel takes `dtype` here (None: one does)."""
    if dtype is None:
        return None
    covered = FUSED_DTYPES if fused else GATHER_DTYPES
    if tf.as_dtype(dtype) not in covered:
        names = ", ".join(covered_dtype.name for covered_dtype in covered)
        return f"the {'fused' if fused else 'gather'} kernels take {names}, not {tf.as_dtype(dtype).name}"
    if fused and tf.config.list_logical_devices("GPU"):
        return "the fused kernels run on CPU machines only and this one has a GPU"
    return None


def _xla_reason(xla_operands):
    """Why the kernels cannot run as XLA custom calls here (None: they can)."""
    if xla_operands is None:
        return (
            "XLA compilation (jit_compile=True) cannot run custom ops; the kernels run there only as XLA "
            "custom calls, asked with their xla_operands"
        )
    platform = "CUDA" if tf.config.list_logical_devices("GPU") else "Host"
    if platform not in loader.xla_platforms():
        return (
            f"XLA compilation (jit_compile=True): the op library has no XLA custom-call targets for {platform}; "
            f"{loader.REBUILD_HINT}"
        )
    if not xla_calls.static(xla_operands):
        return "XLA compilation (jit_compile=True): the custom calls need shapes known when the function is traced"
    return None


def compiled_kernels(dtype=None, fused=False, xla_operands=None):
    """Returns `(use, reason)`: whether the compiled kernels run here and now, and why (not).

    Args:
        dtype: the dtype of the tensors the kernel would take, or None to ask
            about the library alone (the sort takes int32 ids, always covered).
        fused: ask about the fused kernels (`lsh_hash`, `lsh_chunk_attention`,
            `layer_norm`, `group_norm`) rather than the sort and gather.
        xla_operands: the kernel's operands (tensors, whose shapes past the
            batch axis must be known when traced, or values, None where
            unknown). Under XLA compilation the kernels run as XLA custom
            calls only when these are given and static; without them the
            answer under XLA is no.

    `reason` names the loaded library when the answer is yes (under XLA,
    prefixed with "XLA compilation: custom calls"), otherwise what prevents
    it (see the module docstring). Loads the library on first call; the
    first time it cannot load, one `RuntimeWarning` names the reason.
    """
    global _warned
    if os.environ.get(FORCE_PURE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False, f"forced off by {FORCE_PURE_ENV}={os.environ[FORCE_PURE_ENV]}"
    if getattr(_scope, "depth", 0) > 0:
        return False, "inside tf_resattn.ops.pure_path()"
    xla = inside_xla_compilation()
    if xla and xla_operands is None:
        return False, _xla_reason(None)
    reason = _dtype_reason(dtype, fused)
    if reason is not None:
        return False, reason
    module, reason = loader.load_library()
    if module is None and not _warned:
        _warned = True
        warnings.warn(f"tf_resattn.ops: using the pure path: {reason}", RuntimeWarning, stacklevel=2)
    if module is None or not xla:
        return module is not None, reason
    xla_reason = _xla_reason(xla_operands)
    if xla_reason is not None:
        return False, xla_reason
    return True, f"XLA compilation: custom calls of {reason}"


def _kernels():
    """The module that runs the compiled kernels here: XLA custom calls while XLA compiles, else the ops."""
    return xla_calls if inside_xla_compilation() else compiled


def bucket_sort(buckets, num_buckets):
    """Stable sort of int32 bucket ids per row (see `tf_resattn.ops`).

    Args:
        buckets: int32 `[N, L]`, values in `[0, num_buckets)`.
        num_buckets: int or int32 scalar tensor, the number of buckets.

    Returns:
        `(permutation, inverse)`, int32 `[N, L]`.
    """
    buckets = tf.convert_to_tensor(buckets)
    compiled.require_int32(buckets, "buckets", "bucket_sort")
    use_compiled, _ = compiled_kernels(xla_operands=(buckets, tf.get_static_value(num_buckets)))
    return (_kernels() if use_compiled else pure).bucket_sort(buckets, num_buckets)


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
    compiled.require_int32(permutation, "permutation", "permute_gather")
    compiled.require_int32(inverse, "inverse", "permute_gather")
    use_compiled, _ = compiled_kernels(x.dtype, xla_operands=(x, permutation, inverse))
    return (_kernels() if use_compiled else pure).permute_gather(x, permutation, inverse)


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """`tf_resattn.ops.compiled.lsh_hash`, or its XLA custom call while XLA compiles.

    Call it where `compiled_kernels(qk.dtype, fused=True, xla_operands=(qk, rotations))` says yes.
    """
    return _kernels().lsh_hash(qk, rotations, num_buckets, valid_length)


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """`tf_resattn.ops.compiled.lsh_chunk_attention`, or its XLA custom call while XLA compiles.

    Call it where `compiled_kernels(qk.dtype, fused=True, xla_operands=(qk, v))` says yes
    (`permutation`, from the hash and sort of the same `qk`, is then static too).
    """
    return _kernels().lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size)


def layer_norm(x, gamma, beta, epsilon):
    """`tf_resattn.ops.compiled.layer_norm`, or its XLA custom call while XLA compiles.

    Call it where `compiled_kernels(x.dtype, fused=True, xla_operands=(x,))` says yes.
    """
    return _kernels().layer_norm(x, gamma, beta, epsilon)


def group_norm(x, gamma, beta, groups, epsilon):
    """`tf_resattn.ops.compiled.group_norm`, or its XLA custom call while XLA compiles.

    Call it where `compiled_kernels(x.dtype, fused=True, xla_operands=(x,))` says yes.
    """
    return _kernels().group_norm(x, gamma, beta, groups, epsilon)
