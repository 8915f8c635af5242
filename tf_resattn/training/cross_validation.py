"""`cross_validate`: k-fold cross-validation of the paper's networks into one run folder, and its report.

`cross_validate(config, out)` checks everything (configuration, data, splits, models) before
writing anything, trains each variant on each requested fold (skipping finished folds and resuming
interrupted ones), then merges all finished folds of the run folder into `results.json`,
`results.md` and figures (`report_run`). `cv_train.py` parses its flags into the same call.

Example (a minute on 2 CPU cores):
    from tf_resattn.training import resolve_config

    run = tf_resattn.cross_validate(resolve_config("smoke", overrides={"variants": ["unet"]}), "runs/smoke")
    run.results["variants"]["unet"]["summary"]["mean_foreground_dice"]   # {"mean": ..., "std": ..., "n": 2}
"""

import dataclasses
import datetime
import os
import pathlib
import shutil
from collections.abc import Sequence

from tf_resattn.training.config import ConfigError, TrainingConfig, config_from_dict, incompatible_fields, validate
from tf_resattn.training.files import read_json, write_json_atomic
from tf_resattn.training.folds import (
    check_splits,
    fold_folder,
    load_or_make_splits,
    parse_fold_list,
    read_split_file,
    save_splits,
    train_all_split,
)
from tf_resattn.training.run_data import fold_groups, load_data


@dataclasses.dataclass(frozen=True)
class CrossValidationRun:
    """What `cross_validate` did.

    Attributes:
        out: the run folder.
        config: the run's configuration as saved in `out/config.json` (its variants: those of every
            job on the folder so far).
        n_slices: the labelled slices of the data.
        results: the report of every finished fold of the folder (`results.json`), or None after
            `train_all` (no test fold: the models are `out/<variant>/fold_all/best.keras`).
    """

    out: pathlib.Path
    config: TrainingConfig
    n_slices: int
    results: dict | None


def cross_validate(
    config: TrainingConfig,
    out: str | os.PathLike | None = None,
    *,
    splits: str | os.PathLike | None = None,
    split_folds: int = 1,
    train_all: bool = False,
    folds: Sequence[int] | str | None = None,
    verbose: int = 1,
) -> CrossValidationRun:
    """Cross-validates `config.variants` on identical folds, then reports every finished fold of `out`.

    Args:
        config: the resolved configuration (`tf_resattn.training.resolve_config`).
        out: the run folder; None makes a new `runs/<time>-<preset>`. Calling again with the same
            folder resumes: finished folds are skipped, an interrupted fold continues from its last
            epoch, and the variants of both calls share one report.
        splits: a fixed split (JSON with `train` and `test` slice ids) or a run's `splits.json`,
            instead of k folds.
        split_folds: with `splits`, how many fold models to train on its training ids, all tested
            on its test ids (a fold ensemble); 1 trains one model on them.
        train_all: train one model per variant on every labelled slice (a validation share picks
            the best epoch) and no test fold: the model to ship.
        folds: the fold numbers to train (`[0, 3]` or `"0,3"`); None trains all.
        verbose: Keras' output, 0 silent, 1 progress bars, 2 a line per epoch.

    Returns:
        A `CrossValidationRun`.

    Raises:
        ConfigError, tf_resattn.data.DataError: an impossible configuration, unreadable data or
            splits, or a run folder made with other settings or splits; nothing is written then.
    """
    validate(config)
    if train_all and splits:
        raise ConfigError("--train-all trains on every slice and --splits holds some out; give one of them")
    out = pathlib.Path(out) if out is not None else _new_run_folder(config.preset)
    slices = load_data(config)
    split_args = dict(groups=fold_groups(config, slices), val_fraction=config.val_fraction, seed=config.seed)
    if slices.preprocessing.source_window is not None:
        low, high = slices.preprocessing.source_window
        print(f"display window of the 8-bit slices (recorded with the model): {low:.0f} to {high:.0f} HU", flush=True)
    if train_all:
        given, source = train_all_split(slices.names, **split_args), "--train-all"
    elif splits:
        given, source = read_split_file(splits, slices.names, n_folds=split_folds, **split_args), f"--splits {splits}"
    else:
        given, source = None, None
    if given is not None:
        config = dataclasses.replace(config, n_folds=given["n_folds"])
    job_variants = config.variants
    config = _merge_with_existing_run(out, config)
    if given is None:
        run_splits = load_or_make_splits(out / "splits.json", slices.names, config.n_folds, **split_args)
    else:
        if (out / "splits.json").exists() and read_json(out / "splits.json") != given:
            raise ConfigError(f"{out} was trained on other splits than {source} gives; use a new --out")
        run_splits = given
    check_splits(run_splits)
    fold_numbers = parse_fold_list(
        folds if folds is None or isinstance(folds, str) else ",".join(map(str, folds)), config.n_folds
    )
    _check_models(config, slices)

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", config.to_dict())
        if not (out / "splits.json").exists():
            save_splits(out / "splits.json", run_splits)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    _train_folds(config, job_variants, slices, run_splits, fold_numbers, out, verbose)
    results = None if "train_all" in run_splits else report_run(out)
    return CrossValidationRun(out=out, config=config, n_slices=len(slices), results=results)


def report_run(out: str | os.PathLike) -> dict:
    """Merges the finished folds of the run folder `out` into `results.json`, `results.md` and figures.

    Returns:
        The `results.json` dict (`tf_resattn.training.report.build_results`).

    Raises:
        ConfigError: `out` holds no `config.json`, so it is no run folder.
    """
    from tf_resattn.training.figures import write_figures
    from tf_resattn.training.report import write_report

    out = pathlib.Path(out)
    if not (out / "config.json").is_file():
        raise ConfigError(f"{out} is not a run folder: it holds no config.json")
    results = write_report(out)
    if results["config"].get("figures", True):
        write_figures(out, results)
    return results


def _check_models(cfg, slices):
    """Builds each variant once so that an impossible model setting fails before anything is written."""
    from tf_resattn.models import build_model

    for variant in cfg.variants:
        try:
            build_model(
                variant,
                input_shape=slices.images.shape[1:],
                num_classes=cfg.num_classes,
                seed=cfg.seed,
                **cfg.model_kwargs(),
            )
        except ValueError as error:
            raise ConfigError(f"cannot build {variant}: {str(error).splitlines()[0]}") from None


def _merge_with_existing_run(out, cfg):
    """Checks `cfg` against the run folder's `config.json`; the variants become the union of both."""
    path = out / "config.json"
    if not path.exists():
        return cfg
    saved = config_from_dict(read_json(path))
    differ = incompatible_fields(saved, cfg)
    if differ:
        was, now = saved.settings(), cfg.settings()
        detail = ", ".join(f"{k} {was[k]!r} -> {now[k]!r}" for k in differ)
        raise ConfigError(
            f"{out} was made with other settings ({detail}); use the same settings to resume, or a new --out"
        )
    return dataclasses.replace(cfg, variants=tuple(dict.fromkeys(saved.variants + cfg.variants)))


def _new_run_folder(preset):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = pathlib.Path("runs") / f"{stamp}-{preset}"
    suffix = 1
    while out.exists():
        suffix += 1
        out = pathlib.Path("runs") / f"{stamp}-{preset}-{suffix}"
    return out


def _train_folds(cfg, job_variants, slices, splits, folds, out, verbose):
    """Trains every requested variant x fold, skipping finished ones, with progress lines."""
    from tf_resattn.training.progress import Progress
    from tf_resattn.training.strategy import runtime
    from tf_resattn.training.trainer import train_fold

    print(f"Run folder: {out}  (after an interruption, rerun with --out {out} to resume)", flush=True)
    if "train_all" in splits:
        layout = "all slices, no test fold"
    elif "fixed_split" in splits:
        layout = f"fixed split {splits['fixed_split']}" + (
            f", {cfg.n_folds} folds of its training ids" if cfg.n_folds > 1 else ""
        )
    else:
        layout = f"{cfg.n_folds} folds ({'grouped' if splits['grouped'] else 'by slice'})"
    print(
        f"{len(slices)} slices from {slices.source or cfg.data}; {layout}; variants {' '.join(job_variants)}; folds {','.join(map(str, folds))}",
        flush=True,
    )
    pending = {
        v: [k for k in folds if not (out / v / fold_folder(splits, k) / "metrics.json").exists()] for v in job_variants
    }
    progress = Progress({v: len(ks) * cfg.epochs for v, ks in pending.items()})
    with runtime(cfg) as strategy:
        if strategy.num_replicas_in_sync > 1:
            print(
                f"{strategy.num_replicas_in_sync} replicas: global batch {cfg.batch_size * strategy.num_replicas_in_sync}",
                flush=True,
            )
        for variant in job_variants:
            for k in folds:
                done = k not in pending[variant]
                progress.header(variant, k, cfg.n_folds, fold_folder(splits, k), "finished, skipped" if done else "")
                if not done:
                    train_fold(
                        cfg,
                        slices,
                        splits["folds"][k],
                        variant,
                        k,
                        out / variant / fold_folder(splits, k),
                        strategy,
                        progress,
                        verbose,
                    )
