"""The cross-validation configuration: presets, overrides from files and flags, validation.

A run is described by one `TrainingConfig`; its `model` mapping holds the arguments of
`tf_resattn.models.ResidualAttentionUNet` (`model_arguments.MODEL_KEYS`: all but those the run sets
itself). Settings are named flat: a field, or a model argument by its own name (`depth`, `norm`).
The configuration is resolved in layers, each overriding the one before: a preset (`PRESETS`), a
`--config file.json|yaml` (any setting; model arguments flat or under `model:`), a `--hparams` file
(the flat dict of model/training hyperparameters that the tuner writes), then explicit command-line
flags. The resolved configuration is saved as the run's `config.json`.

Example:
    >>> cfg = resolve_config("smoke", overrides={"epochs": 2})
    >>> cfg.n_folds, cfg.epochs, cfg.image_size, cfg.model["depth"], cfg.model["norm"]
    (2, 2, 32, 2, 'group')
"""

import dataclasses
import json
import pathlib

from tf_resattn import optional
from tf_resattn.arguments import is_positive_int
from tf_resattn.models.residual_attention_unet import ARGUMENT_CHOICES, VARIANTS, check_arguments
from tf_resattn.training.model_arguments import MODEL_KEYS, default_model


class ConfigError(ValueError):
    """An impossible or unreadable configuration; the one-line message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides what a cross-validation run computes.

    Job-selection settings (which folds, the output folder) are not part of it: several jobs with
    different `--folds` share one run folder and one configuration. `model` maps each key of
    `MODEL_KEYS` to its value (a plain dict; treat it as read-only); it defaults to the model's own
    defaults, and the presets set their own.
    """

    preset: str = "demo"
    # data
    data: str = "synthetic"
    synthetic_slices: int = 40
    image_size: int = 64
    num_classes: int = 4
    input_kind: str = "auto"
    hu_window: tuple = (-1000.0, 400.0)
    source_window: tuple | str | None = None
    lung_crop: float | None = None
    lung_constraint: float | None = None
    # folds
    n_folds: int = 3
    val_fraction: float = 0.1
    group_folds: str = "auto"
    seed: int = 0
    # models
    variants: tuple = ("resattn", "unet")
    model: dict = dataclasses.field(default_factory=default_model)
    # optimisation
    epochs: int = 6
    batch_size: int = 4
    learning_rate: float = 3e-3
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    loss: str = "ce_dice"
    class_weights: tuple | None = None
    oversample: tuple | None = None
    augment: str = "offline"
    acquisition_augment: bool = False
    equalized_share: float = 0.0
    scanner_share: float = 0.0
    scanner_views_from: str = "model"
    scanner_clahe: str = "narrow"
    # runtime
    strategy: str = "auto"
    mixed_precision: bool = False
    deterministic: bool = False
    jit_compile: bool = False
    tensorboard: bool = True
    figures: bool = True

    def to_dict(self):
        """Plain JSON-serialisable dict (tuples become lists; `model` stays a nested dict)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def settings(self):
        """Flat `{name: value}`: the fields, with the model's arguments in place of `model`."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        return {**fields, **self.model}

    def model_kwargs(self):
        """Keyword arguments for `tf_resattn.build_model` besides variant, input shape, classes and seed."""
        return dict(self.model)


def attention_levels(value):
    """`"all"`, `"none"`, a level, a list of levels or levels as text (`"0,1"`) -> the model's argument."""
    if value in ("all", "none"):
        return value
    levels = (
        value.replace(",", " ").split()
        if isinstance(value, str)
        else value
        if isinstance(value, (list, tuple))
        else [value]
    )
    try:
        return [int(level) if isinstance(level, str) else level for level in levels]
    except ValueError:
        raise ConfigError(f"attention_levels must be 'all', 'none' or level numbers like 0,1, got {value!r}") from None


HPARAM_KEYS = MODEL_KEYS + (
    "loss",
    "learning_rate",
    "lr_schedule",
    "warmup_epochs",
    "weight_decay",
    "batch_size",
    "class_weights",
    "oversample",
    "augment",
    "epochs",
)
"""Keys a `--hparams` file may hold (the tuner's output): model and optimisation settings only."""

RUNTIME_KEYS = ("variants", "strategy", "tensorboard", "figures")
"""Fields that may differ between jobs sharing one run folder (they do not change a fold's result)."""

CHOICES = {
    "augment": ("none", "offline", "online", "upright"),
    "loss": ("ce", "dice", "ce_dice", "ce_batch_dice", "focal_tversky", "focal_tversky_batch"),
    "lr_schedule": ("constant", "cosine"),
    "strategy": ("auto", "default", "mirrored"),
    "group_folds": ("auto", "yes", "no"),
    "input_kind": ("auto", "hu", "uint8"),
    "scanner_views_from": ("model", "source"),
    "scanner_clahe": ("narrow", "wide"),
    **{key: words for key, words in ARGUMENT_CHOICES.items() if key in MODEL_KEYS},
}

CPU_V1 = dict(
    image_size=128,
    n_folds=5,
    base_filters=16,
    depth=4,
    cardinality=4,
    bottleneck_width=4,
    num_heads=2,
    key_dim=16,
    bucket_size=64,
    n_hashes=2,
    epochs=80,
    batch_size=4,
    learning_rate=1e-3,
    lr_schedule="cosine",
    warmup_epochs=2,
    oversample=(3, 4),
    loss="focal_tversky_batch",
    augment="online",
)
"""Real data on 2 CPU cores, the fixed split's best step that finds effusion (results/medseg100-infnet-split.md):
128x128, base 16, depth 4, 80 epochs, cosine after a 2-epoch warm-up, the effusion slices 4 times an epoch,
focal-Tversky summed over the batch."""

CPU_V2 = dict(
    CPU_V1,
    lung_crop=0.05,
    lung_constraint=0.02,
    input_normalization="add_equalized",
    acquisition_augment=True,
    equalized_share=0.4,
    scanner_share=0.6,
)
"""CPU_V1 cropped to the lung field, two input channels, other-scanner views (recipe b of
results/medseg100-other-scanners.md)."""

PRESETS = {
    # Seconds on a laptop CPU: for tests and a first look.
    "smoke": dict(
        synthetic_slices=12,
        image_size=32,
        n_folds=2,
        val_fraction=0.2,
        base_filters=8,
        depth=2,
        cardinality=2,
        bottleneck_width=2,
        num_heads=1,
        key_dim=8,
        bucket_size=32,
        n_hashes=1,
        epochs=1,
        batch_size=4,
        augment="offline",
        tensorboard=False,
        figures=True,
    ),
    # The bare `cv_train.py` run: synthetic data (version 2), both models, about 7 minutes on 2 shared cores.
    # Batches of 2 (twice the updates of 4 for about the same time) let every fold of both learn all three
    # classes within 10 epochs; with 4 a fold could stay on ground glass alone to the end.
    "demo": dict(base_filters=8, depth=3, cardinality=4, key_dim=16, n_hashes=2, epochs=10, batch_size=2),
    # Real data on 2 CPU cores, the recipe that carries over to other scanners (results/medseg100-other-scanners.md,
    # recipe e, the release resattn_medseg100 v3): cpu_v2's, the other-scanner views drawn on the stored slice.
    "cpu": dict(CPU_V2, scanner_views_from="source"),
    # The `cpu` preset of 2026-12-05 (recipe b, the release v2): cpu_v1's, each slice cropped to its lung field
    # (5 % margin), predictions outside the field grown by 2 % set to background; the original and the equalised
    # image as two channels; acquisition changes, equalised views (0.4) and other-scanner views (0.6, drawn on
    # the model's input) of the training slices. The reports made on 2026-12-05 say `--preset cpu` for it.
    "cpu_v2": CPU_V2,
    # The `cpu` preset before the lung crop and the other-scanner views: the reports in results/ made before
    # 2026-12-05 (medseg100-cpu.md, -infnet-split.md, -release-cv5.md, -tuning.md) say `--preset cpu` for this one.
    "cpu_v1": CPU_V1,
    # The paper's protocol (a GPU job): 10 folds, 100 epochs, Adam, 369x369, offline 6x, cross-entropy.
    "paper": dict(
        image_size=369,
        n_folds=10,
        base_filters=32,
        depth=4,
        cardinality=8,
        bottleneck_width=4,
        num_heads=2,
        key_dim=32,
        bucket_size=64,
        n_hashes=4,
        epochs=100,
        batch_size=4,
        learning_rate=1e-3,
        loss="ce",
        augment="offline",
    ),
}


def resolve_config(preset=None, config_file=None, hparams_file=None, overrides=None):
    """Builds the configuration from a preset, a config file, an hparams file and flag overrides.

    Args:
        preset: a name in `PRESETS`; None takes the config file's `preset` or `"demo"`.
        config_file: path of a JSON or YAML dict of settings (model arguments flat or in a `model`
            mapping), or None.
        hparams_file: path of a flat JSON (or YAML) dict with keys from `HPARAM_KEYS`, or None.
        overrides: dict of setting -> value from explicit flags (None values are ignored).

    Returns:
        A validated `TrainingConfig`.

    Raises:
        ConfigError: unknown preset or field, unreadable file, wrong type or impossible value.
    """
    file_values = _flattened(read_mapping(config_file, "config"), f"config file {config_file}") if config_file else {}
    preset = preset or file_values.pop("preset", None) or "demo"
    file_values.pop("preset", None)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {"preset": preset, **PRESETS[preset]}
    values.update(_checked_keys(file_values, _setting_names(), f"config file {config_file}"))
    if hparams_file:
        hparams = read_mapping(hparams_file, "hparams")
        values.update(_checked_keys(hparams, HPARAM_KEYS, f"hparams file {hparams_file}"))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = _config(values)
    validate(cfg)
    return cfg


def config_from_dict(values):
    """Rebuilds a `TrainingConfig` from its `to_dict()` form (e.g. a run's `config.json`) or flat settings.

    A flat model argument overrides the same key of a `model` mapping; a `config.json` written
    before the mapping existed (all flat) reads the same.
    """
    return _config(_checked_keys(_flattened(values, "config.json"), _setting_names(), "config.json"))


def incompatible_fields(saved, current):
    """Names of the settings (fields and model arguments), outside `RUNTIME_KEYS`, in which two configurations differ."""
    a, b = saved.settings(), current.settings()
    return [k for k in a if k not in RUNTIME_KEYS and a[k] != b[k]]


def validate(cfg):
    """Raises `ConfigError` naming the first impossible value of `cfg`."""
    settings = cfg.settings()
    for key, allowed in CHOICES.items():
        if settings[key] not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {settings[key]!r}")
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown or not cfg.variants:
        raise ConfigError(
            f"unknown variant {', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(VARIANTS)}"
        )
    if len(set(cfg.variants)) != len(cfg.variants):
        raise ConfigError(f"variants listed twice: {' '.join(cfg.variants)}")
    for key in ("synthetic_slices", "image_size", "epochs", "batch_size"):
        if not is_positive_int(getattr(cfg, key)):
            raise ConfigError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    _checked_keys(cfg.model, MODEL_KEYS, "the model mapping")
    try:
        check_arguments(cfg.model)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if cfg.n_folds < 2:
        raise ConfigError(f"n_folds must be >= 2 for cross-validation, got {cfg.n_folds}")
    if cfg.num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {cfg.num_classes}")
    if not 0.0 < cfg.val_fraction < 0.5:
        raise ConfigError(
            f"val_fraction must lie in (0, 0.5): the validation slices come out of the training folds, got {cfg.val_fraction}"
        )
    if not 0.0 <= cfg.equalized_share <= 1.0:
        raise ConfigError(
            f"equalized_share is a probability in [0, 1] (e.g. 0.5: half the training slices equalised), "
            f"got {cfg.equalized_share}"
        )
    if not 0.0 <= cfg.scanner_share <= 1.0:
        raise ConfigError(
            f"scanner_share is a probability in [0, 1] (e.g. 0.5: half the training slices as if from "
            f"another scanner), got {cfg.scanner_share}"
        )
    if cfg.learning_rate <= 0 or cfg.weight_decay < 0:
        raise ConfigError(
            f"learning_rate must be > 0 and weight_decay >= 0, got {cfg.learning_rate} and {cfg.weight_decay}"
        )
    if len(cfg.hu_window) != 2 or cfg.hu_window[0] >= cfg.hu_window[1]:
        raise ConfigError(f"hu_window must be two numbers, low < high, got {list(cfg.hu_window)}")
    if cfg.class_weights is not None and len(cfg.class_weights) != cfg.num_classes:
        raise ConfigError(f"class_weights needs {cfg.num_classes} values (one per class), got {len(cfg.class_weights)}")
    if not 0 <= cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"warmup_epochs must lie in [0, epochs) = [0, {cfg.epochs}), got {cfg.warmup_epochs}")
    if cfg.oversample is not None:
        label, times = cfg.oversample
        if not 1 <= label < cfg.num_classes or times < 2:
            raise ConfigError(
                f"oversample must be CLASS TIMES with a foreground class in 1..{cfg.num_classes - 1} and "
                f"TIMES >= 2 (or none to switch it off), got {' '.join(map(str, cfg.oversample))}"
            )


def _source_window(value):
    """None, `"auto"` or (low, high) HU from a flag, JSON or YAML value."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if _is_word(items, "auto"):
        return "auto"
    numbers = tuple(float(_number("source_window", item)) for item in items)
    if len(numbers) != 2 or numbers[0] >= numbers[1]:
        raise ConfigError(f"source_window must be LOW HIGH in HU with low < high, or auto, got {value!r}")
    return numbers


def _margin(key, value):
    """None (also from `"none"`) or a margin in [0, 1] from a flag, JSON or YAML value."""
    if value is None or _is_word([value], "none"):
        return None
    margin = float(_number(key, value))
    if not 0.0 <= margin <= 1.0:
        raise ConfigError(
            f"{key} must be a margin in [0, 1] (a share of the lung field's side, e.g. 0.05) or none, got {value!r}"
        )
    return margin


def _oversample(value):
    """(class, times) as whole numbers, or None for `"none"`, from a flag, JSON or YAML value."""
    items = _sequence("oversample", value)
    if _is_word(items, "none"):
        return None
    numbers = [_number("oversample", item) for item in items]
    if len(numbers) != 2 or any(float(n) != int(n) for n in numbers):
        raise ConfigError(f"oversample must be two whole numbers CLASS TIMES (e.g. 3 4) or none, got {value!r}")
    return tuple(int(n) for n in numbers)


def _is_word(items, word):
    """Whether a flag or file value given as a list holds just `word` (any case)."""
    return [str(item).lower() for item in items] == [word]


def _setting_names():
    """The names `settings()` gives: the fields but `model`, then the model's arguments."""
    return tuple(f.name for f in dataclasses.fields(TrainingConfig) if f.name != "model") + MODEL_KEYS


def _flattened(values, where):
    """`values` with a nested `model` mapping spread into flat settings (a flat one wins)."""
    values = dict(values)
    model = values.pop("model", None) or {}
    if not isinstance(model, dict):
        raise ConfigError(f"model in {where} must be a mapping of model argument -> value, got {model!r}")
    return {**_checked_keys(model, MODEL_KEYS, f"the model mapping of {where}"), **values}


def _config(values):
    """A `TrainingConfig` from flat settings, each coerced to its type; model arguments not given keep their defaults."""
    coerced = {k: _coerce(k, v) for k, v in values.items()}
    model = default_model() | {k: v for k, v in coerced.items() if k in MODEL_KEYS}
    return TrainingConfig(model=model, **{k: v for k, v in coerced.items() if k not in MODEL_KEYS})


_FIELD_TYPES = {f.name: type(f.default) for f in dataclasses.fields(TrainingConfig)} | {
    k: type(v) for k, v in default_model().items()
}


def _coerce(key, value):
    """Converts a value from JSON/YAML/flags to the field's type, or raises `ConfigError`."""
    if key == "class_weights":
        return None if value is None else tuple(float(_number(key, w)) for w in _sequence(key, value))
    if key == "source_window":
        return _source_window(value)
    if key == "oversample":
        return None if value is None else _oversample(value)
    if key in ("lung_crop", "lung_constraint"):
        return _margin(key, value)
    if key == "attention_levels":
        return attention_levels(value)
    kind = _FIELD_TYPES[key]
    if kind is tuple:
        items = _sequence(key, value)
        return tuple(float(_number(key, v)) for v in items) if key == "hu_window" else tuple(str(v) for v in items)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "false", "no", "0"):
            return str(value).lower() in ("true", "yes", "1")
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if kind is int:
        number = _number(key, value)
        if float(number) != int(number):
            raise ConfigError(f"{key} must be a whole number, got {value!r}")
        return int(number)
    if kind is float:
        return float(_number(key, value))
    return str(value)


def _number(key, value):
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        return float(value) if isinstance(value, str) else value + 0
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def _sequence(key, value):
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, got {value!r}")
    return value


def _checked_keys(values, allowed, where):
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {where}; allowed: {', '.join(allowed)}")
    return dict(values)


def read_mapping(path, what):
    """Reads a JSON or YAML file holding one flat mapping."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    if path.suffix == ".json":
        parse, errors = json.loads, json.JSONDecodeError
    else:
        yaml = optional.require("yaml", "train")
        parse, errors = yaml.safe_load, yaml.YAMLError
    try:
        values = parse(path.read_text())
    except errors as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"cannot parse {what} file {path}: {first_line}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{what} file {path} must hold a mapping of setting -> value, got {type(values).__name__}")
    return values
