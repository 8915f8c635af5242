"""Builds the LSH sort/gather op library against the installed TensorFlow.

Usage (from the repository root; `pip install -e .` runs the first form):

    python custom_ops/build.py                 # CPU library -> tf_resattn/ops/_lsh_sort_ops.so
    TF_RESATTN_BUILD_CUDA=1 python custom_ops/build.py   # CPU + CUDA kernels (CUDA 12 nvcc)
    python custom_ops/build.py --check-cuda    # compile the CUDA sources only (CI); skips without nvcc
    python custom_ops/build.py --no-xla        # without the XLA custom-call targets
    python custom_ops/build.py --jax-ffi-only  # only the JAX FFI library (no TensorFlow needed)
    python custom_ops/build.py --no-jax-ffi    # only the TensorFlow op library

Compiler flags come from `tf.sysconfig` (C++17, the C++11 ABI flag, include and
link paths), so the library matches the TensorFlow it is loaded into; the
library also records the TensorFlow version it was built for, which the loader
checks. The CUDA build needs an nvcc of CUDA 12 (TensorFlow 2.21 is built with
CUDA 12.5): set `TF_RESATTN_NVCC` or `CUDA_HOME`, or put it on `PATH`.

The XLA custom-call targets (`cc/xla/`) need XLA's headers from the wheel
and link `libtensorflow_cc.so.2`; where either fails, the library is built
without them (a warning says why) and XLA-compiled functions take the pure
path, as they do when the library is absent.

The JAX FFI library (`tf_resattn/ops/_lsh_jax_ffi.so`, loaded by
`tf_resattn/jax_ffi.py` under Keras's JAX backend) holds typed XLA FFI
handlers (`cc/jax/`) of the same CPU kernels (`cc/kernels/`, compiled with
`TF_RESATTN_KERNELS_ONLY`, which leaves out their TensorFlow op kernels). It
needs neither TensorFlow's headers nor its libraries: only jaxlib's FFI
headers (`jax.ffi.include_dir()`) and Eigen's headers (header-only), taken
from `TF_RESATTN_EIGEN_INCLUDE`, the TensorFlow wheel's copy of Eigen or
`/usr/include/eigen3` (libeigen3-dev), whichever comes first (only its
`Eigen/` and `unsupported/` folders are put on the include path). Where jaxlib or Eigen
is missing, or it does not compile, it is skipped with a message saying why
and the TensorFlow library is built all the same.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "custom_ops" / "lsh_sort"
LIBRARY_NAME = "_lsh_sort_ops.so"
DEFAULT_OUTPUT = REPO_ROOT / "tf_resattn" / "ops" / LIBRARY_NAME

CPU_SOURCES = (
    "cc/ops/lsh_sort_ops.cc",
    "cc/kernels/bucket_sort_op.cc",
    "cc/kernels/permute_gather_op.cc",
    "cc/kernels/chunk_attention_op.cc",
    "cc/kernels/lsh_hash_op.cc",
    "cc/kernels/layer_norm_op.cc",
    "cc/kernels/group_norm_op.cc",
    "cc/kernels/library_info_op.cc",
)
CUDA_SOURCES = (
    "cc/kernels/bucket_sort_op_gpu.cu.cc",
    "cc/kernels/permute_gather_op_gpu.cu.cc",
)
# XLA custom-call targets, compiled and linked only where XLA's headers and library allow.
XLA_SOURCES = ("cc/xla/host_targets.cc",)
CUDA_XLA_SOURCES = ("cc/xla/cuda_targets.cu.cc",)
XLA_LIBRARY = "libtensorflow_cc.so.2"
# The JAX FFI library: its handlers and the kernel sources they call.
JAX_FFI_LIBRARY_NAME = "_lsh_jax_ffi.so"
DEFAULT_JAX_FFI_OUTPUT = REPO_ROOT / "tf_resattn" / "ops" / JAX_FFI_LIBRARY_NAME
JAX_FFI_SOURCES = ("cc/jax/ffi_targets.cc",)
JAX_FFI_KERNEL_SOURCES = (
    "cc/kernels/bucket_sort_op.cc",
    "cc/kernels/permute_gather_op.cc",
    "cc/kernels/lsh_hash_op.cc",
    "cc/kernels/chunk_attention_op.cc",
)
EIGEN_MARKER = pathlib.Path("unsupported") / "Eigen" / "CXX11" / "Tensor"
CUDA_HARNESS = "cuda/harness.cu"
# Volta and newer (the kernels use __match_any_sync); PTX for newer GPUs.
CUDA_12_ARCHS = ("70", "75", "80", "86", "89", "90")
# CUDA 13 dropped code generation for compute capabilities below 7.5.
CUDA_13_ARCHS = ("75", "80", "86", "89", "90")

# Finds jaxlib's FFI headers without importing jax (as jax.ffi.include_dir() does).
_JAXLIB_QUERY = (
    "import importlib.util, os; spec = importlib.util.find_spec('jaxlib'); "
    "print(os.path.join(os.path.dirname(spec.origin), 'include') if spec else '')"
)
# The TensorFlow wheel's include folder, without importing TensorFlow (for its copy of Eigen only).
_TF_INCLUDE_QUERY = (
    "import importlib.util, os; spec = importlib.util.find_spec('tensorflow'); "
    "print(os.path.join(os.path.dirname(spec.origin), 'include') if spec else '')"
)

_TF_QUERY = (
    "import json, tensorflow as tf; print(json.dumps({'version': tf.__version__, "
    "'compile': tf.sysconfig.get_compile_flags(), 'link': tf.sysconfig.get_link_flags()}))"
)


class BuildError(RuntimeError):
    """The library could not be built; the message names the failing step."""


def tensorflow_flags():
    """Returns `{"version", "compile", "link"}` of the installed TensorFlow.

    Inside pip's isolated build environment TensorFlow is not importable, so
    this asks the same interpreter without the isolation's path overrides.
    """
    for env in (os.environ, _without_build_isolation(os.environ)):
        result = subprocess.run([sys.executable, "-c", _TF_QUERY], capture_output=True, text=True, env=env, check=False)
        if result.returncode == 0:
            return json.loads(result.stdout.strip().splitlines()[-1])
    raise BuildError(f"cannot import tensorflow with {sys.executable}: {_last_line(result.stderr)}")


def _without_build_isolation(env):
    return {key: value for key, value in env.items() if key not in ("PYTHONPATH", "PYTHONNOUSERSITE")}


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _error_excerpt(stderr):
    """The compiler's and linker's error lines (warnings from TensorFlow's headers would bury them)."""
    lines = stderr.strip().splitlines()
    markers = ("error", "undefined", "multiple definition")
    errors = [line for line in lines if any(marker in line.lower() for marker in markers)]
    return "\n".join((errors or lines)[-20:])


def _run(command, what):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{what} failed:\n{' '.join(command)}\n{_error_excerpt(result.stderr)}")


def _run_all(commands, jobs):
    """Runs `(command, what)` pairs, `jobs` at a time; raises on the first failure."""
    pending = list(commands)
    running = []
    failure = None
    while pending or running:
        while pending and len(running) < jobs and failure is None:
            command, what = pending.pop(0)
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running.append((process, command, what))
        process, command, what = running.pop(0)
        _, stderr = process.communicate()
        if process.returncode != 0 and failure is None:
            failure = BuildError(f"{what} failed:\n{' '.join(command)}\n{_error_excerpt(stderr)}")
        if failure is not None:
            pending.clear()
    if failure is not None:
        raise failure


def cpu_flags():
    """The instruction-set flags of this machine's CPU (Linux), or an empty set where unknown."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def vector_flags():
    """`-mavx2 -mfma` where this CPU has both (the chunk attention's matrix tiles use them).

    The library is built where it is installed; the loader refuses an AVX2
    build on a CPU without AVX2 and FMA, naming the fix.
    """
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= cpu_flags() else []


def find_nvcc():
    """Returns `(path, (major, minor))` of the nvcc to use, or `(None, reason)`."""
    candidates = []
    if os.environ.get("TF_RESATTN_NVCC"):
        candidates.append(os.environ["TF_RESATTN_NVCC"])
    if os.environ.get("CUDA_HOME"):
        candidates.append(os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc"))
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        output = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"release (\d+)\.(\d+)", output)
        if match:
            return candidate, (int(match.group(1)), int(match.group(2)))
    return None, "no nvcc found (set TF_RESATTN_NVCC or CUDA_HOME, or put nvcc on PATH)"


def _gencode_flags(version):
    archs = CUDA_12_ARCHS if version[0] == 12 else CUDA_13_ARCHS
    flags = []
    for arch in archs:
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    flags += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]
    return flags


def _cuda_compile_commands(nvcc, version, tf, objects_dir, sources=CUDA_SOURCES):
    flags = [
        "-c",
        "-x",
        "cu",
        "-O3",
        "-DNDEBUG",
        "-DGOOGLE_CUDA=1",
        "-DEIGEN_USE_GPU",
        "--expt-relaxed-constexpr",
        "-Xcompiler",
        "-fPIC",
        f"-I{REPO_ROOT}",
        *tf["compile"],
        *_gencode_flags(version),
    ]
    commands = []
    for source in sources:
        command = [nvcc, *flags, str(SOURCE_DIR / source), "-o", _object(objects_dir, source)]
        commands.append((command, f"nvcc {source}"))
    return commands


def _object(objects_dir, source):
    """The object file of `source` (a path under SOURCE_DIR) in `objects_dir`, as a string."""
    return str(objects_dir / (pathlib.Path(source).name + ".o"))


def _xla_library_flag(tf):
    """`-l:libtensorflow_cc.so.2` where the wheel's library folder holds it, else None."""
    folders = [flag[2:] for flag in tf["link"] if flag.startswith("-L")]
    if any((pathlib.Path(folder) / XLA_LIBRARY).exists() for folder in folders):
        return f"-l:{XLA_LIBRARY}"
    return None


def _compile_xla_targets(commands, tf, jobs, log):
    """Compiles the XLA targets; returns the linker flag they need, or None (with a warning) where they cannot be."""
    library_flag = _xla_library_flag(tf)
    if library_flag is None:
        log(f"warning: building without the XLA custom-call targets: no {XLA_LIBRARY} beside TensorFlow")
        return None
    try:
        _run_all(commands, jobs)
    except BuildError as error:
        log(f"warning: building without the XLA custom-call targets: {error}")
        return None
    return library_flag


def _link_command(cuda, nvcc, cxx, objects, partial, link_flags):
    if cuda:
        # nvcc links its own CUDA runtime statically (the library then needs no libcudart on the path).
        linker_flags = [item for flag in link_flags for item in ("-Xlinker", flag)]
        return [nvcc, "-shared", "-cudart", "static", *objects, "-o", str(partial), *linker_flags]
    return [cxx, "-shared", *objects, "-o", str(partial), *link_flags]


def build_library(output=DEFAULT_OUTPUT, *, cuda=False, any_cuda_version=False, xla=True, jobs=2, log=print):
    """Compiles and links the op library to `output` (written under a temporary name, then renamed).

    Args:
        output: path of the shared library to write.
        cuda: also compile the CUDA kernels (needs a CUDA 12 nvcc).
        any_cuda_version: accept an nvcc other than CUDA 12 (for compile checks only).
        xla: also build the XLA custom-call targets (left out, with a
            warning, where they do not compile or link).
        jobs: compiler processes run at once.
        log: callable taking one line of progress.

    Raises:
        BuildError: a step failed; the message names it.
    """
    output = pathlib.Path(output)
    tf = tensorflow_flags()
    log(f"building {output.name} for TensorFlow {tf['version']} ({'CPU + CUDA' if cuda else 'CPU'})")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise BuildError(f"C++ compiler {cxx!r} not found (install g++ or set CXX)")
    with tempfile.TemporaryDirectory(prefix="tf_resattn_build_") as temp:
        objects_dir = pathlib.Path(temp)
        cxx_flags = [
            "-c",
            "-O3",
            "-DNDEBUG",
            "-fPIC",
            "-Wno-deprecated-declarations",
            f'-DTF_RESATTN_TF_VERSION="{tf["version"]}"',
            f"-I{REPO_ROOT}",
            *tf["compile"],
            *vector_flags(),
        ]
        commands, xla_commands, nvcc = [], [], None
        if cuda:
            nvcc, version = find_nvcc()
            if nvcc is None:
                raise BuildError(f"CUDA build requested but {version}")
            if version[0] != 12 and not any_cuda_version:
                raise BuildError(
                    f"CUDA build requested but {nvcc} is CUDA {version[0]}.{version[1]}; TensorFlow "
                    f"{tf['version']} needs CUDA 12 (set TF_RESATTN_NVCC to a CUDA 12 nvcc)"
                )
            cxx_flags.append("-DGOOGLE_CUDA=1")
            commands += _cuda_compile_commands(nvcc, version, tf, objects_dir)
            xla_commands += _cuda_compile_commands(nvcc, version, tf, objects_dir, CUDA_XLA_SOURCES)
        for source in CPU_SOURCES + XLA_SOURCES:
            command = [cxx, *cxx_flags, str(SOURCE_DIR / source), "-o", _object(objects_dir, source)]
            (xla_commands if source in XLA_SOURCES else commands).append((command, f"compile {source}"))
        _run_all(commands, jobs)
        objects = [_object(objects_dir, source) for source in CPU_SOURCES + (CUDA_SOURCES if cuda else ())]
        xla_flag = _compile_xla_targets(xla_commands, tf, jobs, log) if xla else None
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        if xla_flag is not None:
            xla_sources = XLA_SOURCES + (CUDA_XLA_SOURCES if cuda else ())
            xla_objects = [_object(objects_dir, source) for source in xla_sources]
            try:
                _run(_link_command(cuda, nvcc, cxx, objects + xla_objects, partial, [*tf["link"], xla_flag]), "link")
            except BuildError as error:
                log(f"warning: building without the XLA custom-call targets: {error}")
                xla_flag = None
        if xla_flag is None:
            _run(_link_command(cuda, nvcc, cxx, objects, partial, tf["link"]), "link")
        os.replace(partial, output)
    log(f"wrote {output}")
    return output


def _query_path(query):
    """The folder `query` prints (run by this interpreter, also outside pip's build isolation), or None."""
    for env in (os.environ, _without_build_isolation(os.environ)):
        result = subprocess.run([sys.executable, "-c", query], capture_output=True, text=True, check=False, env=env)
        lines = result.stdout.strip().splitlines()
        if result.returncode == 0 and lines and lines[-1]:
            return pathlib.Path(lines[-1])
    return None


def jax_ffi_include_dir():
    """`(folder, None)`: jaxlib's include folder holding `xla/ffi/api/ffi.h`, or `(None, reason)`."""
    folder = _query_path(_JAXLIB_QUERY)
    if folder is None:
        return None, f"jaxlib is not installed for {sys.executable}"
    if not (folder / "xla" / "ffi" / "api" / "ffi.h").exists():
        return None, f"jaxlib has no XLA FFI headers in {folder} (jaxlib >= 0.4.31 ships them)"
    return folder, None


def eigen_include_dir():
    """`(folder, None)`: a folder holding Eigen's headers (`Eigen/`, `unsupported/`), or `(None, reason)`.

    In order: `TF_RESATTN_EIGEN_INCLUDE`; the TensorFlow wheel's copy (the
    Eigen the TensorFlow library is built with, so both libraries compute
    alike); the system's (`/usr/include/eigen3`, e.g. libeigen3-dev).
    """

    def candidates():
        if os.environ.get("TF_RESATTN_EIGEN_INCLUDE"):
            yield pathlib.Path(os.environ["TF_RESATTN_EIGEN_INCLUDE"])
        tf_include = _query_path(_TF_INCLUDE_QUERY)
        if tf_include is not None:
            yield tf_include
        yield pathlib.Path("/usr/include/eigen3")
        yield pathlib.Path("/usr/local/include/eigen3")

    for candidate in candidates():
        if (candidate / EIGEN_MARKER).exists() and (candidate / "Eigen" / "Core").exists():
            return candidate, None
    return None, (
        "no Eigen headers found (set TF_RESATTN_EIGEN_INCLUDE, install libeigen3-dev, or install tensorflow, "
        "whose wheel ships them)"
    )


def build_jax_ffi_library(output=DEFAULT_JAX_FFI_OUTPUT, *, jobs=2, log=print):
    """Compiles and links the JAX FFI library to `output`; returns its path, or None where it is skipped.

    Needs jaxlib's FFI headers and Eigen's; where either is missing, or a
    compile or link step fails, logs why and returns None (nothing written).
    TensorFlow is not needed: only Eigen's own folders go on the include path.
    """
    output = pathlib.Path(output)
    ffi_include, reason = jax_ffi_include_dir()
    if ffi_include is None:
        log(f"skipping {output.name} (the JAX FFI kernels): {reason}")
        return None
    eigen, reason = eigen_include_dir()
    if eigen is None:
        log(f"skipping {output.name} (the JAX FFI kernels): {reason}")
        return None
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        log(f"skipping {output.name} (the JAX FFI kernels): C++ compiler {cxx!r} not found (install g++ or set CXX)")
        return None
    log(f"building {output.name} (XLA FFI handlers for JAX; headers of {ffi_include}, Eigen of {eigen})")
    with tempfile.TemporaryDirectory(prefix="tf_resattn_jax_ffi_") as temp:
        temp = pathlib.Path(temp)
        # Eigen's folders alone, so that nothing else beside them (TensorFlow's headers) can be included.
        eigen_only = temp / "eigen"
        eigen_only.mkdir()
        for name in ("Eigen", "unsupported"):
            (eigen_only / name).symlink_to(eigen / name, target_is_directory=True)
        flags = [
            "-c",
            "-std=c++17",
            "-O3",
            "-DNDEBUG",
            "-fPIC",
            "-DTF_RESATTN_KERNELS_ONLY",
            "-DEIGEN_MAX_ALIGN_BYTES=64",
            "-Wno-deprecated-declarations",
            f"-I{REPO_ROOT}",
            f"-I{ffi_include}",
            "-isystem",
            str(eigen_only),
            *vector_flags(),
        ]
        commands = []
        for source in JAX_FFI_KERNEL_SOURCES:
            # The kernels' own symbols stay inside the library (the TensorFlow library defines the same names).
            command = [cxx, *flags, "-fvisibility=hidden", str(SOURCE_DIR / source), "-o", _object(temp, source)]
            commands.append((command, f"compile {source} (kernels only)"))
        for source in JAX_FFI_SOURCES:
            commands.append(([cxx, *flags, str(SOURCE_DIR / source), "-o", _object(temp, source)], f"compile {source}"))
        objects = [_object(temp, source) for source in JAX_FFI_KERNEL_SOURCES + JAX_FFI_SOURCES]
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        try:
            _run_all(commands, jobs)
            _run([cxx, "-shared", *objects, "-o", str(partial), "-pthread"], "link")
        except BuildError as error:
            log(f"warning: skipping {output.name} (the JAX FFI kernels): {error}")
            return None
        os.replace(partial, output)
    log(f"wrote {output}")
    return output


def check_cuda_sources(jobs=2, log=print):
    """Builds the library with its CUDA kernels into a temporary folder, loads it, and compiles the harness.

    Nothing is written into the package. Returns True when checked, False when
    skipped because no nvcc is available.

    Raises:
        BuildError: a compile, link or load step failed.
    """
    nvcc, version = find_nvcc()
    if nvcc is None:
        log(f"CUDA compile check skipped: {version} (the nvidia-cuda-nvcc-cu12 wheel ships no nvcc on some platforms)")
        return False
    note = "" if version[0] == 12 else "; TensorFlow uses CUDA 12, so this checks the sources only"
    log(f"checking the CUDA build with {nvcc} (CUDA {version[0]}.{version[1]}{note})")
    with tempfile.TemporaryDirectory(prefix="tf_resattn_cuda_") as temp:
        library = pathlib.Path(temp) / LIBRARY_NAME
        build_library(library, cuda=True, any_cuda_version=True, jobs=jobs, log=log)
        load = f"import tensorflow as tf; print(tf.load_op_library({str(library)!r}).tf_resattn_library_info().numpy().decode())"
        result = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=False)
        if result.returncode != 0 or "cuda=1" not in result.stdout:
            raise BuildError(f"the CUDA build does not load: {_error_excerpt(result.stderr)}")
        info = result.stdout.strip().splitlines()[-1]
        log(f"CUDA build loads: {info}")
        if "xla=Host,CUDA" not in info:
            raise BuildError("the CUDA build has no XLA custom-call targets for CUDA (see the warning above)")
        harness = [nvcc, "-O3", "-std=c++17", *_gencode_flags(version), str(SOURCE_DIR / CUDA_HARNESS)]
        _run([*harness, "-o", str(pathlib.Path(temp) / "harness")], f"nvcc {CUDA_HARNESS}")
    log("CUDA sources compiled")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="library path to write")
    parser.add_argument("--cuda", action="store_true", help="also build the CUDA kernels (as TF_RESATTN_BUILD_CUDA=1)")
    parser.add_argument("--check-cuda", action="store_true", help="only compile the CUDA sources (skips without nvcc)")
    parser.add_argument("--no-xla", action="store_true", help="leave out the XLA custom-call targets")
    parser.add_argument("--no-jax-ffi", action="store_true", help="leave out the JAX FFI library")
    parser.add_argument("--jax-ffi-only", action="store_true", help="only build the JAX FFI library (no TensorFlow)")
    parser.add_argument(
        "--jax-ffi-output", type=pathlib.Path, default=DEFAULT_JAX_FFI_OUTPUT, help="JAX FFI library path to write"
    )
    parser.add_argument("--jobs", type=int, default=2, help="compiler processes at once")
    args = parser.parse_args(argv)
    if args.jax_ffi_only:
        return 0 if build_jax_ffi_library(args.jax_ffi_output, jobs=args.jobs) is not None else 1
    status = 0
    try:
        if args.check_cuda:
            check_cuda_sources(jobs=args.jobs)
        else:
            cuda = args.cuda or os.environ.get("TF_RESATTN_BUILD_CUDA") == "1"
            build_library(args.output, cuda=cuda, xla=not args.no_xla, jobs=args.jobs)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        status = 1
    if not args.check_cuda and not args.no_jax_ffi:
        build_jax_ffi_library(args.jax_ffi_output, jobs=args.jobs)  # skipped, with a message, where it cannot be built
    return status


if __name__ == "__main__":
    sys.exit(main())
