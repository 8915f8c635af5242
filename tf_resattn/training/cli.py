"""`cv_train.py`: k-fold cross-validation of the paper's networks, with a report at the end.

`main(argv)` parses the command line, checks everything (configuration, data, splits, models)
before writing anything, trains each variant on each requested fold (skipping finished folds and
resuming interrupted ones), then merges all finished folds of the run folder into the report.
"""

import argparse
import dataclasses
import datetime
import pathlib
import shutil

from tf_resattn.command_line import OneLineParser, run_with_one_line_errors
from tf_resattn.data import DataError
from tf_resattn.models import VARIANTS
from tf_resattn.training.config import PRESETS, ConfigError, TrainingConfig, config_from_dict, incompatible_fields, resolve_config
from tf_resattn.training.config_help import FIELD_HELP
from tf_resattn.training.run_data import fold_groups, load_data
from tf_resattn.training.files import read_json, write_json_atomic
from tf_resattn.training.folds import (
    check_splits, fold_folder, load_or_make_splits, parse_fold_list, read_split_file, save_splits, train_all_split,
)

PROG = "cv_train.py"

DESCRIPTION = """\
Cross-validate the Residual Attention U-Net and its baselines on CT slices.

Each variant is trained on identical folds; the held-out fold of each split is the test set, a
validation share of the training folds picks the best epoch (best.keras). At the end all finished
folds of the run folder are merged into results.json, results.md and figures.

Presets (every value can be overridden by a flag or --config):
  demo   (default) 40 synthetic slices, 64x64, 3 folds, 12 epochs, CE+Dice: minutes on 2 CPU cores
  smoke  seconds: 32x32, 2 folds, 1 epoch, tiny models (for tests)
  cpu    real data on 2 CPU cores: 128x128, base 16, depth 4, 5 folds, 80 epochs, cosine after a 2-epoch warm-up,
         effusion slices 4 times, focal-Tversky over the batch, online augmentation (under 2 hours for resattn + unet)
  paper  the paper's protocol (a GPU job): 369x369, 10 folds, 100 epochs, Adam, offline 6x, CE
"""

EPILOG = """\
examples:
  python scripts/cv_train.py                       # synthetic demo, prints the table
  python scripts/cv_train.py --preset cpu --data ../shared/data/medseg100 --out runs/medseg-cpu
  python scripts/cv_train.py --preset cpu --data ../shared/data/medseg100 \
      --splits ../shared/data/medseg100/splits/infnet-50-48.json --out runs/infnet   # the published fixed split
  python scripts/cv_train.py --preset cpu --data ../shared/data/medseg100 --n-folds 5 \
      --splits ../shared/data/medseg100/splits/infnet-50-48.json --out runs/infnet-cv5   # 5 fold models on it: an ensemble
  python scripts/cv_train.py --preset paper --data tr_im.nii.gz --variants all --folds 0,1 --out runs/paper
  python scripts/cv_train.py --report-only --out runs/paper       # merge the folds finished so far

resume: run the same command with the same --out after an interruption; finished folds are
skipped, an interrupted fold continues from its last epoch.
errors in the input print one line and exit with status 2.
"""

def build_parser():
    """The command-line parser; every `TrainingConfig` field has a flag."""
    parser = OneLineParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), help="starting values (default: demo)")
    parser.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (overrides the preset)")
    parser.add_argument("--hparams", metavar="FILE", help="flat JSON of tuned hyperparameters (e.g. best_hparams.json)")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: a new runs/<time>-<preset>); reuse it to resume")
    parser.add_argument("--splits", metavar="FILE",
                        help="a fixed split (JSON with 'train' and 'test' slice ids) or a run's splits.json, instead of k folds; "
                             "with --n-folds K, K models on folds of its training ids, all tested on its test ids (a fold ensemble)")
    parser.add_argument("--train-all", action="store_true",
                        help="train one model on all labelled slices (a validation share picks the best epoch), no test fold: "
                             "the model to ship, in <out>/<variant>/fold_all")
    parser.add_argument("--folds", metavar="K,K", help="fold numbers to train, e.g. 0,3 (default: all)")
    parser.add_argument("--variants", nargs="+", metavar="V",
                        help=f"networks to compare, from {' '.join(VARIANTS)} or 'all' (default: resattn unet)")
    parser.add_argument("--report-only", action="store_true", help="only merge the finished folds of --out into the report")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras output: 1 progress bars, 2 a line per epoch")
    group = parser.add_argument_group("settings (override the preset and --config)")
    for field in dataclasses.fields(TrainingConfig):
        if field.name in ("preset", "variants"):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None, help=FIELD_HELP[field.name])
        elif field.name == "source_window":
            group.add_argument(flag, dest=field.name, nargs="+", default=None, metavar="LOW HIGH | auto", help=FIELD_HELP[field.name])
        elif field.name in ("hu_window", "class_weights"):
            group.add_argument(flag, dest=field.name, nargs="+", type=float, default=None, help=FIELD_HELP[field.name])
        elif field.name == "oversample":
            group.add_argument(flag, dest=field.name, nargs="+", default=None, metavar="CLASS TIMES | none",
                               help=FIELD_HELP[field.name])
        else:
            kind = str if field.default is None else type(field.default)
            group.add_argument(flag, dest=field.name, type=kind, default=None, help=FIELD_HELP[field.name])
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    command = (lambda: report_only(args.out)) if args.report_only else (lambda: run(args))
    return run_with_one_line_errors(PROG, command, (ConfigError, DataError), resumable=True)


def report_only(out):
    """Merges the finished folds of `out` and prints the table."""
    if not out or not (pathlib.Path(out) / "config.json").is_file():
        raise ConfigError(f"--report-only needs --out pointing at a run folder with config.json, got {out!r}")
    return _report(pathlib.Path(out))


def run(args):
    """Checks everything, then trains and reports (see the module docstring)."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingConfig) if f.name not in ("preset", "variants")}
    if args.variants:
        overrides["variants"] = list(VARIANTS) if args.variants == ["all"] else args.variants
    cfg = resolve_config(args.preset, args.config, args.hparams, overrides)
    out = pathlib.Path(args.out) if args.out else _new_run_folder(cfg.preset)
    slices = load_data(cfg)
    split_args = dict(groups=fold_groups(cfg, slices), val_fraction=cfg.val_fraction, seed=cfg.seed)
    if slices.preprocessing.source_window is not None:
        low, high = slices.preprocessing.source_window
        print(f"display window of the 8-bit slices (recorded with the model): {low:.0f} to {high:.0f} HU", flush=True)
    if args.train_all and args.splits:
        raise ConfigError("--train-all trains on every slice and --splits holds some out; give one of them")
    if args.train_all:
        given, source = train_all_split(slices.names, **split_args), "--train-all"
    else:
        given, source = (
            (read_split_file(args.splits, slices.names, n_folds=args.n_folds or 1, **split_args), f"--splits {args.splits}")
            if args.splits else (None, None)
        )
    if given is not None:
        cfg = dataclasses.replace(cfg, n_folds=given["n_folds"])
    job_variants = cfg.variants
    cfg = _merge_with_existing_run(out, cfg)
    if given is None:
        splits = load_or_make_splits(out / "splits.json", slices.names, cfg.n_folds, **split_args)
    else:
        if (out / "splits.json").exists() and read_json(out / "splits.json") != given:
            raise ConfigError(f"{out} was trained on other splits than {source} gives; use a new --out")
        splits = given
    check_splits(splits)
    folds = parse_fold_list(args.folds, cfg.n_folds)
    _check_models(cfg, slices)

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", cfg.to_dict())
        if not (out / "splits.json").exists():
            save_splits(out / "splits.json", splits)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    _train_folds(cfg, job_variants, slices, splits, folds, out, args.verbose)
    if "train_all" in splits:
        for variant in job_variants:
            print(f"{variant}: trained on all {len(slices)} slices, no test fold: {out / variant / 'fold_all' / 'best.keras'}")
        return 0
    return _report(out)


def _check_models(cfg, slices):
    """Builds each variant once so that an impossible model setting fails before anything is written."""
    from tf_resattn.models import build_model

    for variant in cfg.variants:
        try:
            build_model(variant, input_shape=slices.images.shape[1:], num_classes=cfg.num_classes, seed=cfg.seed, **cfg.model_kwargs())
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
        detail = ", ".join(f"{k} {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in differ)
        raise ConfigError(f"{out} was made with other settings ({detail}); use the same settings to resume, or a new --out")
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
        layout = f"fixed split {splits['fixed_split']}" + (f", {cfg.n_folds} folds of its training ids" if cfg.n_folds > 1 else "")
    else:
        layout = f"{cfg.n_folds} folds ({'grouped' if splits['grouped'] else 'by slice'})"
    print(f"{len(slices)} slices from {slices.source or cfg.data}; {layout}; variants {' '.join(job_variants)}; folds {','.join(map(str, folds))}", flush=True)
    pending = {v: [k for k in folds if not (out / v / fold_folder(splits, k) / "metrics.json").exists()] for v in job_variants}
    progress = Progress({v: len(ks) * cfg.epochs for v, ks in pending.items()})
    with runtime(cfg) as strategy:
        if strategy.num_replicas_in_sync > 1:
            print(f"{strategy.num_replicas_in_sync} replicas: global batch {cfg.batch_size * strategy.num_replicas_in_sync}", flush=True)
        for variant in job_variants:
            for k in folds:
                done = k not in pending[variant]
                progress.header(variant, k, cfg.n_folds, fold_folder(splits, k), "finished, skipped" if done else "")
                if not done:
                    train_fold(cfg, slices, splits["folds"][k], variant, k, out / variant / fold_folder(splits, k), strategy, progress, verbose)


def _report(out):
    from tf_resattn.training.figures import write_figures
    from tf_resattn.training.report import results_table, write_report

    results = write_report(out)
    if results["config"].get("figures", True):
        write_figures(out, results)
    print(f"\nResults ({out / 'results.md'}):\n")
    print(results_table(results) if results["variants"] else "no finished folds yet")
    return 0
