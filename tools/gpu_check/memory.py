"""The accelerator's peak memory in this process, where the backend reports it."""

import keras


def peak_memory_bytes():
    """Peak bytes in use on the first JAX device since the process started, or None (CPU, other backends)."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.local_devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use")


def device_description():
    """The backend and its first device, e.g. `"jax: cuda NVIDIA H200"` or `"jax: cpu"`."""
    backend = keras.backend.backend()
    if backend != "jax":
        return backend
    import jax

    device = jax.local_devices()[0]
    return f"jax {jax.__version__}: {device.platform} {getattr(device, 'device_kind', '')}".strip()
