"""Memory in prediction: the slices per model call when the caller gives none, and the process's peak.

`auto_batch_size` decides the batch from the image sizes and the free memory.
A batch holds, per slice, the model's activations at its input size (times 8 with test-time
augmentation, whose eight views run as one batch) and the slice's frame-sized arrays while it is
framed and pasted back. The batch is the largest that fits `MEMORY_SHARE` of the memory the system
reports free, with at most `MAX_BATCH` images per model call (the model's time per image is flat
beyond it on a CPU: see docs/performance.md; with TTA one slice, eight views) and at least 1.
"""

import os
import sys

import numpy as np

MAX_BATCH = 8
MEMORY_SHARE = 0.25
ACTIVATION_BYTES_PER_PIXEL = 1100
"""Peak memory the model takes per pixel of one input during prediction, measured on the `cpu` preset's
`resattn` at 128x128 (17.5 MB a slice: the peak RSS of batches of 1 to 48, `model.predict_on_batch`)."""
FRAME_BYTES_PER_PIXEL_AND_CLASS = 12
"""Frame-sized probabilities, the raw slice, its lung field and label map, per pixel and class."""


def auto_batch_size(model_size, frame_size, num_classes, tta=False, free_bytes=None):
    """Slices per model call.

    Args:
        model_size: (h, w) the model takes, or None when it takes each slice at its own size.
        frame_size: (H, W) of the slices.
        num_classes: classes the model predicts.
        tta: the eight views of each slice run in the same batch.
        free_bytes: memory free for the batch; None asks the system (`free_memory`).

    Returns:
        int in [1, `MAX_BATCH`] (in [1, `MAX_BATCH` // 8] with `tta`); the most when the free memory is unknown.
    """
    free_bytes = free_memory() if free_bytes is None else free_bytes
    most = max(1, MAX_BATCH // (8 if tta else 1))
    if free_bytes is None:
        return most
    model_pixels = int(np.prod(model_size if model_size is not None else frame_size))
    per_slice = (
        model_pixels * ACTIVATION_BYTES_PER_PIXEL * (8 if tta else 1)
        + int(np.prod(frame_size)) * FRAME_BYTES_PER_PIXEL_AND_CLASS * num_classes
    )
    return int(np.clip(MEMORY_SHARE * free_bytes // per_slice, 1, most))


def free_memory():
    """Bytes of memory available to a new allocation (Linux `MemAvailable`, else the free pages), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def peak_memory_mb():
    """The process's own peak resident memory so far in MB (MiB), or None where the system does not say.

    On Linux the memory map's high-water mark (`VmHWM`): `getrusage`'s `ru_maxrss` carries a parent's
    peak through fork and exec, so a process started from a large one (a benchmark that imported
    TensorFlow) reported at least its parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 2**10, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 2**10, 1)
