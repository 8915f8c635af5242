"""The hyperparameter search space, declared in one place, and its overrides from JSON/YAML files.

A space maps a `--hparams` key (see `tf_resattn.training.config.HPARAM_KEYS`) to one of:

- `{"values": [v1, v2, ...]}`: a choice among listed values (numbers or strings);
- `{"min": a, "max": b}` with optional `"sampling": "linear" | "log"` and, for whole
  numbers, `"step": s`: a range (`float` when `min`/`max` are floats, else `int`);
- a bare value: fixed, not searched.

`DEFAULT_SPACE` is the searched space. A space file (`--space FILE`, JSON or YAML, one mapping)
replaces single entries of it: give `depth: {values: [2, 3]}` to narrow, `base_filters:
{values: [8, 16, 32, 64]}` to widen, `loss: ce` to fix one, or add a key the default leaves
alone (e.g. `key_dim`, `augment`). Keys that a file does not name keep their default entry.

Every value is checked against the training configuration's own rules (a loss name must exist, a
size must be >= 1, ...), and combinations that could never build are refused up front (an
attention level that some allowed depth does not have). Problems raise `SpaceError` with a
one-line message naming the entry and the fix.

Example:
    >>> space = load_space(None)              # the default
    >>> space["depth"]
    {'values': [2, 3, 4]}
    >>> narrowed = merge_space({"depth": {"values": [2]}, "loss": "ce_dice"})
    >>> narrowed["depth"], narrowed["loss"]
    ({'values': [2]}, 'ce_dice')
"""

import copy
import pathlib

from tf_resattn.training.config import (
    HPARAM_KEYS,
    ConfigError,
    attention_levels,
    config_from_dict,
    read_mapping,
    validate,
)

DEFAULT_SPACE = {
    # model size and shape
    "base_filters": {"values": [8, 16, 32]},
    "depth": {"values": [2, 3, 4]},
    "cardinality": {"values": [2, 4, 8]},
    "bottleneck_width": {"values": [2, 4, 8]},
    # LSH attention in the decoder ("0" = the full-resolution level only)
    "attention_levels": {"values": ["all", "0", "none"]},
    "num_heads": {"values": [1, 2, 4]},
    "bucket_size": {"values": [16, 32, 64]},
    "n_hashes": {"values": [1, 2, 4]},
    # optimisation
    "loss": {"values": ["ce", "dice", "ce_dice", "focal_tversky"]},
    "learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"},
    "weight_decay": {"values": [0.0, 1e-5, 1e-4]},
    "batch_size": {"values": [2, 4, 8]},
}
"""The searched space: the model and training choices that matter for the paper's network."""

TUNABLE_KEYS = tuple(k for k in HPARAM_KEYS if k not in ("epochs", "class_weights", "oversample"))
"""Keys a space may hold: the `--hparams` keys, less the budget (set by the tuner), class weights and oversampling."""

SAMPLINGS = ("linear", "log")


class SpaceError(ConfigError):
    """An empty, contradictory or unreadable search space; the message names the entry and the fix."""


def load_space(path, base_cfg=None):
    """The default space with the entries of the JSON/YAML file at `path` replacing their defaults.

    Args:
        path: a space file, or None for `DEFAULT_SPACE`.
        base_cfg: the `TrainingConfig` the tuned values are applied to (for the value checks), or
            None for the default configuration.

    Returns:
        A validated space dict (a fresh copy).

    Raises:
        SpaceError: missing/unparsable file, empty file, or an invalid space (see `check_space`).
    """
    if path is None:
        return merge_space({}, base_cfg)
    path = pathlib.Path(path)
    try:
        entries = {} if path.is_file() and not path.read_text().strip() else read_mapping(path, "space")
    except ConfigError as error:
        raise SpaceError(str(error)) from None
    if not entries:
        raise SpaceError(f"space file {path} is empty; give at least one entry such as 'depth: {{values: [2, 3]}}'")
    return merge_space(entries, base_cfg)


def merge_space(entries, base_cfg=None):
    """`DEFAULT_SPACE` with `entries` replacing (or adding) single entries; validated."""
    space = copy.deepcopy(DEFAULT_SPACE)
    space.update(copy.deepcopy(entries))
    if "attention_levels" in space:
        space["attention_levels"] = _as_text(space["attention_levels"])
    check_space(space, base_cfg)
    return space


def _as_text(entry):
    """Attention levels are text (`"all"`, `"0,1"`); YAML reads a bare `0` as a number."""

    def text(value):
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    if isinstance(entry, dict) and isinstance(entry.get("values"), (list, tuple)):
        return {**entry, "values": [text(v) for v in entry["values"]]}
    return entry if isinstance(entry, dict) else text(entry)


def entry_values(entry):
    """The values an entry can take that matter for checks: its choices, its range ends, or its fixed value."""
    if isinstance(entry, dict):
        return list(entry["values"]) if "values" in entry else [entry["min"], entry["max"]]
    return [entry]


def check_space(space, base_cfg=None):
    """Raises `SpaceError` for an empty space, an unknown key, a malformed entry, a value the
    training configuration refuses, or attention levels that an allowed depth does not have."""
    if not space:
        raise SpaceError("the search space is empty; give at least one entry")
    unknown = sorted(set(space) - set(TUNABLE_KEYS))
    if unknown:
        raise SpaceError(
            f"unknown hyperparameter(s) {', '.join(unknown)} in the search space; allowed: {', '.join(TUNABLE_KEYS)}"
        )
    for name, entry in space.items():
        _check_entry(name, entry)
        for value in entry_values(entry):
            _check_value(name, value, base_cfg)
    _check_attention_levels(space)


def _check_entry(name, entry):
    if not isinstance(entry, dict):
        if isinstance(entry, (list, tuple)):
            raise SpaceError(f"{name}: a list must be given as {{values: [...]}}, got {entry!r}")
        return
    keys = set(entry)
    if "values" in entry:
        if keys != {"values"}:
            raise SpaceError(f"{name}: 'values' cannot be combined with {', '.join(sorted(keys - {'values'}))}")
        values = entry["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise SpaceError(f"{name}: empty search space (values: {values!r}); list at least one value")
        if len({type(v) for v in values}) > 1 and not all(isinstance(v, (int, float)) for v in values):
            raise SpaceError(f"{name}: values mix numbers and text ({values!r}); use one kind")
        if len(set(values)) != len(values):
            raise SpaceError(f"{name}: values listed twice in {values!r}")
        return
    if not {"min", "max"} <= keys or keys - {"min", "max", "sampling", "step"}:
        raise SpaceError(
            f"{name}: an entry is {{values: [...]}}, {{min, max[, sampling, step]}} or a bare value, got {entry!r}"
        )
    low, high = entry["min"], entry["max"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise SpaceError(f"{name}: min and max must be numbers, got {low!r} and {high!r}")
    if low > high:
        raise SpaceError(f"{name}: contradictory range, min {low} > max {high}; swap them")
    sampling = entry.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise SpaceError(f"{name}: sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if sampling == "log" and low <= 0:
        raise SpaceError(f"{name}: log sampling needs min > 0, got {low}")
    step = entry.get("step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0 or step > high - low > 0):
        raise SpaceError(f"{name}: step must be > 0 and fit inside [{low}, {high}], got {step!r}")


def _check_value(name, value, base_cfg):
    """Applies one value to the base configuration and lets the configuration's own rules judge it."""
    values = (base_cfg.to_dict() if base_cfg is not None else {}) | {name: value}
    try:
        validate(config_from_dict(values))
    except ConfigError as error:
        raise SpaceError(f"search space entry {name}: {error}") from None


def _check_attention_levels(space):
    """Every allowed attention-levels value must exist at every allowed depth."""
    depths = [int(d) for d in entry_values(space["depth"])] if "depth" in space else None
    if depths is None or "attention_levels" not in space:
        return
    shallowest = min(depths)
    for text in entry_values(space["attention_levels"]):
        levels = attention_levels(str(text))
        if isinstance(levels, list) and max(levels, default=-1) >= shallowest:
            raise SpaceError(
                f"contradictory search space: attention_levels {text!r} needs depth > {max(levels)} "
                f"but depth can be {shallowest}; narrow depth or attention_levels"
            )
