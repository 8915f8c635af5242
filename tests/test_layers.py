"""ResNeXtBlock, ConvBlock, DecoderBlock, the padding and dihedral layers: their numerics and the shared layer checks."""

import keras
import numpy as np
import pytest
from layer_harness import run_layer_test

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
        (lambda: layers.HistogramEqualization(1), "levels"),
        (lambda: layers.HistogramEqualization(True), "levels"),
    ],
)
def test_illegal_arguments_raise(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "size, multiple, padded", [((5, 7), 4, (8, 8)), ((16, 16), 16, (16, 16)), ((1, 33), 8, (8, 40))]
)
def test_pad_to_multiple_and_crop_back(size, multiple, padded):
    x = np.random.default_rng(2).random((1, *size, 2), dtype=np.float32)
    y = layers.PadToMultiple(multiple)(x)
    assert tuple(y.shape) == (1, *padded, 2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y)[:, : size[0], : size[1]], x)
    assert float(keras.ops.sum(y)) == pytest.approx(float(x.sum()), rel=1e-6)
    np.testing.assert_array_equal(layers.CropToReference()([y, x]), x)


def _random(*shape):
    return np.random.default_rng(3).random(shape, dtype=np.float32)


@pytest.mark.parametrize(
    "layer_cls, init_kwargs, input_data, output_shape, trainable, non_trainable",
    [
        pytest.param(
            layers.ResNeXtBlock,
            {"filters": 4, "cardinality": 2, "bottleneck_width": 2},
            _random(2, 8, 8, 4),
            (2, 8, 8, 4),
            10,
            0,
            id="resnext-identity",
        ),
        pytest.param(
            layers.ResNeXtBlock,
            {"filters": 8, "strides": 2, "norm": "batch"},
            _random(2, 7, 8, 3),
            (2, 4, 4, 8),
            19,
            8,
            id="resnext-projection-batch-norm",
        ),
        pytest.param(layers.ConvBlock, {"filters": 6}, _random(2, 8, 8, 3), (2, 8, 8, 6), 6, 0, id="conv"),
        pytest.param(
            layers.DecoderBlock,
            {"filters": 4, "num_heads": 1, "key_dim": 4, "bucket_size": 8, "seed": 2},
            [_random(2, 4, 4, 8), _random(2, 8, 8, 4)],
            (2, 8, 8, 4),
            14,
            1,
            id="decoder-attention",
        ),
        pytest.param(
            layers.DecoderBlock,
            {"filters": 4, "attention": False},
            [_random(2, 3, 4, 8), _random(2, 6, 8, 4)],
            (2, 6, 8, 4),
            8,
            0,
            id="decoder-plain",
        ),
        pytest.param(layers.PadToMultiple, {"multiple": 4}, _random(2, 5, 6, 1), (2, 8, 8, 1), 0, 0, id="pad"),
        pytest.param(
            layers.CropToReference, {}, [_random(2, 8, 8, 3), _random(2, 5, 6, 1)], (2, 5, 6, 3), 0, 0, id="crop"
        ),
        pytest.param(
            layers.DihedralTransform,
            {"turns": 3, "flip": True, "inverse": True},
            _random(2, 5, 7, 2),
            (2, 7, 5, 2),
            0,
            0,
            id="dihedral",
        ),
        pytest.param(layers.DihedralViews, {}, _random(2, 5, 5, 2), (16, 5, 5, 2), 0, 0, id="dihedral-views"),
        pytest.param(layers.DihedralMean, {}, _random(16, 5, 5, 2), (2, 5, 5, 2), 0, 0, id="dihedral-mean"),
        pytest.param(
            layers.HistogramEqualization, {"levels": 64}, _random(2, 5, 7, 2), (2, 5, 7, 2), 0, 0, id="equalize"
        ),
    ],
)
def test_layer_contract(layer_cls, init_kwargs, input_data, output_shape, trainable, non_trainable):
    run_layer_test(layer_cls, init_kwargs, input_data, output_shape, trainable, non_trainable)
