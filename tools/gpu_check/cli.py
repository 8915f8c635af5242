"""`scripts/gpu_check.py`: runs the sections in worker processes under `KERAS_BACKEND=jax`, prints a table, writes JSON.

    python scripts/gpu_check.py --make-reference gpu_carry/reference            # on a CPU, TensorFlow backend
    python scripts/gpu_check.py --reference gpu_carry/reference --data gpu_carry/medseg100 --json gpu_check.json
    python scripts/gpu_check.py --dry-run --reference DIR                       # tiny sizes, a minute on a CPU

Exit status: 0 when every section that ran passed (skipped sections with their reason do not
fail), 1 when a check failed or a section broke, 2 for bad arguments.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from tools.gpu_check import table
from tools.gpu_check.worker import RESULT_PREFIX

SECTIONS = ("kernels", "parity", "throughput", "training")
TIMEOUTS_S = {"kernels": 240, "parity": 240, "throughput": 150, "training": 300}
"""Per worker, at most; the remaining `--budget-s` caps each further."""
PRECISIONS = ("float32", "bfloat16")
CACHE_NAME = "gpu_check_jax_cache"
"""JAX's compilation cache, made beside the `--json` file."""
DEFAULT_DATA = "../shared/data/medseg100"
SPLIT_NAME = "splits/infnet-50-48.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="The GPU check: CUDA kernels, parity with TensorFlow's CPU results, "
        "throughput and a short training run on Keras's JAX backend."
    )
    parser.add_argument(
        "--make-reference",
        metavar="DIR",
        help="write the CPU TensorFlow reference into DIR and exit "
        "(run with TensorFlow installed; KERAS_BACKEND=tensorflow, the default)",
    )
    parser.add_argument(
        "--reference", metavar="DIR", help="the reference folder to compare with (skipped when not given)"
    )
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"the real slices (default {DEFAULT_DATA})")
    parser.add_argument("--split", help=f"the fixed train/test split (default DATA/{SPLIT_NAME})")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run, of {','.join(SECTIONS)}")
    parser.add_argument("--train-steps", type=int, default=300, help="steps of the training run (default 300)")
    parser.add_argument(
        "--budget-s", type=float, default=450, help="stop starting sections after this many seconds (default 450)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="tiny sizes and few steps: checks the script itself on a CPU"
    )
    parser.add_argument("--json", default="gpu_check.json", help="where to write the results (default gpu_check.json)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections.split(",")) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
    if args.train_steps < 1:
        parser.error(f"--train-steps must be >= 1, got {args.train_steps}")
    return args


def check_sizes(args):
    """The `CheckSizes` of this run: the paper's, or the dry run's."""
    from tools.gpu_check.sizes import dry_run_sizes, paper_sizes

    return dry_run_sizes() if args.dry_run else paper_sizes(args.train_steps)


def make_reference(args):
    """Writes the reference with this process's backend (TensorFlow) and prints where."""
    from tools.gpu_check.reference import make_reference as make

    start = time.perf_counter()
    out = make(args.make_reference, check_sizes(args))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"reference written to {out} ({size / 2**20:.1f} MiB, {time.perf_counter() - start:.0f} s)")
    return 0


def tasks(args, sizes):
    """`(section, label, task dict, skip reason)` for every requested worker, in running order.

    The float32 throughput runs before the training run and the bfloat16 one after it, so that a
    spent time budget costs the least telling figures first.
    """
    wanted = args.sections.split(",")
    split = args.split or str(pathlib.Path(args.data) / SPLIT_NAME)
    base = {"sizes": sizes.to_dict()}
    out = []
    if "kernels" in wanted:
        out.append(("kernels", "CUDA kernels", {"section": "kernels"}, None))
    if "parity" in wanted:
        reason = (
            _reference_mismatch(args.reference, sizes)
            if args.reference
            else "no --reference given (make one with --make-reference under TensorFlow on a CPU)"
        )
        out.append(("parity", "parity", {**base, "section": "parity", "reference": args.reference}, reason))
    throughput = (
        [
            (
                "throughput",
                f"throughput {variant} {precision}",
                {**base, "section": "throughput", "variant": variant, "precision": precision},
                None,
            )
            for precision in PRECISIONS
            for variant in ("resattn", "unet")
        ]
        if "throughput" in wanted
        else []
    )
    out.extend(throughput[:2])
    if "training" in wanted:
        missing = [p for p in (args.data, split) if not pathlib.Path(p).exists()]
        reason = f"not found: {', '.join(missing)} (give --data and --split)" if missing else None
        out.append(
            ("training", "training run", {**base, "section": "training", "data": args.data, "split": split}, reason)
        )
    out.extend(throughput[2:])
    return out


def _reference_mismatch(folder, sizes):
    """Why the reference in `folder` cannot be compared at `sizes`, or None."""
    path = pathlib.Path(folder) / "reference.json"
    if not path.is_file():
        return f"{path} not found (make it with --make-reference {folder})"
    made = json.loads(path.read_text())["sizes"]
    if made != sizes.to_dict():
        return (
            f"the reference was made at {made['image_size']}x{made['image_size']}, this run is at "
            f"{sizes.image_size}x{sizes.image_size}; make it with the same --dry-run setting as the run"
        )
    return None


def run_worker(task, timeout, cache_dir=None):
    """Runs one task in `python -m tools.gpu_check.worker`; returns (result or None, device, error or None, seconds).

    `cache_dir`: JAX's persistent compilation cache (unless `JAX_COMPILATION_CACHE_DIR` is set), so
    that a second run on the same machine skips most compiling.
    """
    repository_root = str(pathlib.Path(__file__).resolve().parents[2])  # holds tools/ and tf_resattn/
    python_path = os.pathsep.join(p for p in (repository_root, os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": python_path,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    if task["section"] == "kernels":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # CuPy holds GPU memory in this process
    if cache_dir:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir))
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tools.gpu_check.worker", json.dumps(task)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, None, f"timed out after {timeout:.0f} s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()
        return None, None, f"exit {done.returncode}: {tail[-1] if tail else 'no output'}", seconds
    payload = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return payload["result"], payload["device"], None, seconds


def run_check(args):
    """Runs every requested section; returns the results dict, written to `--json` after every section
    (a run stopped from outside keeps what finished)."""
    sizes = check_sizes(args)
    started = time.perf_counter()
    cache_dir = pathlib.Path(args.json).resolve().parent / CACHE_NAME
    results = {"dry_run": args.dry_run, "sizes": sizes.to_dict(), "device": None, "sections": []}
    for section, label, task, reason in tasks(args, sizes):
        left = args.budget_s - (time.perf_counter() - started)
        entry = {"section": section, "label": label, "result": None, "error": None, "skipped": reason, "seconds": 0.0}
        if reason is None and left < 10:
            entry["skipped"] = f"the time budget (--budget-s {args.budget_s:.0f}) was spent"
        if entry["skipped"] is None:
            entry["result"], device, entry["error"], entry["seconds"] = run_worker(
                task, min(TIMEOUTS_S[section], left), cache_dir
            )
            results["device"] = results["device"] or device
        print(table.progress_line(entry), flush=True)
        results["sections"].append(entry)
        results["seconds"] = time.perf_counter() - started
        results["ok"] = table.all_ok(results)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.make_reference:
        try:
            return make_reference(args)
        except ValueError as error:
            print(f"gpu_check.py: error: {str(error).splitlines()[0]}", file=sys.stderr)
            return 2
    results = run_check(args)
    print()
    print(table.render(results))
    print(f"\nwritten to {args.json}")
    return 0 if results["ok"] else 1
