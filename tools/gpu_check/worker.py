"""One section of the check in a process of its own: `python -m tools.gpu_check.worker TASK_JSON`.

`TASK_JSON` is `{"section": ..., "sizes": CheckSizes.to_dict(), ...}`; the worker prints its
result as one last line `RESULT_PREFIX + json`. The orchestrator (`cli.py`) reads that line,
so a crash, a time-out or running out of memory costs that section alone.
"""

import json
import sys
import tempfile

RESULT_PREFIX = "GPU_CHECK_RESULT "


def run_task(task):
    """Runs one task dict; returns its JSON-serialisable result."""
    from tools.gpu_check.sizes import sizes_from_dict

    section = task["section"]
    if section == "kernels":
        from tools.gpu_check import kernels

        cupy_rows, cupy_reason = kernels.cupy_cases()
        with tempfile.TemporaryDirectory() as build_dir:
            nvcc_rows, nvcc_reason = kernels.nvcc_cases(build_dir)
        return {"cupy": cupy_rows, "cupy_skipped": cupy_reason, "nvcc": nvcc_rows, "nvcc_skipped": nvcc_reason}
    sizes = sizes_from_dict(task["sizes"])
    if section == "parity":
        from tools.gpu_check.reference import compare_reference

        return compare_reference(task["reference"])
    if section == "throughput":
        from tools.gpu_check.throughput import measure

        return measure(task["variant"], task["precision"], sizes)
    if section == "training":
        from tools.gpu_check.training_run import train_and_test

        return train_and_test(task["data"], task["split"], sizes)
    raise ValueError(f"unknown section {section!r}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    task = json.loads(argv[0])
    result = run_task(task)
    from tools.gpu_check.memory import device_description

    print(RESULT_PREFIX + json.dumps({"device": device_description(), "result": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
