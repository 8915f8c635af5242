"""tf_resattn.layers.GroupNormalization: the shared layer checks, the compiled op against Keras's layer, old files, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_harness import run_layer_test
from norm_helpers import assert_matches_keras, needs_compiled_kernels, paired_layers

from tf_resattn import build_model, layers, ops
from tf_resattn.layers import normalization
from tf_resattn.ops import compiled


def _pair(shape, groups, seed, **kwargs):
    """Our layer and Keras's, built for `shape`, with the same random gamma and beta."""
    return paired_layers(
        layers.GroupNormalization, keras.layers.GroupNormalization, shape, seed, groups=groups, **kwargs
    )


def test_layer_contract():
    maps = np.random.default_rng(0).normal(size=(2, 5, 5, 6)).astype(np.float32)
    run_layer_test(layers.GroupNormalization, {"groups": 2}, maps, (2, 5, 5, 6), expected_num_trainable_weights=2)


@needs_compiled_kernels
@pytest.mark.parametrize(
    "shape, groups, scale, offset",
    [
        ((2, 64, 64, 32), 8, 1.0, 0.0),  # full resolution: many pixels, few channels (several blocks)
        ((3, 4, 4, 512), 8, 2.0, 0.5),  # deep down: few pixels, many channels
        ((2, 5, 7, 12), 4, 3.0, 1.0),  # 12 channels: not a multiple of 8, groups of 3
        ((1, 3, 3, 6), 6, 1e-2, 5.0),  # one channel per group; small spread about a large mean
        ((4, 9, 9, 5), 1, 1.0, -1.0),  # one group of 5 channels
        ((2, 30, 10), 2, 1.0, 0.0),  # a rank-3 sequence of 10 channels
    ],
)
def test_matches_keras_group_norm(shape, groups, scale, offset):
    assert_matches_keras(*_pair(shape, groups, 0), shape, scale, offset, output_atol=5e-5, gradient_atol=2e-4)


@needs_compiled_kernels
def test_gradients_match_finite_differences():
    ours, _ = _pair((1, 3, 4, 6), 3, 4)
    x = tf.constant(np.random.default_rng(5).normal(size=(1, 3, 4, 6)), tf.float32)
    theoretical, numerical = tf.test.compute_gradient(lambda t: ours(t), [x], delta=1e-2)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=5e-3)


@needs_compiled_kernels
def test_traces_to_the_fused_op_and_to_keras_under_pure_path():
    layer = layers.GroupNormalization(groups=4)
    layer.build((None, None, None, 16))

    def op_types():
        spec = tf.TensorSpec((None, None, None, 16))
        graph = tf.function(layer).get_concrete_function(spec).graph
        return {op.type for op in graph.get_operations()}

    assert "TfResattn>GroupNorm" in op_types()
    with ops.pure_path():
        assert "TfResattn>GroupNorm" not in op_types()


def test_model_blocks_use_the_fused_layer():
    model = build_model("unet", input_shape=(32, 32, 1), base_filters=8, depth=2)
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.GroupNormalization)]
    assert norms and all(isinstance(layer, layers.GroupNormalization) for layer in norms)


def test_files_saved_with_keras_group_norm_load_unchanged(tmp_path, monkeypatch):
    """A model saved when the blocks built Keras's own layer loads into the fused one, same outputs."""
    with monkeypatch.context() as patch:
        patch.setattr(normalization, "GroupNormalization", keras.layers.GroupNormalization)
        old = build_model("resattn", input_shape=(32, 32, 1), base_filters=8, depth=2)
    assert not any(isinstance(layer, layers.GroupNormalization) for layer in old._flatten_layers())
    for weight in old.weights:  # move gamma and beta off their initial values
        weight.assign(weight + np.random.default_rng(6).normal(size=weight.shape).astype(np.float32) * 0.1)
    old.save(tmp_path / "old.keras")
    images = np.random.default_rng(7).random((2, 32, 32, 1), dtype=np.float32)
    restored = keras.models.load_model(tmp_path / "old.keras")
    assert any(isinstance(layer, layers.GroupNormalization) for layer in restored._flatten_layers())
    for before, after in zip(old.weights, restored.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_allclose(restored.predict(images, verbose=0), old.predict(images, verbose=0), atol=1e-5)


@needs_compiled_kernels
@pytest.mark.parametrize("kwargs", [{"axis": 1}, {"center": False}, {"scale": False}])
def test_other_settings_are_keras_own(kwargs):
    ours, reference = _pair((2, 4, 6, 4), 2, 2, **kwargs)
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 4, 6, 4)), tf.float32)
    np.testing.assert_array_equal(ours(x).numpy(), reference(x).numpy())


@needs_compiled_kernels
@pytest.mark.parametrize(
    "x_shape, gamma_shape, beta_shape, groups, message",
    [
        ((2, 4, 8), (7,), (8,), 2, "must be \\[C\\]"),
        ((2, 4, 8), (8,), (8, 1), 2, "beta"),
        ((2, 4, 0), (0,), (0,), 1, "C > 0"),
        ((2, 4, 6), (6,), (6,), 4, "must divide"),
        ((8,), (8,), (8,), 1, "\\[B, \\.\\.\\., C\\]"),
    ],
)
def test_op_rejects_bad_input(x_shape, gamma_shape, beta_shape, groups, message):
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
        compiled.group_norm(tf.zeros(x_shape), tf.zeros(gamma_shape), tf.zeros(beta_shape), groups, 1e-3)
