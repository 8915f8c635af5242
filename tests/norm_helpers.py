"""Shared helpers of the fused-normalisation tests: a skip without the kernels, our layer beside Keras's, outputs with gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tf_resattn import ops

needs_compiled_kernels = pytest.mark.skipif(
    not ops.compiled_kernels(tf.float32, fused=True)[0],
    reason=f"the compiled CPU kernels do not run here: {ops.compiled_kernels(tf.float32, fused=True)[1]}",
)


def paired_layers(ours_class, keras_class, shape, seed, **kwargs):
    """`ours_class(**kwargs)` and `keras_class(**kwargs)`, built for `shape`, with the same random weights."""
    rng = np.random.default_rng(seed)
    ours, reference = ours_class(**kwargs), keras_class(**kwargs)
    for layer in (ours, reference):
        layer.build(shape)
    for weight in range(len(ours.weights)):
        value = rng.normal(size=ours.weights[weight].shape).astype(np.float32)
        ours.weights[weight].assign(value)
        reference.weights[weight].assign(value)
    return ours, reference


def output_and_gradients(layer, x, upstream):
    """`[layer(x), d/dx, d/d(each trainable weight)]` of `sum(layer(x) * upstream)`, as NumPy arrays."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        output = layer(x)
        loss = tf.reduce_sum(output * upstream)
    return [output.numpy(), *(g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights]))]


def assert_matches_keras(ours, reference, shape, scale, offset, output_atol, gradient_atol):
    """Asserts that `ours` and `reference` agree on random `x` (`* scale + offset`): outputs and gradients of x and weights."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=shape) * scale + offset, tf.float32)
    upstream = tf.constant(rng.normal(size=shape), tf.float32)
    got, want = output_and_gradients(ours, x, upstream), output_and_gradients(reference, x, upstream)
    np.testing.assert_allclose(got[0], want[0], atol=output_atol, rtol=1e-5)
    for ours_gradient, keras_gradient in zip(got[1:], want[1:]):  # x, then the weights
        np.testing.assert_allclose(ours_gradient, keras_gradient, atol=gradient_atol, rtol=1e-4)
