"""The GPU check: CUDA kernels, JAX parity with TensorFlow's CPU results, throughput, a short training run.

    python scripts/gpu_check.py --make-reference gpu_carry/reference     # on a CPU with TensorFlow
    KERAS_BACKEND=jax python scripts/gpu_check.py --reference gpu_carry/reference --data gpu_carry/medseg100
    python scripts/gpu_check.py --dry-run --reference DIR                # tiny sizes on a CPU

See docs/gpu.md and `python scripts/gpu_check.py --help`.
"""

import os
import sys

from tf_resattn_process.commands import gpu_check

if __name__ == "__main__":
    if "--make-reference" not in sys.argv:
        os.environ.setdefault("KERAS_BACKEND", "jax")  # the check runs on JAX; the reference on TensorFlow
    sys.exit(gpu_check())
