"""Presets, overrides (config file, hparams file, flags) and validation of the training configuration."""

import json

import pytest

from tf_resattn.models.residual_attention_unet import default_arguments
from tf_resattn.training.config import (
    HPARAM_KEYS,
    PRESETS,
    ConfigError,
    TrainingConfig,
    config_from_dict,
    incompatible_fields,
    resolve_config,
)
from tf_resattn.training.model_arguments import MODEL_KEYS, RUN_ARGUMENTS, argument_help


def test_paper_preset_is_the_papers_protocol():
    cfg = resolve_config("paper")
    assert (cfg.n_folds, cfg.epochs, cfg.image_size, cfg.augment, cfg.loss) == (10, 100, 369, "offline", "ce")
    assert cfg.learning_rate == 1e-3 and cfg.weight_decay == 0.0


def test_cpu_preset_is_release_v2s_recipe_with_the_views_drawn_on_the_stored_slice():
    cpu, v2 = resolve_config("cpu").to_dict(), resolve_config("cpu_v2").to_dict()
    assert (cpu.pop("scanner_views_from"), v2.pop("scanner_views_from")) == ("source", "model")
    assert {key: value for key, value in cpu.items() if key != "preset"} == {
        key: value for key, value in v2.items() if key != "preset"
    }
    assert v2["lung_crop"] == 0.05 and v2["scanner_share"] == 0.6


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_resolves_and_round_trips(preset):
    cfg = resolve_config(preset)
    assert cfg.preset == preset
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_layers_override_in_order_preset_config_hparams_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("preset: smoke\nepochs: 3\nbase_filters: 12\nlearning_rate: 0.01\nvariants: [unet]\n")
    hparams = tmp_path / "best_hparams.json"
    hparams.write_text(json.dumps({"base_filters": 16, "learning_rate": 0.002, "num_heads": 4}))
    cfg = resolve_config(None, config, hparams, {"learning_rate": 5e-4, "epochs": None})
    assert cfg.preset == "smoke" and cfg.image_size == PRESETS["smoke"]["image_size"]
    assert cfg.epochs == 3  # config file; a None flag does not override
    assert cfg.model["base_filters"] == 16 and cfg.model["num_heads"] == 4  # hparams over config
    assert cfg.learning_rate == 5e-4  # flag over everything
    assert cfg.variants == ("unet",)


def test_the_model_mapping_is_every_argument_of_the_class_but_those_the_run_sets():
    assert set(MODEL_KEYS) | set(RUN_ARGUMENTS) == set(default_arguments())
    assert set(MODEL_KEYS) <= set(HPARAM_KEYS)
    assert TrainingConfig().model == {k: v for k, v in default_arguments().items() if k in MODEL_KEYS}
    assert all(argument_help()[k] for k in MODEL_KEYS)


def test_presets_train_the_models_they_trained_before_the_mapping():
    assert resolve_config("demo").model == dict(
        base_filters=8,
        depth=3,
        cardinality=4,
        bottleneck_width=4,
        attention_levels="all",
        num_heads=2,
        key_dim=16,
        bucket_size=64,
        n_hashes=2,
        max_buckets=256,
        norm="group",
        input_normalization="none",
    )
    assert resolve_config("paper").model_kwargs() == {k: v for k, v in default_arguments().items() if k in MODEL_KEYS}


def test_model_arguments_come_flat_or_as_a_mapping_from_files_and_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {norm: batch, max_buckets: 64, depth: 3}\ndepth: 2\nattention_levels: 1\n")
    cfg = resolve_config("smoke", config, overrides={"max_buckets": "128"})
    assert cfg.model["norm"] == "batch" and cfg.model["depth"] == 2  # a flat key wins over the mapping's
    assert cfg.model["max_buckets"] == 128 and cfg.model["attention_levels"] == [1]
    assert cfg.settings()["norm"] == "batch" and "model" not in cfg.settings()
    assert json.loads(json.dumps(cfg.to_dict()))["model"] == cfg.model


def test_a_flat_config_json_of_an_older_run_reads_as_today(tmp_path):
    cfg = resolve_config("cpu")
    flat = {**{k: v for k, v in cfg.to_dict().items() if k != "model"}, **cfg.model}
    del flat["norm"], flat["max_buckets"]
    flat["attention_levels"] = "all"
    assert config_from_dict(flat) == cfg


def test_flag_strings_are_coerced():
    cfg = resolve_config("smoke", overrides={"hu_window": "-900,300", "deterministic": "yes", "epochs": "2"})
    assert cfg.hu_window == (-900.0, 300.0) and cfg.deterministic is True and cfg.epochs == 2


def test_oversampling_flag_and_file_values_become_class_and_times(tmp_path):
    from tf_resattn.training.cli import build_parser

    args = build_parser().parse_args(["--oversample", "3", "4", "--lr-schedule", "cosine", "--warmup-epochs", "2"])
    cfg = resolve_config(
        "demo", overrides={k: getattr(args, k) for k in ("oversample", "lr_schedule", "warmup_epochs")}
    )
    assert (cfg.oversample, cfg.lr_schedule, cfg.warmup_epochs) == ((3, 4), "cosine", 2)
    assert config_from_dict(cfg.to_dict()) == cfg


def test_oversampling_of_the_cpu_preset_is_switched_off_by_none_from_a_flag_or_a_file(tmp_path):
    from tf_resattn.training.cli import build_parser

    assert resolve_config("cpu").oversample == (3, 4)
    args = build_parser().parse_args(["--oversample", "none"])
    assert resolve_config("cpu", overrides={"oversample": args.oversample}).oversample is None
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"oversample": None}))
    assert resolve_config("cpu", config_file=str(config)).oversample is None
    config.write_text(json.dumps({"oversample": "none"}))
    assert resolve_config("cpu", config_file=str(config)).oversample is None


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        ("nonsense", {}, "unknown preset"),
        ("smoke", {"variants": ["resattn", "transformer"]}, "unknown variant 'transformer'"),
        ("smoke", {"n_folds": 1}, "n_folds"),
        ("smoke", {"epochs": 0}, "epochs must be >= 1"),
        ("smoke", {"augment": "mixup"}, "augment must be one of"),
        ("smoke", {"val_fraction": 0.7}, "val_fraction"),
        ("smoke", {"epochs": 2.5}, "whole number"),
        ("smoke", {"batch_size": "four"}, "must be a number"),
        ("smoke", {"class_weights": [1, 2]}, "class_weights needs 4"),
        ("smoke", {"lr_schedule": "step"}, "lr_schedule must be one of"),
        ("smoke", {"epochs": 3, "warmup_epochs": 3}, r"warmup_epochs must lie in \[0, epochs\)"),
        ("smoke", {"oversample": [0, 4]}, "a foreground class in 1..3"),
        ("smoke", {"oversample": [3, 1]}, "TIMES >= 2 \\(or none to switch it off\\)"),
        ("smoke", {"oversample": ["none", 2]}, "must be a number"),
        ("smoke", {"oversample": [3, 2, 1]}, "two whole numbers CLASS TIMES"),
        ("smoke", {"oversample": [3, 2.5]}, "two whole numbers CLASS TIMES"),
        ("smoke", {"equalized_share": 1.5}, r"equalized_share is a probability in \[0, 1\].*got 1.5"),
        ("smoke", {"equalized_share": -0.1}, r"equalized_share is a probability in \[0, 1\]"),
        ("smoke", {"depth": 0}, r"ResidualAttentionUNet: `depth` must be a positive integer, got 0\.$"),
        ("smoke", {"depth": 9}, "`depth` of 9 poolings is impossible"),
        ("smoke", {"norm": "instance"}, "norm must be one of group, batch, got 'instance'"),
        ("smoke", {"max_buckets": 6.5}, "max_buckets must be a whole number, got 6.5"),
        ("smoke", {"max_buckets": 7}, "max_buckets .* must be an even whole number >= 2, got 7"),
        ("smoke", {"attention_levels": "0,x"}, "attention_levels must be 'all', 'none' or level numbers"),
        ("smoke", {"attention_levels": [-1]}, r"`attention_levels` must be 'all', 'none' or decoder levels"),
    ],
)
def test_impossible_settings_are_named(preset, overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(preset, overrides=overrides)


def test_unknown_keys_and_unreadable_files_are_named(tmp_path):
    bad_key = tmp_path / "c.json"
    bad_key.write_text(json.dumps({"epochz": 3}))
    with pytest.raises(ConfigError, match="unknown setting.*epochz"):
        resolve_config(None, bad_key)
    hparams = tmp_path / "h.json"
    hparams.write_text(json.dumps({"image_size": 64}))  # not a hyperparameter
    with pytest.raises(ConfigError, match="image_size in hparams file"):
        resolve_config("smoke", hparams_file=hparams)
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse"):
        resolve_config(None, broken)
    with pytest.raises(ConfigError, match="not found"):
        resolve_config(None, tmp_path / "missing.yaml")


def test_runtime_fields_do_not_make_runs_incompatible():
    a = resolve_config("smoke")
    assert (
        incompatible_fields(a, resolve_config("smoke", overrides={"variants": ["unet"], "strategy": "mirrored"})) == []
    )
    assert incompatible_fields(a, resolve_config("smoke", overrides={"epochs": 5})) == ["epochs"]
