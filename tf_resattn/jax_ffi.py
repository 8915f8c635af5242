"""The compiled CPU kernels inside XLA-compiled JAX functions, through `jax.ffi` (Keras's JAX backend).

`custom_ops/build.py` builds `tf_resattn/ops/_lsh_jax_ffi.so` where jaxlib's
FFI headers are installed: typed XLA FFI handlers
(`custom_ops/lsh_sort/cc/jax/ffi_targets.cc`) that run the same kernel
functions as the TensorFlow op library, without TensorFlow. This module loads
it with `ctypes`, registers its handlers with `jax.ffi.register_ffi_target`
for the CPU, and wraps them with `jax.ffi.ffi_call`, so that a `jax.jit`
compiled function (the Keras JAX backend's train step included) runs them as
`custom-call`s:

- `bucket_sort(buckets, num_buckets) -> (permutation, inverse)`;
- `permute_gather(x, permutation, inverse)`: its gradient is the same
  custom call, gathering by `inverse` (`jax.custom_vjp`);
- `lsh_hash(qk, rotations, num_buckets, valid_length)`;
- `lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size)`: its
  gradient is the kernel's gradient custom call (`jax.custom_vjp`).

The signatures and results are those of `tf_resattn.ops`; bucket counts,
lengths and bucket sizes are Python ints (the attributes of the calls),
which they are on JAX, where every shape is static.

`compiled_kernels(dtype, fused, xla_operands) -> (use, reason)` decides, as
`tf_resattn.ops.compiled_kernels` does on TensorFlow: no inside
`pure_path()`, with `TF_RESATTN_PURE_TF=1`, without the library (one
`RuntimeWarning` says why), off the CPU, and for dtypes a kernel does not
cover (the gather takes float32, float16 and bfloat16; the hash and chunk
attention float32). Where it says no, the layers compute the same with
`keras.ops`. This module lives outside `tf_resattn.ops` because importing
that package imports TensorFlow, which the JAX backend never needs.
"""

import contextlib
import ctypes
import functools
import os
import pathlib
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np

LIBRARY_PATH = pathlib.Path(__file__).parent / "ops" / "_lsh_jax_ffi.so"
FORCE_PURE_ENV = "TF_RESATTN_PURE_TF"
REBUILD_HINT = "build it with `python custom_ops/build.py` in a checkout (needs jaxlib's FFI headers)"
# Custom-call target name -> the library's handler symbol.
TARGETS = {
    "tf_resattn_jax_bucket_sort": "TfResattnJaxBucketSort",
    "tf_resattn_jax_permute_gather": "TfResattnJaxPermuteGather",
    "tf_resattn_jax_lsh_hash": "TfResattnJaxLshHash",
    "tf_resattn_jax_lsh_chunk_attention": "TfResattnJaxLshChunkAttention",
    "tf_resattn_jax_lsh_chunk_attention_grad": "TfResattnJaxLshChunkAttentionGrad",
}
GATHER_DTYPES = ("float32", "float16", "bfloat16")
FUSED_DTYPES = ("float32",)

_lock = threading.Lock()
_loaded = None  # (ctypes.CDLL or None, reason), set by the first load_library()
_scope = threading.local()
_warned = False


def load_library(path=None):
    """Returns `(library, reason)`: the loaded FFI library with its targets registered, or None and why not.

    The first call loads it and registers the targets; later calls return the same answer.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load(pathlib.Path(path) if path is not None else LIBRARY_PATH)
        return _loaded


def _load(path):
    if not path.exists():
        return None, f"{path.name} is not built; {REBUILD_HINT}"
    try:
        library = ctypes.cdll.LoadLibrary(str(path))
    except OSError as error:
        return None, f"{path.name} does not load ({error}); {REBUILD_HINT}"
    info_function = library.TfResattnJaxFfiInfo
    info_function.restype = ctypes.c_char_p
    info = dict(item.split("=", 1) for item in info_function().decode().split(";"))
    if info.get("avx2_fma") == "1" and info.get("cpu_avx2_fma") != "1":
        return None, f"{path.name} was built for CPUs with AVX2 and FMA, which this one lacks; {REBUILD_HINT}"
    for target, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    return library, f"loaded {path} (XLA FFI handlers for the CPU)"


@contextlib.contextmanager
def pure_path():
    """Uses the `keras.ops` path for every kernel call traced inside the scope (this thread)."""
    _scope.depth = getattr(_scope, "depth", 0) + 1
    try:
        yield
    finally:
        _scope.depth -= 1


def _static(operands):
    """Whether every operand is known when traced: arrays of known shapes, or values that are not None."""
    for operand in operands:
        shape = getattr(operand, "shape", None)
        if shape is None:
            if operand is None:
                return False
        elif any(not isinstance(dim, (int, np.integer)) for dim in shape):
            return False
    return True


def compiled_kernels(dtype=None, fused=False, xla_operands=None):
    """Returns `(use, reason)`: whether the FFI kernels run for this call, and why (not).

    Args:
        dtype: the dtype of the tensors the kernel would take, or None (the
            sort takes int32 ids, always covered).
        fused: ask about `lsh_hash` and `lsh_chunk_attention` (float32)
            rather than the sort and gather.
        xla_operands: the kernel's operands, whose shapes must be static (as
            they always are under `jax.jit`), or None.
    """
    global _warned
    if os.environ.get(FORCE_PURE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False, f"forced off by {FORCE_PURE_ENV}={os.environ[FORCE_PURE_ENV]}"
    if getattr(_scope, "depth", 0) > 0:
        return False, "inside tf_resattn.jax_ffi.pure_path()"
    if dtype is not None:
        name = jnp.dtype(dtype).name
        covered = FUSED_DTYPES if fused else GATHER_DTYPES
        if name not in covered:
            return False, f"the {'fused' if fused else 'gather'} FFI kernels take {', '.join(covered)}, not {name}"
    if jax.default_backend() != "cpu":
        return False, f"the FFI kernels are registered for the CPU only, and JAX runs on {jax.default_backend()}"
    if xla_operands is not None and not _static(xla_operands):
        return False, "the FFI kernels need shapes known when traced"
    library, reason = load_library()
    if library is None and not _warned:
        _warned = True
        warnings.warn(f"tf_resattn.jax_ffi: using the keras.ops path: {reason}", RuntimeWarning, stacklevel=2)
    return library is not None, reason


def _call(target, results, *operands, **attributes):
    """`jax.ffi.ffi_call` of `target` with int64 attributes; `results` are `jax.ShapeDtypeStruct`s."""
    attributes = {name: np.int64(value) for name, value in attributes.items()}
    return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*operands, **attributes)


def _rows(qk):
    """Rows `N` of tokens `[B, L, H, D]` (`B*H`) or `[N, L, D]`."""
    return qk.shape[0] * qk.shape[2] if qk.ndim == 4 else qk.shape[0]


def bucket_sort(buckets, num_buckets):
    """Stable sort of int32 bucket ids `[N, L]` -> `(permutation, inverse)`, int32 `[N, L]`; `num_buckets` an int."""
    buckets = jnp.asarray(buckets, jnp.int32)
    result = jax.ShapeDtypeStruct(buckets.shape, jnp.int32)
    permutation, inverse = _call("tf_resattn_jax_bucket_sort", (result, result), buckets, num_buckets=int(num_buckets))
    return permutation, inverse


def _gather(x, permutation):
    return _call("tf_resattn_jax_permute_gather", jax.ShapeDtypeStruct(x.shape, x.dtype), x, permutation)


@jax.custom_vjp
def permute_gather(x, permutation, inverse):
    """`y[n, i] = x[n, permutation[n, i]]` for `x [N, L, D]`; gradient gathers by `inverse`."""
    return _gather(x, permutation)


def _permute_gather_forward(x, permutation, inverse):
    return _gather(x, permutation), (permutation, inverse)


def _permute_gather_backward(saved, dy):
    permutation, inverse = saved
    return _gather(dy, inverse), None, None


permute_gather.defvjp(_permute_gather_forward, _permute_gather_backward)


def lsh_hash(qk, rotations, num_buckets, valid_length):
    """Angular LSH bucket ids of `qk` `[N, L, D]` or `[B, L, H, D]` -> int32 `[N, R, L]` (no gradient)."""
    qk = jax.lax.stop_gradient(qk)
    result = jax.ShapeDtypeStruct((_rows(qk), rotations.shape[1], qk.shape[1]), jnp.int32)
    return _call(
        "tf_resattn_jax_lsh_hash",
        result,
        qk,
        rotations,
        num_buckets=int(num_buckets),
        valid_length=int(valid_length),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _chunk_attention(qk, v, permutation, valid_length, bucket_size):
    return _chunk_attention_forward(qk, v, permutation, valid_length, bucket_size)[0]


def _chunk_attention_forward(qk, v, permutation, valid_length, bucket_size):
    results = (jax.ShapeDtypeStruct(qk.shape, jnp.float32), jax.ShapeDtypeStruct((_rows(qk), qk.shape[1]), jnp.float32))
    out, lse = _call(
        "tf_resattn_jax_lsh_chunk_attention",
        results,
        qk,
        v,
        permutation,
        valid_length=valid_length,
        bucket_size=bucket_size,
    )
    return out, (qk, v, permutation, out, lse)


def _chunk_attention_backward(valid_length, bucket_size, saved, d_out):
    qk, v, permutation, out, lse = saved
    tokens = jax.ShapeDtypeStruct(qk.shape, jnp.float32)
    d_qk, d_v = _call(
        "tf_resattn_jax_lsh_chunk_attention_grad",
        (tokens, tokens),
        qk,
        v,
        permutation,
        out,
        lse,
        d_out,
        valid_length=valid_length,
        bucket_size=bucket_size,
    )
    return d_qk, d_v, None


_chunk_attention.defvjp(_chunk_attention_forward, _chunk_attention_backward)


def lsh_chunk_attention(qk, v, permutation, valid_length, bucket_size):
    """The attention of all LSH rounds and their combination, float32, shaped as `qk`.

    Args:
        qk, v: float32 `[N, L, D]` or `[B, L, H, D]`.
        permutation: int32 `[N, R, L]` (`N = B*H`), each round's sorting permutation.
        valid_length: keys at positions `>= valid_length` are masked (an int).
        bucket_size: tokens per chunk (an int; `L` is a multiple of it).
    """
    return _chunk_attention(qk, v, jnp.asarray(permutation, jnp.int32), int(valid_length), int(bucket_size))
