"""Weights drawn from NumPy with a fixed seed, so that two backends hold the same bits without carrying them.

Keras's initialisers draw from each backend's own generator, so the same `seed` gives different
weights under TensorFlow and JAX. `assign_seeded_weights` overwrites every float variable, in
`model.weights` order, with values from `numpy.random.Generator(PCG64(seed)).random` (uniform
doubles, a stream NumPy keeps stable), rounded to float32:

- kernels (rank >= 2; also the LSH rotations): uniform with variance `1 / fan_in`,
  `fan_in` = the product of all but the last dimension;
- vectors (biases, norm scales and offsets): the built value plus uniform noise in [-0.1, 0.1),
  so no projection stays at its zero initialisation (the decoder's attention output
  projection starts at zero and would hide the attention from the forward pass).

`weight_checksums` lets the other side verify that it holds the same weights.
"""

import math

import numpy as np


def assign_seeded_weights(model, seed=0):
    """Overwrites `model`'s float variables as the module docstring says; returns `model`."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if not _is_float(variable):
            continue
        shape = tuple(variable.shape)
        uniform = rng.random(shape) * 2.0 - 1.0
        if len(shape) >= 2:
            value = uniform * math.sqrt(3.0 / max(1, math.prod(shape[:-1])))
        else:
            value = np.asarray(variable.numpy(), dtype=np.float64) + 0.1 * uniform
        variable.assign(value.astype(np.float32))
    return model


def weight_checksums(model):
    """`[{"path", "shape", "sum", "sum_sq"}]` of every float variable, in `model.weights` order."""
    rows = []
    for variable in model.weights:
        if _is_float(variable):
            value = np.asarray(variable.numpy(), dtype=np.float64)
            rows.append(
                {
                    "path": variable.path,
                    "shape": list(value.shape),
                    "sum": float(value.sum()),
                    "sum_sq": float((value * value).sum()),
                }
            )
    return rows


def _is_float(variable):
    return "float" in str(variable.dtype)
