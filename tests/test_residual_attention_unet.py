"""`ResidualAttentionUNet`: exported and registered, its arguments checked first, kept in its config, old files load."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT

import tf_resattn
from tf_resattn.models import ResidualAttentionUNet
from tf_resattn.models.residual_attention_unet import check_arguments, default_arguments

RELEASED = REPO_ROOT / "saved_models" / "resattn_medseg100_v1" / "model.keras"  # written before the class existed
SMALL = dict(
    input_shape=(32, 32, 1),
    base_filters=4,
    depth=2,
    cardinality=2,
    bottleneck_width=2,
    num_heads=1,
    key_dim=8,
    bucket_size=16,
    n_hashes=1,
)


def test_the_class_is_exported_and_registered():
    assert tf_resattn.ResidualAttentionUNet is ResidualAttentionUNet
    assert keras.saving.get_registered_name(ResidualAttentionUNet) == "tf_resattn>ResidualAttentionUNet"
    model = tf_resattn.build_model("unet", **SMALL)
    assert type(model) is ResidualAttentionUNet and model.name == "unet"


@pytest.mark.parametrize("variant", tf_resattn.VARIANTS)
def test_get_config_keeps_every_argument_and_rebuilds_the_same_model(variant):
    arguments = {
        **SMALL,
        "variant": variant,
        "attention_levels": [1],
        "max_buckets": 8,
        "seed": 3,
        "norm": "batch",
        "input_normalization": "add_equalized",
    }
    model = ResidualAttentionUNet(**arguments, name="m")
    config = model.get_config()
    assert set(config) == set(default_arguments()) | {"name", "trainable"}
    assert {k: config[k] for k in arguments} == {**arguments, "input_shape": [32, 32, 1]}
    rebuilt = ResidualAttentionUNet.from_config(config)
    assert [(w.path, w.shape) for w in rebuilt.weights] == [(w.path, w.shape) for w in model.weights]


ILLEGAL = [
    ({"variant": "transformer"}, "unknown variant 'transformer'"),
    ({"input_shape": (64, 64)}, "`input_shape` must be (height, width, channels), got (64, 64)"),
    ({"input_shape": (64, 0, 1)}, "input width must be None or a positive integer, got 0"),
    ({"input_shape": (64, 64, True)}, "input channels must be a positive integer, got True"),
    ({"num_classes": 1}, "`num_classes` must be at least 2 (background + one class), got 1"),
    ({"depth": True}, "`depth` must be a positive integer, got True"),
    ({"depth": 9}, "`depth` of 9 poolings is impossible to train"),
    ({"base_filters": 8.0}, "`base_filters` must be a positive integer, got 8.0"),
    ({"attention_levels": "some"}, "`attention_levels` must be 'all', 'none' or decoder levels"),
    ({"attention_levels": [0, True]}, "got [0, True]"),
    (
        {"attention_levels": [0, 2]},
        "`attention_levels` [0, 2] name decoder level 2, but with depth=2 the levels are 0 to 1",
    ),
    ({"key_dim": 0}, "key_dim (dimensions of each head) must be a whole number >= 1, got 0"),
    ({"seed": True}, "`seed` must be an integer or None, got True"),
    ({"norm": "instance"}, "`norm` must be one of ('group', 'batch'), got 'instance'"),
    ({"input_normalization": "zscore"}, "got 'zscore'"),
]


@pytest.mark.parametrize("arguments, message", ILLEGAL)
def test_an_illegal_argument_is_named_with_the_value_it_got(arguments, message):
    with pytest.raises(ValueError) as raised:
        ResidualAttentionUNet(**{**SMALL, **arguments})
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_check_arguments_judges_each_argument_without_building():
    check_arguments({"depth": 2, "attention_levels": [3]})  # levels against depth: the build's to judge
    check_arguments({"variant": "unet", "attention_levels": [5]})
    with pytest.raises(ValueError, match="unknown argument.s. dropout; choose from variant, input_shape"):
        check_arguments({"dropout": 0.1})
    assert ResidualAttentionUNet(variant="unet", attention_levels=[5], **SMALL).get_config()["attention_levels"] == [5]


def test_a_model_built_today_has_the_released_model_s_weights():
    released = keras.models.load_model(RELEASED, compile=False)
    assert type(released) is ResidualAttentionUNet
    built = ResidualAttentionUNet.from_config(released.get_config())
    assert [(w.path, tuple(w.shape)) for w in built.weights] == [(w.path, tuple(w.shape)) for w in released.weights]
    assert [layer.name for layer in built.layers] == [layer.name for layer in released.layers]


def test_the_released_file_written_from_the_old_module_loads_in_a_fresh_process():
    script = (
        "import json, numpy as np, keras, tf_resattn\n"
        f"model = keras.models.load_model({str(RELEASED)!r}, compile=False)\n"
        "images = np.random.default_rng(0).random((1, 128, 128, 1), dtype=np.float32)\n"
        "print(json.dumps([type(model).__module__, type(model).__name__, float(np.asarray(model(images)).sum())]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    module, name, total = json.loads(done.stdout.strip().splitlines()[-1])
    assert (module, name) == ("tf_resattn.models.residual_attention_unet", "ResidualAttentionUNet")
    images = np.random.default_rng(0).random((1, 128, 128, 1), dtype=np.float32)
    assert total == pytest.approx(
        float(np.asarray(keras.models.load_model(RELEASED, compile=False)(images)).sum()), rel=1e-6
    )
