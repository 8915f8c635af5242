"""Section 2b: training images/s of one variant in one precision, and the accelerator's peak memory.

The model is built and compiled as the trainer does for the `paper` preset (Adam, cross-entropy,
the default metrics), with `jit_compile=True` (on JAX the whole training step is one XLA
program), then trained on a fixed random batch: two steps to compile and warm up, then
`sizes.throughput_steps` timed steps. Matrix products use the backend's default precision (on
recent NVIDIA GPUs, JAX may then use TF32 for float32).
"""

import time

import keras
import numpy as np

from tf_resattn import losses, metrics
from tf_resattn.models import build_model
from tools.gpu_check.memory import peak_memory_bytes
from tools.gpu_check.sizes import NUM_CLASSES

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
"""Name in the table -> Keras dtype policy."""


def measure(variant, precision, sizes):
    """Returns `{"variant", "precision", "batch", "images_per_s", "compile_s", "peak_memory_gib", "parameters"}`."""
    keras.backend.clear_session()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        model = build_model(
            variant, input_shape=(sizes.image_size, sizes.image_size, 1), num_classes=NUM_CLASSES, **sizes.model
        )
        model.compile(
            optimizer=keras.optimizers.Adam(sizes.learning_rate),
            loss=losses.get("ce", NUM_CLASSES),
            metrics=metrics.default_metrics(NUM_CLASSES),
            jit_compile=True,
        )
        rng = np.random.default_rng(0)
        batch = sizes.throughput_batch
        images = rng.random((batch, sizes.image_size, sizes.image_size, 1), dtype=np.float32)
        labels = rng.integers(0, NUM_CLASSES, (batch, sizes.image_size, sizes.image_size)).astype(np.int32)
        start = time.perf_counter()
        for _ in range(2):
            model.train_on_batch(images, labels)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(sizes.throughput_steps):
            logs = model.train_on_batch(images, labels, return_dict=True)
        seconds = time.perf_counter() - start
    finally:
        keras.config.set_dtype_policy(previous)
    peak = peak_memory_bytes()
    return {
        "variant": variant,
        "precision": precision,
        "batch": batch,
        "parameters": int(model.count_params()),
        "images_per_s": batch * sizes.throughput_steps / seconds,
        "compile_s": compile_s,
        "peak_memory_gib": None if peak is None else peak / 2**30,
        "final_loss": float(logs["loss"]),
    }
