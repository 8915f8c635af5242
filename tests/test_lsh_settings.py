"""The LSH settings: one set of defaults and one rule, the same refusal from every entry point."""

import re

import pytest

import tf_resattn
from tf_resattn.layers import DecoderBlock, LSHSelfAttention
from tf_resattn.layers.lsh_settings import LSH_DEFAULTS
from tf_resattn.training.config import TrainingConfig, resolve_config

LAYER_ARGUMENTS = {"num_heads": 2, "key_dim": 8}


def _training_config(**setting):
    return resolve_config("smoke", overrides=setting)


def _build_model(**setting):
    return tf_resattn.build_model(depth=2, **setting)


def _lsh_self_attention(**setting):
    return LSHSelfAttention(**{**LAYER_ARGUMENTS, **setting})


def _decoder_block(**setting):
    return DecoderBlock(8, attention=False, **setting)


ENTRY_POINTS = {
    "resolve_config": _training_config,
    "build_model": _build_model,
    "LSHSelfAttention": _lsh_self_attention,
    "DecoderBlock": _decoder_block,
}
BAD_SETTINGS = [
    ("num_heads", 0, "num_heads (attention heads) must be a whole number >= 1, got 0; pass e.g. num_heads=2"),
    ("key_dim", -8, "key_dim (dimensions of each head) must be a whole number >= 1, got -8; pass e.g. key_dim=32"),
    ("bucket_size", 0, "bucket_size (tokens per chunk) must be a whole number >= 1, got 0; pass e.g. bucket_size=64"),
    ("n_hashes", -1, "n_hashes (hash rounds) must be a whole number >= 1, got -1; pass e.g. n_hashes=4"),
]
NOT_IN_TRAINING = [
    ("n_hashes", True, "n_hashes (hash rounds) must be a whole number >= 1, got True; pass e.g. n_hashes=4"),
    ("key_dim", 8.0, "key_dim (dimensions of each head) must be a whole number >= 1, got 8.0; pass e.g. key_dim=32"),
    (
        "max_buckets",
        7,
        "max_buckets (cap on hash buckets per round) must be an even whole number >= 2, got 7; pass e.g. max_buckets=256",
    ),
    (
        "max_buckets",
        True,
        "max_buckets (cap on hash buckets per round) must be an even whole number >= 2, got True; pass e.g. max_buckets=256",
    ),
]


@pytest.mark.parametrize(
    "entry, name, value, message",
    [(entry, *case) for entry in ENTRY_POINTS for case in BAD_SETTINGS]
    + [(entry, *case) for entry in ENTRY_POINTS if entry != "resolve_config" for case in NOT_IN_TRAINING],
)
def test_every_entry_point_refuses_a_bad_setting_with_the_same_message(entry, name, value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ENTRY_POINTS[entry](**{name: value})


def test_training_configuration_refuses_true_as_a_number():
    with pytest.raises(ValueError, match="n_hashes must be a number, got True"):
        _training_config(n_hashes=True)


def test_every_entry_point_reads_the_same_defaults():
    config = TrainingConfig()
    model = tf_resattn.build_model("resattn", input_shape=(32, 32, 1), base_filters=4, depth=1)
    block = DecoderBlock(8)
    layer = LSHSelfAttention(**LAYER_ARGUMENTS)
    for name, default in LSH_DEFAULTS.items():
        for holder in (model, block, layer) if name not in LAYER_ARGUMENTS else (model, block):
            assert getattr(holder, name) == default, (holder, name)
        if hasattr(config, name):
            assert getattr(config, name) == default, name
