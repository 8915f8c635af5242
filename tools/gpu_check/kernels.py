"""Section 1: the CUDA sort and gather kernels, standalone, through the harnesses of `custom_ops/lsh_sort/cuda/`.

- `cupy_cases()`: `run_cupy.py` (NVRTC from CuPy) against NumPy, every case of its `CASES` and
  `REAL_CASES` (4 x 16384 and 4 x 65536 tokens: many ties, one bucket, every token its own bucket);
- `nvcc_cases(build_dir)`: `harness.cu` compiled with nvcc for this GPU and run, against its CPU
  reference, its output lines parsed.

Each returns `(rows, reason)`: one dict per case (`name`, `shape`, `buckets`, `ok`, `sort_ms`,
`gather_ms`), or `None` and the reason it could not run (no CuPy, no nvcc, no CUDA device).
"""

import importlib.util
import pathlib
import re
import shutil
import subprocess

CUDA_DIR = pathlib.Path(__file__).resolve().parents[2] / "custom_ops" / "lsh_sort" / "cuda"
HARNESS_LINE = re.compile(
    r"^(?P<name>.+?)\s+rows=(?P<rows>\d+)\s+L=(?P<length>\d+)\s+D=(?P<depth>\d+)\s+buckets=(?P<buckets>\d+)\s+"
    r"(?P<status>OK|MISMATCH)\s+sort (?P<sort>[\d.]+) ms\s+gather f32 (?P<gather>[\d.]+) ms"
)


def _missing_sources():
    if not (CUDA_DIR / "run_cupy.py").is_file():
        return f"the CUDA sources are not at {CUDA_DIR} (run from a checkout of the repository)"
    return None


def cupy_cases():
    """Runs `run_cupy.run_cases()`; `(rows, None)` or `(None, reason)`."""
    reason = _missing_sources()
    if reason:
        return None, reason
    if importlib.util.find_spec("cupy") is None:
        return None, "CuPy is not installed"
    import cupy

    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy sees no CUDA device"
    except cupy.cuda.runtime.CUDARuntimeError as error:
        return None, f"CuPy sees no CUDA device ({error})"
    spec = importlib.util.spec_from_file_location("lsh_run_cupy", CUDA_DIR / "run_cupy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_cases(), None


def nvcc_cases(build_dir, timeout=240):
    """Compiles `harness.cu` into `build_dir` and runs it; `(rows, None)` or `(None, reason)`."""
    reason = _missing_sources()
    if reason:
        return None, reason
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None, "nvcc is not on PATH"
    if not shutil.which("nvidia-smi"):
        return None, "no NVIDIA driver here (nvidia-smi is not on PATH)"
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
        return None, "nvidia-smi finds no GPU"
    binary = pathlib.Path(build_dir) / "lsh_harness"
    errors = []
    for arch in ("native", "sm_80"):
        build = subprocess.run(
            [nvcc, "-O3", "-std=c++17", f"-arch={arch}", str(CUDA_DIR / "harness.cu"), "-o", str(binary)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if build.returncode == 0:
            break
        errors.append(f"-arch={arch}: {build.stderr.strip().splitlines()[-1:]}")
    else:
        return None, "nvcc could not compile harness.cu: " + "; ".join(errors)
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=timeout)
    rows = [_harness_row(m) for m in map(HARNESS_LINE.match, run.stdout.splitlines()) if m]
    if not rows:
        return None, f"the harness printed no case (exit {run.returncode}): {(run.stderr or run.stdout).strip()[-300:]}"
    return rows, None


def _harness_row(match):
    return {
        "name": match["name"],
        "shape": f"{match['rows']} x {match['length']} x {match['depth']}",
        "buckets": int(match["buckets"]),
        "ok": match["status"] == "OK",
        "sort_ms": float(match["sort"]),
        "gather_ms": float(match["gather"]),
    }
