"""`tune`: the hyperparameter search for one outer cross-validation fold, resumable and distributable.

`tune(config, out)` checks everything (the settings, space, data, splits, the chief's address)
before writing anything, then runs or resumes the search and writes `best_hparams.json` and
`trials.md` (see `tf_resattn.tuning.search` for the folder layout). `tune.py` parses its flags
into the same call.

Example (a minute on 2 CPU cores):
    from tf_resattn.training import resolve_config

    cfg = resolve_config("smoke", overrides={"epochs": 1})
    result = tf_resattn.tune(cfg, "runs/tune-smoke", variant="unet", tuner="random", max_trials=2)
    result.best_hparams          # {"base_filters": 16, "loss": "dice", ...}, also runs/tune-smoke/best_hparams.json
"""

import dataclasses
import json
import os
import pathlib
import shutil
import time
import warnings
from collections.abc import Callable, Mapping

from tf_resattn.arguments import is_positive_int
from tf_resattn.models import VARIANTS
from tf_resattn.training.config import RUNTIME_KEYS, ConfigError, TrainingConfig, config_from_dict, validate
from tf_resattn.training.feed import source_slices
from tf_resattn.training.files import read_json, write_json_atomic
from tf_resattn.training.folds import load_or_make_splits, make_splits, parse_fold_list, save_splits
from tf_resattn.training.run_data import fold_groups, load_data
from tf_resattn.training.trainer import MONITOR
from tf_resattn.tuning.search import TUNERS, distributed_role, make_tuner, run_search, wait_for_chief, write_results
from tf_resattn.tuning.space import load_space, merge_space

DEFAULT_MAX_TRIALS = 10
"""Trials of random search and Bayesian optimisation when `max_trials` is not given."""

RESULT_FILES = ("best_hparams.json", "trials.md", "tuning.json", "splits.json")


@dataclasses.dataclass(frozen=True)
class TuningResult:
    """What `tune` did.

    Attributes:
        out: the search folder.
        tuner_id: keras-tuner's id of this process (`"tuner0"` alone, `"chief"` or a worker's).
        worker: whether this process was a worker of a distributed search (it writes no results).
        trials: one dict per trial (trial, status, score, epochs, worker, tuned values), best first;
            empty for a worker.
        best_hparams: the best trial's values (`best_hparams.json`, for `cv_train.py --hparams`), or None for a worker.
        best_trial: the best trial's id, or None for a worker.
        best_score: its `val_mean_fg_dice`, or None for a worker.
        seconds: how long the search took.
    """

    out: pathlib.Path
    tuner_id: str
    worker: bool
    trials: list
    best_hparams: dict | None
    best_trial: str | None
    best_score: float | None
    seconds: float


def tune(
    config: TrainingConfig,
    out: str | os.PathLike,
    *,
    fold: int = 0,
    variant: str = "resattn",
    tuner: str = "hyperband",
    max_trials: int | None = None,
    factor: int = 3,
    space: str | os.PathLike | Mapping | None = None,
    splits: str | os.PathLike | None = None,
    overwrite: bool = False,
    chief_timeout: float = 300.0,
    verbose: int = 1,
    notify: Callable[[str], object] = warnings.warn,
) -> TuningResult:
    """Searches the hyperparameters of `variant` on the inner split of outer fold `fold`.

    The search trains on the fold's training slices and scores each trial by the mean foreground
    Dice (`val_mean_fg_dice`, maximised) on its validation slices, carved from the training folds;
    the fold's test slices are never used. `KERASTUNER_*` environment variables make this process
    the chief or a worker of a distributed search (`tf_resattn.tuning.search`).

    Args:
        config: the resolved configuration (`tf_resattn.training.resolve_config`): data, folds,
            the values the space does not search, and `epochs` per trial (Hyperband: the most).
        out: the search folder; calling again with the same one resumes.
        fold: the outer fold to tune on.
        variant: the network to tune, from `tf_resattn.VARIANTS`.
        tuner: `"hyperband"`, `"bayesian"` or `"random"`.
        max_trials: trials of random and Bayesian search (default 10); Hyperband sizes itself.
        factor: Hyperband's reduction factor (>= 2).
        space: a JSON/YAML file or a mapping of entries replacing those of
            `tf_resattn.tuning.space.DEFAULT_SPACE`, or None for the default space.
        splits: a `cv_train.py` run's `splits.json` to reuse (default: made as `cv_train.py` makes them).
        overwrite: delete the previous search in `out` and start afresh (the chief's or a lone process's to give).
        chief_timeout: seconds a worker waits for the chief to answer.
        verbose: Keras' output, 0 silent, 1 progress bars, 2 a line per epoch.
        notify: called with a notice the caller should see (a worker given `overwrite`).

    Returns:
        A `TuningResult`.

    Raises:
        ConfigError, tf_resattn.data.DataError: impossible settings or space, unreadable data or
            splits, an unreachable chief, or a search folder made with other settings; nothing is
            written then.
    """
    role = distributed_role()
    if role == "worker":
        wait_for_chief(chief_timeout)
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if tuner not in TUNERS:
        raise ConfigError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    if tuner == "hyperband" and max_trials is not None:
        raise ConfigError(
            "--max-trials is for --tuner random or bayesian; hyperband's trial count follows from --epochs and --factor"
        )
    if (max_trials is not None and not is_positive_int(max_trials)) or not is_positive_int(factor) or factor < 2:
        raise ConfigError(f"--max-trials must be >= 1 and --factor >= 2, got {max_trials} and {factor}")
    validate(config)
    space = merge_space(dict(space), config) if isinstance(space, Mapping) else load_space(space, config)
    out = pathlib.Path(out)
    fresh = overwrite and role != "worker"
    if overwrite and not fresh:
        notify("--overwrite is the chief's to give; this worker joins the chief's search")
    slices = load_data(config)
    if splits and not pathlib.Path(splits).is_file():
        raise ConfigError(f"--splits file not found: {splits} (a cv_train.py run folder's splits.json)")
    split_args = dict(groups=fold_groups(config, slices), val_fraction=config.val_fraction, seed=config.seed)
    if fresh and not splits:
        run_splits = make_splits(slices.names, config.n_folds, **split_args)
    else:
        run_splits = load_or_make_splits(
            pathlib.Path(splits or out / "splits.json"), slices.names, config.n_folds, **split_args
        )
    fold = parse_fold_list(str(fold), config.n_folds)[0]
    settings = {
        "variant": variant,
        "tuner": tuner,
        "fold": fold,
        "epochs": config.epochs,
        "factor": factor,
        "space": space,
        "config": _search_config(config.to_dict()),
    }
    _check_previous(out, settings, fresh)

    from tf_resattn.training.strategy import runtime
    from tf_resattn.tuning.hypermodel import SegmentationHyperModel

    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "keras_tuner", ignore_errors=True)
    write_json_atomic(out / "tuning.json", settings)
    if not (out / "splits.json").exists():
        save_splits(out / "splits.json", run_splits)
    split = run_splits["folds"][fold]
    print(f"Search folder: {out}  (after an interruption, rerun the same command to resume)", flush=True)
    print(
        f"{len(slices)} slices; outer fold {fold} of {config.n_folds}: tuning on {len(split['train'])} training and "
        f"{len(split['val'])} validation slices, {len(split['test'])} test slices left out",
        flush=True,
    )
    started = time.monotonic()
    with runtime(config) as strategy:
        replicas = strategy.num_replicas_in_sync
        if replicas > 1:
            print(f"{replicas} replicas: global batch = batch_size x {replicas}", flush=True)
        sources = source_slices(slices.subset(split["train"]))  # what `run_search` hands `fit`, in its order
        hypermodel = SegmentationHyperModel(space, config, variant, slices.images.shape[1:], fold, replicas, sources)
        try:
            search = make_tuner(
                tuner,
                hypermodel,
                out,
                epochs=config.epochs,
                max_trials=max_trials or DEFAULT_MAX_TRIALS,
                factor=factor,
                seed=config.seed,
                overwrite=fresh,
                strategy=strategy if replicas > 1 else None,
            )
        except ValueError as error:
            raise ConfigError(f"cannot set up the search: {str(error).splitlines()[0]}") from None
        run_search(search, slices, split, config.epochs, verbose)
    if role == "worker":
        return TuningResult(
            out=out,
            tuner_id=search.tuner_id,
            worker=True,
            trials=[],
            best_hparams=None,
            best_trial=None,
            best_score=None,
            seconds=time.monotonic() - started,
        )
    title = f"{tuner} search, {variant}, outer fold {fold} of {config.n_folds}, objective {MONITOR} (max)"
    rows, values, trial_id, score = write_results(out, search, space, config.epochs, title)
    return TuningResult(
        out=out,
        tuner_id=search.tuner_id,
        worker=False,
        trials=rows,
        best_hparams=values,
        best_trial=trial_id,
        best_score=score,
        seconds=time.monotonic() - started,
    )


def _search_config(config_dict):
    """The part of a configuration (its `to_dict()` form) that decides a search: all but `RUNTIME_KEYS`."""
    return {k: v for k, v in config_dict.items() if k not in RUNTIME_KEYS}


def _check_previous(out, settings, fresh):
    """Refuses to resume a search that was made with other settings."""
    path = out / "tuning.json"
    if fresh or not path.exists():
        return
    saved = read_json(path)
    if "config" in saved:  # in today's form, whichever version of the package wrote it
        try:
            saved["config"] = _search_config(config_from_dict(saved["config"]).to_dict())
        except ConfigError:
            pass  # a setting this version does not know: the configurations differ
    differ = sorted(k for k in settings if saved.get(k) != _json_form(settings[k]))
    if differ:
        raise ConfigError(
            f"{out} holds a search with other settings ({', '.join(differ)}); use the same settings to resume, "
            "--overwrite to start afresh, or a new --out"
        )


def _json_form(value):
    """`value` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))
