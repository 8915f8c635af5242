"""ResNeXtBlock, ConvBlock, padding layers, and the config/save round trip of every public layer."""

import keras
import numpy as np
import pytest

from tf_resattn import layers


@pytest.mark.parametrize(
    "kwargs, input_shape, expected_shape, projection",
    [
        ({"filters": 16}, (2, 12, 12, 16), (2, 12, 12, 16), False),
        ({"filters": 32}, (2, 12, 12, 16), (2, 12, 12, 32), True),
        ({"filters": 16, "strides": 2}, (2, 12, 13, 16), (2, 6, 7, 16), True),
        ({"filters": 8, "cardinality": 4, "bottleneck_width": 1, "norm": "batch"}, (1, 5, 7, 3), (1, 5, 7, 8), True),
    ],
)
def test_resnext_block_shapes_and_shortcut(kwargs, input_shape, expected_shape, projection):
    block = layers.ResNeXtBlock(**kwargs)
    out = block(np.random.default_rng(0).random(input_shape, dtype=np.float32))
    assert tuple(out.shape) == expected_shape
    assert block.compute_output_shape(input_shape) == expected_shape
    assert block.needs_projection is projection
    assert len(block.branches) == block.cardinality
    assert all(branch.filters == block.bottleneck_width for branch in block.branches)


@pytest.mark.parametrize("cardinality, width, strides", [(4, 2, 1), (2, 3, 2)])
def test_resnext_branches_equal_a_grouped_convolution(cardinality, width, strides):
    """The aggregated branches compute exactly Keras's grouped Conv2D with the same weights."""
    block = layers.ResNeXtBlock(8, cardinality=cardinality, bottleneck_width=width, strides=strides)
    x = np.random.default_rng(4).normal(size=(2, 9, 10, cardinality * width)).astype(np.float32)
    block(np.zeros((1, 9, 10, 5), np.float32))
    grouped = keras.layers.Conv2D(
        cardinality * width, 3, strides=strides, padding="same", use_bias=False, groups=cardinality
    )
    grouped.build(x.shape)
    grouped.set_weights([np.concatenate([b.get_weights()[0] for b in block.branches], axis=-1)])
    parts = np.split(x, cardinality, axis=-1)
    aggregated = np.concatenate([keras.ops.convert_to_numpy(b(p)) for b, p in zip(block.branches, parts)], axis=-1)
    np.testing.assert_allclose(aggregated, keras.ops.convert_to_numpy(grouped(x)), atol=1e-5)


def test_resnext_identity_shortcut_passes_the_input_through():
    """With the residual branch's last normalisation zeroed, the block is ReLU(input)."""
    block = layers.ResNeXtBlock(8, cardinality=2, bottleneck_width=2)
    x = np.random.default_rng(1).normal(size=(1, 6, 6, 8)).astype(np.float32)
    block(x)
    gamma, beta = block.norms[2].get_weights()
    block.norms[2].set_weights([np.zeros_like(gamma), np.zeros_like(beta)])
    np.testing.assert_allclose(block(x), np.maximum(x, 0), atol=1e-6)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: layers.ResNeXtBlock(0), "filters"),
        (lambda: layers.ResNeXtBlock(16, cardinality=0), "cardinality"),
        (lambda: layers.ResNeXtBlock(16, bottleneck_width=-4), "bottleneck_width"),
        (lambda: layers.ResNeXtBlock(16, strides=3), "strides"),
        (lambda: layers.ResNeXtBlock(16, norm="layer"), "norm"),
        (lambda: layers.ConvBlock(-1), "filters"),
        (lambda: layers.PadToMultiple(0), "multiple"),
        (lambda: layers.DecoderBlock(0), "filters"),
    ],
)
def test_illegal_arguments_raise(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("size, multiple, padded", [((5, 7), 4, (8, 8)), ((16, 16), 16, (16, 16)), ((1, 33), 8, (8, 40))])
def test_pad_to_multiple_and_crop_back(size, multiple, padded):
    x = np.random.default_rng(2).random((1, *size, 2), dtype=np.float32)
    y = layers.PadToMultiple(multiple)(x)
    assert tuple(y.shape) == (1, *padded, 2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y)[:, : size[0], : size[1]], x)
    assert float(keras.ops.sum(y)) == pytest.approx(float(x.sum()), rel=1e-6)
    np.testing.assert_array_equal(layers.CropToReference()([y, x]), x)


LAYER_CASES = [
    (lambda: layers.ResNeXtBlock(8, cardinality=2, bottleneck_width=2), [(1, 8, 8, 4)]),
    (lambda: layers.ConvBlock(6), [(1, 8, 8, 3)]),
    (lambda: layers.LSHSelfAttention(num_heads=2, key_dim=4, bucket_size=8, seed=1), [(1, 40, 6)]),
    (lambda: layers.DecoderBlock(4, num_heads=1, key_dim=4, bucket_size=8, seed=2), [(1, 4, 4, 8), (1, 8, 8, 4)]),
    (lambda: layers.PadToMultiple(4), [(1, 5, 6, 1)]),
    (lambda: layers.LayerNormalization(), [(1, 10, 6)]),
    (lambda: layers.DihedralTransform(3, flip=True, inverse=True), [(1, 5, 7, 2)]),
    (lambda: layers.GroupNormalization(groups=2), [(1, 5, 5, 6)]),
]


@pytest.mark.parametrize("factory, shapes", LAYER_CASES)
def test_config_round_trip_and_save_load(factory, shapes, tmp_path):
    layer = factory()
    rng = np.random.default_rng(3)
    inputs = [keras.Input(shape[1:]) for shape in shapes]
    outputs = layer(inputs if len(inputs) > 1 else inputs[0])
    model = keras.Model(inputs, outputs)
    values = [rng.random(shape, dtype=np.float32) for shape in shapes]
    expected = keras.ops.convert_to_numpy(model(values))

    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("tf_resattn>")

    model.save(tmp_path / "layer.keras")
    restored = keras.models.load_model(tmp_path / "layer.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(values)), expected)
