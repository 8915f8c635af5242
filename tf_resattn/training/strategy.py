"""TensorFlow-only runtime settings: distribution strategy, mixed precision, determinism."""

import contextlib

import keras
import tensorflow as tf


def choose_strategy(name):
    """Returns the `tf.distribute.Strategy` for `--strategy`.

    Args:
        name: "auto" (MirroredStrategy when more than one GPU is visible, else the default strategy),
            "default" (one device) or "mirrored" (all GPUs; without GPUs, all logical CPU devices,
            which is how the multi-replica path is tested on a CPU-only machine).
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def mixed_precision_policy():
    """The mixed policy for this machine: float16 on GPUs, bfloat16 on CPUs (no float16 kernels there)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def runtime(cfg):
    """Applies `cfg`'s seed, determinism and precision; yields the strategy; restores the precision policy.

    Args:
        cfg: a `TrainingConfig` (uses seed, deterministic, mixed_precision, strategy).

    Yields:
        The `tf.distribute.Strategy`; the global batch is `cfg.batch_size * strategy.num_replicas_in_sync`.
    """
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous = keras.config.dtype_policy()
    if cfg.mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        yield choose_strategy(cfg.strategy)
    finally:
        keras.config.set_dtype_policy(previous)
