"""The GPU check: CUDA kernels, JAX parity with TensorFlow's CPU results, throughput, a short training run.

    python scripts/gpu_check.py --make-reference gpu_carry/reference     # on a CPU with TensorFlow
    KERAS_BACKEND=jax python scripts/gpu_check.py --reference gpu_carry/reference --data gpu_carry/medseg100
    python scripts/gpu_check.py --dry-run --reference DIR                # tiny sizes on a CPU

See docs/gpu.md and `python scripts/gpu_check.py --help`. The check's code is `tools/gpu_check/`,
a development tool of the repository, not part of the package.
"""

import os
import pathlib
import sys

import tf_resattn_process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/: beside the package, outside the wheel


def run_check():
    """`tools.gpu_check.cli.main()`, imported here so that a missing optional dependency is one line."""
    from tools.gpu_check.cli import main

    return main()


if __name__ == "__main__":
    if "--make-reference" not in sys.argv:
        os.environ.setdefault("KERAS_BACKEND", "jax")  # the check runs on JAX; the reference on TensorFlow
    tf_resattn_process.configure_process()
    from tf_resattn.command_line import run_with_one_line_errors

    sys.exit(run_with_one_line_errors(os.path.basename(sys.argv[0]), run_check, ()))
