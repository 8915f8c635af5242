"""`cv_train.py` / `tf-resattn-cv`: k-fold cross-validation of the paper's networks, with a report at the end.

`main(argv)` parses the command line into a configuration (`resolve_config`), calls
`tf_resattn.training.cross_validation.cross_validate` (or `report_run` for `--report-only`) and
prints the report's table.
"""

import argparse
import dataclasses
import os

from tf_resattn.command_line import OneLineParser, run_with_one_line_errors
from tf_resattn.data import DataError
from tf_resattn.models import VARIANTS
from tf_resattn.training.config import PRESETS, ConfigError, TrainingConfig, resolve_config
from tf_resattn.training.config_help import FIELD_HELP
from tf_resattn.training.model_arguments import MODEL_KEYS, argument_help, default_model

DESCRIPTION = """\
Cross-validate the Residual Attention U-Net and its baselines on CT slices.

Each variant is trained on identical folds; the held-out fold of each split is the test set, a
validation share of the training folds picks the best epoch (best.keras). At the end all finished
folds of the run folder are merged into results.json, results.md and figures.

Presets (every value can be overridden by a flag or --config):
  demo   (default) 40 synthetic slices, 64x64, 3 folds, 10 epochs in batches of 2, CE+Dice: minutes on 2 CPU cores
  smoke  seconds: 32x32, 2 folds, 1 epoch, tiny models (for tests)
  cpu    real data on 2 CPU cores: 128x128, base 16, depth 4, 5 folds, 80 epochs, cosine after a 2-epoch warm-up,
         effusion slices 4 times, focal-Tversky over the batch, online augmentation; cropped to the lung field,
         predictions kept inside it, the equalised image beside the slice, other-scanner views drawn on the
         stored slice (release v3's)
  cpu_v2 the cpu preset of 2026-12-05 (release v2's): other-scanner views drawn on the model's input
  cpu_v1 the cpu preset before the lung crop and the other-scanner views (the reports made before 2026-12-05)
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
    """The command-line parser, named as invoked (`cv_train.py`, `tf-resattn-cv`); every `TrainingConfig`
    field and every model argument has a flag."""
    parser = OneLineParser(description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), help="starting values (default: demo)")
    parser.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (overrides the preset)")
    parser.add_argument("--hparams", metavar="FILE", help="flat JSON of tuned hyperparameters (e.g. best_hparams.json)")
    parser.add_argument(
        "--out", metavar="DIR", help="run folder (default: a new runs/<time>-<preset>); reuse it to resume"
    )
    parser.add_argument(
        "--splits",
        metavar="FILE",
        help="a fixed split (JSON with 'train' and 'test' slice ids) or a run's splits.json, instead of k folds; "
        "with --n-folds K, K models on folds of its training ids, all tested on its test ids (a fold ensemble)",
    )
    parser.add_argument(
        "--train-all",
        action="store_true",
        help="train one model on all labelled slices (a validation share picks the best epoch), no test fold: "
        "the model to ship, in <out>/<variant>/fold_all",
    )
    parser.add_argument("--folds", metavar="K,K", help="fold numbers to train, e.g. 0,3 (default: all)")
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="V",
        help=f"networks to compare, from {' '.join(VARIANTS)} or 'all' (default: resattn unet)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only merge the finished folds of --out into the report"
    )
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras output: 1 progress bars, 2 a line per epoch"
    )
    group = parser.add_argument_group("settings (override the preset and --config)")
    for field in dataclasses.fields(TrainingConfig):
        if field.name in ("preset", "variants", "model"):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            group.add_argument(
                flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None, help=FIELD_HELP[field.name]
            )
        elif field.name == "source_window":
            group.add_argument(
                flag, dest=field.name, nargs="+", default=None, metavar="LOW HIGH | auto", help=FIELD_HELP[field.name]
            )
        elif field.name in ("hu_window", "class_weights"):
            group.add_argument(flag, dest=field.name, nargs="+", type=float, default=None, help=FIELD_HELP[field.name])
        elif field.name == "oversample":
            group.add_argument(
                flag,
                dest=field.name,
                nargs="+",
                default=None,
                metavar="CLASS TIMES | none",
                help=FIELD_HELP[field.name],
            )
        else:
            kind = str if field.default is None else type(field.default)
            group.add_argument(flag, dest=field.name, type=kind, default=None, help=FIELD_HELP[field.name])
    model = parser.add_argument_group("model (the arguments of tf_resattn.models.ResidualAttentionUNet)")
    descriptions, defaults = argument_help(), default_model()
    for name in MODEL_KEYS:
        model.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=type(defaults[name]),
            default=None,
            help=descriptions[name].replace("`", "").replace("%", "%%"),
        )
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_only and not args.out:
        parser.error("--report-only needs --out pointing at a run folder with config.json")
    command = (lambda: report_only(args.out)) if args.report_only else (lambda: cross_validate_command(args))
    return run_with_one_line_errors(parser.prog, command, (ConfigError, DataError), resumable=True)


def settings_from_flags(args):
    """`{setting: value}` of the flags given (None where a flag is absent), for `resolve_config`."""
    names = [f.name for f in dataclasses.fields(TrainingConfig) if f.name not in ("preset", "variants", "model")]
    overrides = {name: getattr(args, name) for name in names + list(MODEL_KEYS)}
    if args.variants:
        overrides["variants"] = list(VARIANTS) if args.variants == ["all"] else args.variants
    return overrides


def cross_validate_command(args):
    """Resolves the configuration, cross-validates and prints the table (or where the models are); returns 0."""
    from tf_resattn.training.cross_validation import cross_validate

    cfg = resolve_config(args.preset, args.config, args.hparams, settings_from_flags(args))
    run = cross_validate(
        cfg,
        args.out,
        splits=args.splits,
        split_folds=args.n_folds or 1,
        train_all=args.train_all,
        folds=args.folds,
        verbose=args.verbose,
    )
    if run.results is None:
        for variant in cfg.variants:
            print(
                f"{variant}: trained on all {run.n_slices} slices, no test fold: {run.out / variant / 'fold_all' / 'best.keras'}"
            )
    else:
        print_results(run.out, run.results)
    return 0


def report_only(out):
    """Merges the finished folds of `out` and prints the table; returns 0."""
    from tf_resattn.training.cross_validation import report_run

    print_results(out, report_run(out))
    return 0


def print_results(out, results):
    """The report's table, or a line saying that no fold has finished."""
    from tf_resattn.training.report import results_table

    print(f"\nResults ({os.path.join(out, 'results.md')}):\n")
    print(results_table(results) if results["variants"] else "no finished folds yet")
