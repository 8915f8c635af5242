"""Turns on TensorFlow's oneDNN CPU kernels on x86-64 unless the user has chosen.

TensorFlow enables oneDNN by default only on some x86 CPUs (not, for example,
on AMD EPYC); elsewhere its convolutions and their gradients run on Eigen. On
a 2-core AMD EPYC, oneDNN trains `resattn` at 128x128 about 20 % faster and
runs its `model.predict` at 128x128 about 1.8x faster (docs/performance.md's speed
section has the tables), so the command lines ask for it before TensorFlow
starts (`tf_resattn_process.configure_process`). TensorFlow reads the setting
once, when it is imported: it takes effect only when set before that, and
`TF_ENABLE_ONEDNN_OPTS=0` (or any value the user sets) always wins. Other
architectures are left alone.
"""

import os
import platform

X86_64 = ("x86_64", "amd64")


def enable_onednn_by_default(environ=os.environ, machine=None):
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` in `environ` on x86-64 when it is unset.

    Args:
        environ: the environment to change (the process's by default).
        machine: the architecture name; `platform.machine()` by default.

    Returns:
        The value `environ` now holds, or None where it is unset.
    """
    machine = platform.machine() if machine is None else machine
    if machine.lower() in X86_64:
        environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return environ.get("TF_ENABLE_ONEDNN_OPTS")
