"""`tune.py` / `tf-resattn-tune`: hyperparameter search for one outer cross-validation fold.

`main(argv)` parses the command line into a configuration (`resolve_config`), calls
`tf_resattn.tuning.tune.tune` and prints the trial table and where the best hyperparameters are.
"""

import argparse
import dataclasses
import sys

from tf_resattn.command_line import OneLineParser, run_with_one_line_errors
from tf_resattn.data import DataError
from tf_resattn.models import VARIANTS
from tf_resattn.training.config import PRESETS, ConfigError, TrainingConfig, resolve_config
from tf_resattn.training.config_help import FIELD_HELP
from tf_resattn.training.trainer import MONITOR
from tf_resattn.tuning.search import TUNERS
from tf_resattn.tuning.tune import DEFAULT_MAX_TRIALS, tune

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

CONFIG_FLAGS = (
    "data",
    "synthetic_slices",
    "image_size",
    "num_classes",
    "input_kind",
    "n_folds",
    "group_folds",
    "seed",
    "augment",
    "strategy",
    "epochs",
)
"""`TrainingConfig` fields settable by flag (everything else: --preset / --config)."""


def build_parser():
    """The command-line parser, named as invoked (`tune.py`, `tf-resattn-tune`)."""
    parser = OneLineParser(description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="DIR", required=True, help="search folder; rerun with the same one to resume")
    parser.add_argument("--preset", choices=list(PRESETS), help="starting values, as for cv_train.py (default: demo)")
    parser.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (overrides the preset)")
    parser.add_argument("--fold", type=int, default=0, help="outer cross-validation fold to tune on (default 0)")
    parser.add_argument(
        "--splits", metavar="FILE", help="splits.json of a cv_train.py run to reuse (default: made like cv_train.py)"
    )
    parser.add_argument("--variant", choices=VARIANTS, default="resattn", help="network to tune (default resattn)")
    parser.add_argument(
        "--tuner", choices=list(TUNERS), default="hyperband", help="search algorithm (default hyperband)"
    )
    parser.add_argument(
        "--max-trials",
        type=int,
        help=f"trials of random and bayesian search (default {DEFAULT_MAX_TRIALS}; hyperband sizes itself)",
    )
    parser.add_argument("--factor", type=int, default=3, help="hyperband reduction factor (default 3)")
    parser.add_argument("--space", metavar="FILE", help="JSON or YAML entries replacing those of the default space")
    parser.add_argument("--overwrite", action="store_true", help="delete the previous search in --out and start afresh")
    parser.add_argument(
        "--chief-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="a worker gives up when the chief does not answer within S seconds (default 300)",
    )
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras output: 1 progress bars, 2 a line per epoch"
    )
    group = parser.add_argument_group("settings (override the preset and --config)")
    fields = {f.name: f for f in dataclasses.fields(TrainingConfig)}
    for name in CONFIG_FLAGS:
        help_text = "epochs per trial (hyperband: the most a trial gets)" if name == "epochs" else FIELD_HELP[name]
        group.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=type(fields[name].default), default=None, help=help_text
        )
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_with_one_line_errors(
        parser.prog, lambda: tune_command(args, parser.prog), (ConfigError, DataError), resumable=True
    )


def tune_command(args, prog):
    """Resolves the configuration, searches and prints the results; returns 0."""
    cfg = resolve_config(args.preset, args.config, None, {name: getattr(args, name) for name in CONFIG_FLAGS})
    result = tune(
        cfg,
        args.out,
        fold=args.fold,
        variant=args.variant,
        tuner=args.tuner,
        max_trials=args.max_trials,
        factor=args.factor,
        space=args.space,
        splits=args.splits,
        overwrite=args.overwrite,
        chief_timeout=args.chief_timeout,
        verbose=args.verbose,
        notify=lambda notice: print(f"{prog}: note: {notice}", file=sys.stderr),
    )
    if result.worker:
        print(f"worker {result.tuner_id}: no trials left, done", flush=True)
        return 0
    best = result.out / "best_hparams.json"
    print(
        f"\n{len(result.trials)} trials in {result.seconds:.0f} s; best: trial {result.best_trial}, {MONITOR} {result.best_score:.4f}"
    )
    print((result.out / "trials.md").read_text())
    print(
        f"best hyperparameters: {best}\n"
        f"evaluate: python scripts/cv_train.py --data {cfg.data} --preset {cfg.preset} --hparams {best}"
    )
    return 0
