"""build_model: shapes of every variant, illegal arguments, save/load, a few real training steps."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf_resattn
from tf_resattn.layers import DecoderBlock

# Small widths keep these tests fast; depth 4 keeps the padding to multiples of 16.
TINY = dict(base_filters=4, depth=4, cardinality=2, bottleneck_width=2, num_heads=1, key_dim=8, n_hashes=1)


@pytest.mark.parametrize("variant", tf_resattn.VARIANTS)
@pytest.mark.parametrize("size", [(64, 64), (96, 128), (369, 369), (512, 512)])
def test_output_shape_and_probabilities(variant, size):
    model = tf_resattn.build_model(variant, **TINY)
    images = np.random.default_rng(0).random((1, *size, 1), dtype=np.float32)
    probabilities = keras.ops.convert_to_numpy(model(images))
    assert probabilities.shape == (1, *size, 4)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "variant, input_shape, expected",
    [
        ("resattn", (37, 53, 1), (None, 37, 53, 4)),
        ("unet", (None, None, 3), (None, None, None, 4)),
    ],
)
def test_symbolic_output_shape(variant, input_shape, expected):
    assert tf_resattn.build_model(variant, input_shape=input_shape, **TINY).output_shape == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variant": "transformer"}, "unknown variant"),
        ({"num_classes": 1}, "num_classes"),
        ({"base_filters": 0}, "base_filters"),
        ({"depth": 0}, "depth"),
        ({"depth": 12}, "depth"),
        ({"cardinality": -2}, "cardinality"),
        ({"bottleneck_width": 2.5}, "bottleneck_width"),
        ({"attention_levels": [0, 4]}, "attention_levels"),
        ({"attention_levels": "some"}, "attention_levels"),
        ({"bucket_size": 0}, "bucket_size"),
        ({"n_hashes": 0}, "n_hashes"),
        ({"input_shape": (64, 64)}, "input_shape"),
        ({"input_shape": (64, 0, 1)}, "height|width"),
        ({"input_shape": (64, 64, None)}, "channels"),
        ({"norm": "instance"}, "norm"),
        ({"max_buckets": 5}, "max_buckets"),
    ],
)
def test_illegal_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tf_resattn.build_model(**{"depth": 2, **kwargs})


def test_attention_levels_select_decoder_blocks():
    model = tf_resattn.build_model("resattn", attention_levels=[0, 2], **TINY)
    with_attention = [layer.name for layer in model.layers if isinstance(layer, DecoderBlock) and layer.attention]
    assert sorted(with_attention) == ["decoder_0", "decoder_2"]
    plain = tf_resattn.build_model("unet", attention_levels=[0, 2], **TINY)
    assert not any(isinstance(layer, DecoderBlock) and layer.attention for layer in plain.layers)


def test_untrained_attention_branch_is_the_identity():
    """The residual attention starts at zero: the decoder is exactly a U-Net decoder."""
    x = np.random.default_rng(1).random((2, 8, 8, 16), dtype=np.float32)
    skip = np.random.default_rng(2).random((2, 16, 16, 8), dtype=np.float32)
    attending = DecoderBlock(8, attention=True, num_heads=1, key_dim=8, bucket_size=16, seed=0)
    plain = DecoderBlock(8, attention=False)
    attending([x, skip]), plain([x, skip])
    plain.upsample.set_weights(attending.upsample.get_weights())
    plain.convs.set_weights(attending.convs.get_weights())
    np.testing.assert_allclose(attending([x, skip]), plain([x, skip]), atol=1e-6)


def _trained_copy(variant, steps=2):
    model = tf_resattn.build_model(variant, input_shape=(None, None, 1), **{**TINY, "depth": 2, "bucket_size": 16})
    model.compile(keras.optimizers.Adam(1e-2), tf_resattn.losses.get("ce", 4), jit_compile=False)
    rng = np.random.default_rng(3)
    images = rng.random((2, 32, 32, 1), dtype=np.float32)
    labels = rng.integers(0, 4, (2, 32, 32))
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return model


@pytest.mark.parametrize("variant", tf_resattn.VARIANTS)
def test_save_and_load_gives_identical_outputs(variant, tmp_path):
    model = _trained_copy(variant)
    images = np.random.default_rng(4).random((2, 40, 48, 1), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(images))
    path = tmp_path / f"{variant}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(images)), expected)


def test_loads_in_a_fresh_process(tmp_path):
    model = _trained_copy("resattn")
    images = np.random.default_rng(5).random((1, 64, 64, 1), dtype=np.float32)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", keras.ops.convert_to_numpy(model(images)))
    script = (
        "import json, sys, numpy as np, keras, tf_resattn\n"
        f"model = keras.models.load_model({str(tmp_path / 'model.keras')!r})\n"
        f"images = np.load({str(tmp_path / 'images.npy')!r})\n"
        f"expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "print(json.dumps(float(np.abs(keras.ops.convert_to_numpy(model(images)) - expected).max())))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == 0.0


def test_training_on_real_slices_lowers_the_loss(medseg100_dir):
    from tf_resattn.data import load_slices

    slices = load_slices(medseg100_dir, image_size=48)
    images, masks = slices.images[:8], slices.masks[:8].astype(np.int32)
    model = tf_resattn.build_model("resattn", base_filters=8, depth=2, num_heads=1, key_dim=8, bucket_size=32)
    model.compile(keras.optimizers.Adam(3e-3), tf_resattn.losses.get("ce", 4), jit_compile=False)
    before = model.evaluate(images, masks, verbose=0)
    model.fit(images, masks, batch_size=4, epochs=6, verbose=0)
    after = model.evaluate(images, masks, verbose=0)
    assert after < 0.8 * before
