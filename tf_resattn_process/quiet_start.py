"""Imports TensorFlow without its start-up noise, keeping its real errors and warnings.

On a machine without a GPU, `import tensorflow` and its first device query
print half a dozen lines from native code before Python can filter anything:
absl's "All log messages before absl::InitializeLog()", "Could not find cuda
drivers", the CPU-feature notice, "oneDNN custom operations are on" (the
command lines turn them on, see `onednn`) and "failed call to cuInit". They say
nothing a user can act on and bury the command's first line.

`import_tensorflow()` runs the import and the device query with the process's
stderr (file descriptor 2) sent to a temporary file, then writes back every
line that is not one of those notices. A cuInit failure is dropped only where
the machine has no NVIDIA driver (`/proc/driver/nvidia` absent); with a
driver, it is a real error and passes through.
"""

import importlib.util
import os
import re
import sys
import tempfile

NOISE = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
    re.compile(r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"),
    re.compile(r"port\.cc:\d+\] oneDNN custom operations are on\."),
)
NO_DRIVER_NOISE = re.compile(r"cuda_platform\.cc:\d+\] failed call to cuInit")


def keras_backend_is_tensorflow():
    """True unless `KERAS_BACKEND` names another backend."""
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() in ("", "tensorflow")


def kept_lines(text, has_nvidia_driver):
    """The lines of `text` (captured start-up stderr) that are not start-up noise."""
    noise = NOISE if has_nvidia_driver else (*NOISE, NO_DRIVER_NOISE)
    return [line for line in text.splitlines() if not any(pattern.search(line) for pattern in noise)]


def import_tensorflow():
    """Imports TensorFlow and lists its devices with the start-up noise filtered out.

    Does nothing when TensorFlow is already imported, is not installed, or is
    not Keras's backend. An import error still raises, after everything
    captured has been written back.
    """
    if "tensorflow" in sys.modules or not keras_backend_is_tensorflow():
        return
    if importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    failed = True
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            lines = text.splitlines() if failed else kept_lines(text, os.path.exists("/proc/driver/nvidia"))
            if lines:
                sys.stderr.write("\n".join(lines) + "\n")
