"""Loads the compiled op library (`_lsh_sort_ops.so`) once, on first use.

The library is built when the package is installed (`pip install .` or
`pip install -e .`; `python custom_ops/build.py` in a checkout) into this
folder. Where the install could not build it, it left the reason beside it in
`_lsh_sort_ops.build-error.txt`, which the loader's answer repeats. Loading checks that it was built for the running
TensorFlow: a library compiled against another TensorFlow either fails to
load (unresolved C++ symbols, e.g. a different `_GLIBCXX_USE_CXX11_ABI`) or
reports a different version through its `LibraryInfo` op; both are refused
with a reason that says how to rebuild. A library built with AVX2 and FMA
(where the building CPU has them) is refused on a CPU without them.
"""

import functools
import pathlib
import threading

import tensorflow as tf

LIBRARY_PATH = pathlib.Path(__file__).with_name("_lsh_sort_ops.so")
BUILD_ERROR_PATH = LIBRARY_PATH.with_name("_lsh_sort_ops.build-error.txt")
REBUILD_HINT = (
    "rebuild it against the running TensorFlow with `pip install --no-build-isolation -e .` "
    "(or `python custom_ops/build.py`) in a checkout"
)

_lock = threading.Lock()
_loaded = None  # (module or None, reason), set by the first load_library()


def load_library():
    """Returns `(module, reason)`: the loaded op module, or None and why not.

    The first call loads the library; later calls return the same answer.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load(LIBRARY_PATH)
        return _loaded


def library_info(module):
    """Build facts of a loaded library as a dict (`tf_version`, `cxx11_abi`, `cuda`)."""
    with tf.init_scope():  # runs eagerly even while a tf.function is being traced
        text = module.tf_resattn_library_info().numpy().decode()
    return dict(item.split("=", 1) for item in text.split(";"))


def xla_platforms():
    """The platforms (`"Host"`, `"CUDA"`) the loaded library registered XLA custom-call targets for.

    Empty where the library did not load or was built without them
    (`custom_ops/build.py` leaves them out where XLA's headers or library fail).
    """
    module, _ = load_library()
    return () if module is None else _xla_platforms(module)


@functools.cache
def _xla_platforms(module):
    return tuple(platform for platform in library_info(module).get("xla", "").split(",") if platform)


def _load(path):
    if not path.exists():
        build_error = path.with_name(BUILD_ERROR_PATH.name)
        if build_error.exists():
            reason = " ".join(build_error.read_text().split())
            return None, f"{path.name} could not be built at install ({reason}); fix that and reinstall"
        return None, f"{path.name} is not built; {REBUILD_HINT}"
    try:
        module = tf.load_op_library(str(path))
    except (tf.errors.OpError, OSError) as error:
        detail = str(getattr(error, "message", error)).strip().splitlines()[0]
        return None, f"{path.name} does not match this TensorFlow {tf.__version__} ({detail}); {REBUILD_HINT}"
    info = library_info(module)
    if info.get("tf_version") != tf.__version__:
        return None, (
            f"{path.name} was built for TensorFlow {info.get('tf_version')} but TensorFlow "
            f"{tf.__version__} is running; {REBUILD_HINT}"
        )
    abi_flag = f"-D_GLIBCXX_USE_CXX11_ABI={info.get('cxx11_abi')}"
    if abi_flag not in tf.sysconfig.get_compile_flags():
        return None, f"{path.name} was built with {abi_flag}, unlike this TensorFlow; {REBUILD_HINT}"
    if info.get("avx2_fma") == "1" and info.get("cpu_avx2_fma") != "1":
        return None, f"{path.name} was built for CPUs with AVX2 and FMA, which this one lacks; {REBUILD_HINT}"
    kernels = "CPU and CUDA kernels" if info.get("cuda") == "1" else "CPU kernels"
    return module, f"loaded {path} ({kernels}, TensorFlow {info['tf_version']})"
