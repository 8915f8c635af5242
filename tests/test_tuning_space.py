"""The search space: defaults, narrowing/widening from files, refusals, and its keras-tuner declaration."""

import json
import re

import keras_tuner
import pytest

from tf_resattn.training.config import HPARAM_KEYS, resolve_config
from tf_resattn.tuning.hypermodel import config_for, declare
from tf_resattn.tuning.space import DEFAULT_SPACE, SpaceError, load_space, merge_space


def test_default_space_is_valid_and_made_of_hparams_keys():
    space = load_space(None)
    assert space == DEFAULT_SPACE and space is not DEFAULT_SPACE
    assert set(space) <= set(HPARAM_KEYS)
    for name in (
        "base_filters",
        "depth",
        "cardinality",
        "bottleneck_width",
        "attention_levels",
        "num_heads",
        "bucket_size",
        "n_hashes",
        "loss",
        "learning_rate",
        "weight_decay",
        "batch_size",
    ):
        assert name in space
    assert set(space["loss"]["values"]) == {"ce", "dice", "ce_dice", "focal_tversky"}


@pytest.mark.parametrize(
    "suffix, text",
    [
        (
            ".json",
            json.dumps(
                {
                    "depth": {"values": [2]},
                    "base_filters": {"values": [8, 16, 32, 64]},
                    "loss": "ce_dice",
                    "key_dim": {"min": 8, "max": 32, "step": 8},
                }
            ),
        ),
        (
            ".yaml",
            "depth: {values: [2]}\nbase_filters: {values: [8, 16, 32, 64]}\nloss: ce_dice\nkey_dim: {min: 8, max: 32, step: 8}\n",
        ),
    ],
)
def test_file_narrows_widens_fixes_and_adds(tmp_path, suffix, text):
    path = tmp_path / f"space{suffix}"
    path.write_text(text)
    space = load_space(path)
    assert space["depth"] == {"values": [2]}
    assert space["base_filters"] == {"values": [8, 16, 32, 64]}
    assert space["loss"] == "ce_dice"
    assert space["key_dim"] == {"min": 8, "max": 32, "step": 8}
    assert space["learning_rate"] == DEFAULT_SPACE["learning_rate"]
    # "all" and "0" work at depth 2; with depth fixed to 2, a level-1 choice is still possible
    assert merge_space({"depth": 2, "attention_levels": {"values": ["all", 1]}})["attention_levels"] == {
        "values": ["all", "1"]
    }


@pytest.mark.parametrize(
    "entries, words",
    [
        ({"depth": {"values": []}}, "empty search space"),
        ({"learning_rate": {"min": 1e-2, "max": 1e-4}}, "contradictory range"),
        ({"depth": {"values": [2, 3]}, "attention_levels": {"values": ["all", "2"]}}, "contradictory search space"),
        ({"learning_rate": {"min": 0.0, "max": 1e-3, "sampling": "log"}}, "log sampling needs min > 0"),
        ({"dropout": {"values": [0.1]}}, "unknown hyperparameter"),
        ({"epochs": 3}, "unknown hyperparameter"),
        ({"loss": {"values": ["ce", "hinge"]}}, "loss must be one of"),
        ({"base_filters": {"values": [0, 8]}}, "`base_filters` must be a positive integer, got 0"),
        ({"depth": [2, 3]}, "{values: [...]}"),
        ({"batch_size": {"values": [2, "4"]}}, "mix numbers and text"),
        ({"batch_size": {"values": [2, 2]}}, "listed twice"),
        ({"depth": {"min": 2}}, "an entry is"),
    ],
)
def test_bad_spaces_are_refused_with_the_entry_named(entries, words):
    with pytest.raises(SpaceError, match=re.escape(words)):
        merge_space(entries)


@pytest.mark.parametrize("text", ["", "{}", "[1, 2]", "depth: {values: [2"])
def test_bad_files_are_refused(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=str(path)):
        load_space(path)
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "missing.yaml")


def test_values_are_checked_against_the_base_configuration():
    cfg = resolve_config("smoke", overrides={"num_classes": 2})
    with pytest.raises(SpaceError, match="augment must be one of"):
        merge_space({"augment": {"values": ["none", "sideways"]}}, cfg)


def test_declare_gives_each_entry_its_keras_tuner_type_and_a_valid_config():
    space = merge_space(
        {"key_dim": {"min": 8, "max": 32, "step": 8}, "loss": "dice", "weight_decay": {"values": [0, 1e-4]}}
    )
    hp = keras_tuner.HyperParameters()
    values = declare(space, hp)
    kinds = {h.name: type(h).__name__ for h in hp.space}
    assert kinds["depth"] == "Choice" and kinds["learning_rate"] == "Float" and kinds["key_dim"] == "Int"
    assert kinds["loss"] == "Fixed" and values["loss"] == "dice"
    assert all(isinstance(v, float) for v in hp.space[[h.name for h in hp.space].index("weight_decay")].values)
    assert 1e-4 <= values["learning_rate"] <= 3e-3
    cfg = config_for(resolve_config("smoke"), values)
    assert (cfg.loss, cfg.model["key_dim"], cfg.model["depth"]) == ("dice", values["key_dim"], values["depth"])
