"""`tune.py`: hyperparameter search for one outer cross-validation fold, resumable and distributable.

`main(argv)` parses the command line, checks everything (configuration, space, data, splits,
the chief's address) before writing anything, then runs or resumes the search and writes
`best_hparams.json` and `trials.md` (see `tf_resattn.tuning.search` for the folder layout).
"""

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys
import time

from tf_resattn.command_line import OneLineParser, run_with_one_line_errors
from tf_resattn.data import DataError
from tf_resattn.models import VARIANTS
from tf_resattn.training.config import PRESETS, RUNTIME_KEYS, ConfigError, TrainingConfig, resolve_config
from tf_resattn.training.config_help import FIELD_HELP
from tf_resattn.training.files import read_json, write_json_atomic
from tf_resattn.training.folds import load_or_make_splits, make_splits, parse_fold_list, save_splits
from tf_resattn.training.run_data import fold_groups, load_data
from tf_resattn.training.trainer import MONITOR
from tf_resattn.tuning.search import TUNERS, distributed_role, make_tuner, run_search, wait_for_chief, write_results
from tf_resattn.tuning.space import load_space

PROG = "tune.py"

DESCRIPTION = """\
Search the hyperparameters of the Residual Attention U-Net (keras-tuner), nested in cross-validation.

The search for --fold K trains on that fold's training slices and scores each trial by the mean
foreground Dice (val_mean_fg_dice, maximised) on the fold's validation slices, which are carved
from the training folds. The fold's test slices are never used: evaluate the result with
cv_train.py on the same folds (same --data, --preset, --n-folds, --group-folds and --seed give the
same splits). A trial is fed exactly as cv_train.py feeds that fold: the same augmentation, batches
and seeds per epoch.

The searched space (tf_resattn.tuning.space.DEFAULT_SPACE) can be narrowed or widened with
--space FILE (JSON or YAML): entries {values: [...]}, {min, max[, sampling, step]} or a bare value.
"""

EPILOG = """\
examples:
  python scripts/tune.py --data ../shared/data/medseg100 --preset cpu --out runs/tune --fold 0
  python scripts/tune.py --data synthetic --preset smoke --tuner random --max-trials 4 --out runs/tune-smoke
  python scripts/cv_train.py --data ../shared/data/medseg100 --preset cpu --hparams runs/tune/best_hparams.json

distributed (one chief, N workers; all with the same command and --out, reachable on PORT):
  KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python scripts/tune.py ARGS
  KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=HOST KERASTUNER_ORACLE_PORT=PORT python scripts/tune.py ARGS
  KERASTUNER_TUNER_ID=tuner1  ...
  The chief hands out trials and writes the results when all are done; workers train.

resume: run the same command again with the same --out; --overwrite starts afresh.
errors in the input print one line and exit with status 2.
"""

CONFIG_FLAGS = ("data", "synthetic_slices", "image_size", "num_classes", "input_kind", "n_folds", "group_folds", "seed",
                "augment", "strategy", "epochs")
"""`TrainingConfig` fields settable by flag (everything else: --preset / --config)."""

DEFAULT_MAX_TRIALS = 10
"""Trials of random search and Bayesian optimisation when `--max-trials` is not given."""

RESULT_FILES = ("best_hparams.json", "trials.md", "tuning.json", "splits.json")


def build_parser():
    """The command-line parser."""
    parser = OneLineParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="DIR", required=True, help="search folder; rerun with the same one to resume")
    parser.add_argument("--preset", choices=list(PRESETS), help="starting values, as for cv_train.py (default: demo)")
    parser.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (overrides the preset)")
    parser.add_argument("--fold", type=int, default=0, help="outer cross-validation fold to tune on (default 0)")
    parser.add_argument("--splits", metavar="FILE", help="splits.json of a cv_train.py run to reuse (default: made like cv_train.py)")
    parser.add_argument("--variant", choices=VARIANTS, default="resattn", help="network to tune (default resattn)")
    parser.add_argument("--tuner", choices=list(TUNERS), default="hyperband", help="search algorithm (default hyperband)")
    parser.add_argument("--max-trials", type=int, help=f"trials of random and bayesian search (default {DEFAULT_MAX_TRIALS}; hyperband sizes itself)")
    parser.add_argument("--factor", type=int, default=3, help="hyperband reduction factor (default 3)")
    parser.add_argument("--space", metavar="FILE", help="JSON or YAML entries replacing those of the default space")
    parser.add_argument("--overwrite", action="store_true", help="delete the previous search in --out and start afresh")
    parser.add_argument("--chief-timeout", type=float, default=300.0, metavar="S",
                        help="a worker gives up when the chief does not answer within S seconds (default 300)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras output: 1 progress bars, 2 a line per epoch")
    group = parser.add_argument_group("settings (override the preset and --config)")
    fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
    for name in CONFIG_FLAGS:
        help_text = "epochs per trial (hyperband: the most a trial gets)" if name == "epochs" else FIELD_HELP[name]
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=type(fields[name].default), default=None, help=help_text)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    return run_with_one_line_errors(PROG, lambda: run(args), (ConfigError, DataError), resumable=True)


def run(args):
    """Checks everything, then searches and writes the results (see the module docstring)."""
    role = distributed_role()
    if role == "worker":
        wait_for_chief(args.chief_timeout)
    if args.tuner == "hyperband" and args.max_trials is not None:
        raise ConfigError("--max-trials is for --tuner random or bayesian; hyperband's trial count follows from --epochs and --factor")
    if (args.max_trials is not None and args.max_trials < 1) or args.factor < 2:
        raise ConfigError(f"--max-trials must be >= 1 and --factor >= 2, got {args.max_trials} and {args.factor}")
    cfg = resolve_config(args.preset, args.config, None, {name: getattr(args, name) for name in CONFIG_FLAGS})
    space = load_space(args.space, cfg)
    out = pathlib.Path(args.out)
    overwrite = args.overwrite and role != "worker"
    if args.overwrite and not overwrite:
        print(f"{PROG}: note: --overwrite is the chief's to give; this worker joins the chief's search", file=sys.stderr)
    slices = load_data(cfg)
    if args.splits and not pathlib.Path(args.splits).is_file():
        raise ConfigError(f"--splits file not found: {args.splits} (a cv_train.py run folder's splits.json)")
    split_args = dict(groups=fold_groups(cfg, slices), val_fraction=cfg.val_fraction, seed=cfg.seed)
    if overwrite and not args.splits:
        splits = make_splits(slices.names, cfg.n_folds, **split_args)
    else:
        splits = load_or_make_splits(pathlib.Path(args.splits or out / "splits.json"), slices.names, cfg.n_folds, **split_args)
    fold = parse_fold_list(str(args.fold), cfg.n_folds)[0]
    settings = {
        "variant": args.variant, "tuner": args.tuner, "fold": fold, "epochs": cfg.epochs, "factor": args.factor,
        "space": space, "config": {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_KEYS},
    }
    _check_previous(out, settings, overwrite)

    from tf_resattn.training.strategy import runtime
    from tf_resattn.tuning.hypermodel import SegmentationHyperModel

    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "keras_tuner", ignore_errors=True)
    write_json_atomic(out / "tuning.json", settings)
    if not (out / "splits.json").exists():
        save_splits(out / "splits.json", splits)
    split = splits["folds"][fold]
    print(f"Search folder: {out}  (after an interruption, rerun the same command to resume)", flush=True)
    print(f"{len(slices)} slices; outer fold {fold} of {cfg.n_folds}: tuning on {len(split['train'])} training and "
          f"{len(split['val'])} validation slices, {len(split['test'])} test slices left out", flush=True)
    started = time.monotonic()
    with runtime(cfg) as strategy:
        replicas = strategy.num_replicas_in_sync
        if replicas > 1:
            print(f"{replicas} replicas: global batch = batch_size x {replicas}", flush=True)
        hypermodel = SegmentationHyperModel(space, cfg, args.variant, slices.images.shape[1:], fold, replicas)
        try:
            tuner = make_tuner(args.tuner, hypermodel, out, epochs=cfg.epochs, max_trials=args.max_trials or DEFAULT_MAX_TRIALS,
                               factor=args.factor, seed=cfg.seed, overwrite=overwrite,
                               strategy=strategy if replicas > 1 else None)
        except ValueError as error:
            raise ConfigError(f"cannot set up the search: {str(error).splitlines()[0]}") from None
        run_search(tuner, slices, split, cfg.epochs, args.verbose)
    if role == "worker":
        print(f"worker {tuner.tuner_id}: no trials left, done", flush=True)
        return 0
    title = f"{args.tuner} search, {args.variant}, outer fold {fold} of {cfg.n_folds}, objective {MONITOR} (max)"
    rows, values, trial_id, score = write_results(out, tuner, space, cfg.epochs, title)
    print(f"\n{len(rows)} trials in {time.monotonic() - started:.0f} s; best: trial {trial_id}, {MONITOR} {score:.4f}")
    print((out / "trials.md").read_text())
    print(f"best hyperparameters: {out / 'best_hparams.json'}\n"
          f"evaluate: python scripts/cv_train.py --data {cfg.data} --preset {cfg.preset} --hparams {out / 'best_hparams.json'}")
    return 0


def _check_previous(out, settings, overwrite):
    """Refuses to resume a search that was made with other settings."""
    path = out / "tuning.json"
    if overwrite or not path.exists():
        return
    saved = read_json(path)
    differ = sorted(k for k in settings if saved.get(k) != _json_form(settings[k]))
    if differ:
        raise ConfigError(f"{out} holds a search with other settings ({', '.join(differ)}); use the same settings to resume, "
                          "--overwrite to start afresh, or a new --out")


def _json_form(value):
    """`value` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))
