"""The loss and its gradients for one batch on the current backend (the one backend-specific part of the check).

`loss_and_gradients(model, loss, images, labels)` returns NumPy values of the mean loss, the
probabilities, the gradient with respect to the images, and the gradients of every trainable
variable (in `model.trainable_variables` order), computed in inference mode (the model has no
dropout, and group normalisation behaves alike in both modes). TensorFlow uses a
`GradientTape`; JAX differentiates `model.stateless_call` under `jax.jit`, with float32 matrix
products at full precision (`jax.default_matmul_precision("highest")`: no TF32 on GPUs).
"""

import keras
import numpy as np


def loss_and_gradients(model, loss, images, labels):
    """Returns `(loss float, probabilities [B, H, W, C], d_images [B, H, W, 1], [d_variable, ...])` as NumPy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(model, loss, images, labels)
    if backend == "jax":
        return _jax(model, loss, images, labels)
    raise ValueError(f"loss_and_gradients supports the tensorflow and jax backends, not {backend!r}; set KERAS_BACKEND")


def _tensorflow(model, loss, images, labels):
    import tensorflow as tf

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        probabilities = model(x, training=False)
        value = loss(labels, probabilities)
    grads = tape.gradient(value, [x] + list(model.trainable_variables))
    return float(value), probabilities.numpy(), grads[0].numpy(), [g.numpy() for g in grads[1:]]


def _jax(model, loss, images, labels):
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def objective(trainable_values, x):
        probabilities, _ = model.stateless_call(trainable_values, non_trainable, x, training=False)
        return loss(labels, probabilities), probabilities

    step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1), has_aux=True))
    with jax.default_matmul_precision("highest"):
        (value, probabilities), (d_trainable, d_images) = step(trainable, images)
    return float(value), np.asarray(probabilities), np.asarray(d_images), [np.asarray(g) for g in d_trainable]
