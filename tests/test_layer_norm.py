"""tf_resattn.layers.LayerNormalization: the shared layer checks, the compiled op against Keras's layer, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_harness import run_layer_test
from norm_helpers import assert_matches_keras, needs_compiled_kernels, paired_layers

from tf_resattn import layers, ops
from tf_resattn.ops import compiled


def _pair(shape, seed, **kwargs):
    """Our layer and Keras's, built for `shape`, with the same random gamma and beta."""
    return paired_layers(layers.LayerNormalization, keras.layers.LayerNormalization, shape, seed, **kwargs)


def test_layer_contract():
    tokens = np.random.default_rng(0).normal(size=(2, 10, 6)).astype(np.float32)
    run_layer_test(layers.LayerNormalization, {"epsilon": 1e-4}, tokens, (2, 10, 6), expected_num_trainable_weights=2)


@needs_compiled_kernels
@pytest.mark.parametrize(
    "shape, scale, offset",
    [
        ((2, 300, 64), 3.0, 1.0),  # the decoder's tokens
        ((5, 7), 1e-3, -2.0),  # small deviations about a large mean
        ((1, 4, 4, 24), 10.0, 0.0),  # a feature map; 24 channels: not a multiple of 8
        ((3, 1), 1.0, 0.0),  # one channel: the output is beta
    ],
)
def test_matches_keras_layer_norm(shape, scale, offset):
    assert_matches_keras(*_pair(shape, 0), shape, scale, offset, output_atol=2e-5, gradient_atol=1e-4)


@needs_compiled_kernels
def test_traces_to_the_fused_op_and_to_keras_under_pure_path():
    layer = layers.LayerNormalization()
    layer.build((None, 16))

    def op_types():
        graph = tf.function(layer).get_concrete_function(tf.TensorSpec((None, 16))).graph
        return {op.type for op in graph.get_operations()}

    assert "TfResattn>LayerNorm" in op_types()
    with ops.pure_path():
        assert "TfResattn>LayerNorm" not in op_types()


@needs_compiled_kernels
@pytest.mark.parametrize("kwargs", [{"axis": 1}, {"center": False}, {"rms_scaling": True}])
def test_other_settings_are_keras_own(kwargs):
    ours, reference = _pair((2, 6, 8), 2, **kwargs)
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 6, 8)), tf.float32)
    np.testing.assert_array_equal(ours(x).numpy(), reference(x).numpy())


@needs_compiled_kernels
@pytest.mark.parametrize(
    "x_shape, gamma_shape, beta_shape, message",
    [
        ((4, 8), (7,), (8,), "must be \\[C\\]"),
        ((4, 8), (8,), (8, 1), "beta"),
        ((4, 0), (0,), (0,), "C > 0"),
    ],
)
def test_op_rejects_bad_input(x_shape, gamma_shape, beta_shape, message):
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
        compiled.layer_norm(tf.zeros(x_shape), tf.zeros(gamma_shape), tf.zeros(beta_shape), 1e-3)
