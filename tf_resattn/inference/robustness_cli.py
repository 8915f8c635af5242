"""`scripts/robustness.py MODEL [MODEL ...] --data DIR`: Dice under controlled acquisition and other-scanner shifts, per model.

Writes `robustness.json`, `robustness.md` (the table, and the share of the true infection inside
the lung field under each shift), `robustness.png` (the plot) and `worst-combined.png` (the first
model's worst slices under the combined other-scanner shift) into `--out` and prints the table. Exit status 0, 2 on bad input (one line on stderr), 130 when interrupted.
"""

import argparse
import dataclasses
import json
import pathlib

import numpy as np

from tf_resattn.command_line import run_with_one_line_errors
from tf_resattn.inference.errors import ExportError, InferenceError
from tf_resattn.io import DataError

PROGRAM = "robustness.py"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("models", nargs="+", help=".keras files or cv_train run folders (fold ensembles) to compare")
    parser.add_argument(
        "--data", required=True, help="folder of 8-bit slices with masks (e.g. ../shared/data/medseg100)"
    )
    parser.add_argument("--splits", help="score only the test ids of this split file (e.g. splits/infnet-50-48.json)")
    parser.add_argument(
        "--per-fold",
        action="store_true",
        help="each model a cv_train.py run folder: every fold's model scores its own test slices (each labelled "
        "slice once, by a model that never saw it) instead of the fold ensemble scoring every slice",
    )
    parser.add_argument("--names", nargs="+", help="one display name per model (default: the paths)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation for every model")
    parser.add_argument(
        "--shifts",
        nargs="+",
        metavar="SHIFT",
        help="only these shifts, by name (quoted, e.g. none 'gamma 2'; default all; 'none' is always scored)",
    )
    parser.add_argument(
        "--lung-constraint",
        metavar="MARGIN|none",
        help="override the models' lung constraint: predictions outside the lung field grown by MARGIN "
        "(a share of its side, e.g. 0.02) become background; none: no constraint (default: each model's own)",
    )
    parser.add_argument(
        "--field-margin",
        type=float,
        default=0.0,
        metavar="MARGIN",
        help="the lung field's growth for the coverage table (a share of its side; default 0)",
    )
    parser.add_argument("--out", required=True, help="folder for robustness.json, .md and .png")
    parser.add_argument("--batch-size", type=int, default=8, help="slices per model call (default 8)")
    return parser.parse_args(argv)


def scored_slices(data, splits):
    """Raw 8-bit slices `[N, H, W]` float32 and masks `[N, H, W]` at the stored size (the split's test ids only)."""
    slices = _grey_slices(data)
    if splits:
        from tf_resattn.data.splits import read_fixed_split

        slices = slices.subset(read_fixed_split(splits, slices.names)["test"])
    return slices.images[..., 0] * 255.0, slices.masks


def fold_scored_slices(data, runs):
    """The test slices of the runs' folds, fold after fold, with each run's `fold_scoring.fold_tests`.

    Returns:
        `(raw [N, H, W] float32, masks [N, H, W], plans)`: `plans` per run `[(fold model, positions)]`.

    Raises:
        InferenceError: runs that test other slices (made with other folds), or what `fold_tests` refuses.
    """
    from tf_resattn.inference.fold_scoring import fold_tests

    slices = _grey_slices(data)
    plans = [fold_tests(run, slices.names) for run in runs]
    orders = [np.concatenate([positions for _, positions in plan]) for plan in plans]
    if any(not np.array_equal(order, orders[0]) for order in orders[1:]):
        raise InferenceError("--per-fold compares runs made with the same folds (the same splits.json); these differ")
    slices = slices.subset(orders[0])
    return slices.images[..., 0] * 255.0, slices.masks, plans


def _grey_slices(data):
    """The labelled slices of `data` at their stored size; `InferenceError` for Hounsfield units."""
    from tf_resattn.data import load_slices

    slices = load_slices(data, image_size=None)
    if slices.input_kind != "uint8":
        raise InferenceError(f"{data} holds Hounsfield units; the robustness shifts are defined for 8-bit grey slices")
    return slices


def run(args):
    """Scores every model under every shift; returns `{name: rows}`."""
    from tf_resattn.inference.fold_scoring import routed
    from tf_resattn.inference.robustness import SHIFTS, markdown_table, plot, robustness_table

    names = args.names or args.models
    if len(names) != len(args.models):
        raise InferenceError(f"--names gives {len(names)} names for {len(args.models)} models")
    unknown = [name for name in args.shifts or () if name not in SHIFTS]
    if unknown:
        raise InferenceError(f"unknown shift {unknown[0]!r}; choose from: {', '.join(SHIFTS)}")
    constraint = _lung_constraint(args.lung_constraint)
    if not 0.0 <= args.field_margin <= 1.0:
        raise InferenceError(
            f"--field-margin takes a share of the lung field's side in [0, 1], got {args.field_margin:g}"
        )
    if args.per_fold and args.splits:
        raise InferenceError("--per-fold scores each fold's own test slices; leave out --splits")
    if args.per_fold:
        raw, masks, plans = fold_scored_slices(args.data, args.models)
    else:
        (raw, masks), plans = scored_slices(args.data, args.splits), None
    tables, predictors, segmenters = {}, [], []
    for i, (name, path) in enumerate(zip(names, args.models)):
        if plans is None:
            predictor = _load(path, args.tta, constraint)
            segment = _segmenter(predictor, args.batch_size)
        else:
            folds = [_load(model, args.tta, constraint) for model, _ in plans[i]]
            predictor = folds[0]
            segment = routed([_segmenter(p, args.batch_size) for p in folds], [len(s) for _, s in plans[i]])
        predictors.append(predictor)
        segmenters.append(segment)
        tables[name] = robustness_table(segment, raw, masks, predictor.num_classes, args.shifts)
    shifts = [row["shift"] for row in next(iter(tables.values()))]
    coverage = field_coverage(raw, masks, predictors[0].num_classes, shifts, args.field_margin)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    worst = write_worst_under_combined(segmenters[0], raw, masks, predictors[0].num_classes, out / "worst-combined.png")
    (out / "robustness.json").write_text(
        json.dumps(
            {
                "data": args.data,
                "splits": args.splits,
                "per_fold": args.per_fold,
                "tta": args.tta,
                "lung_constraint": {name: p.preprocessing.lung_constraint for name, p in zip(names, predictors)},
                "field_margin": args.field_margin,
                "truth_inside_lung_field": coverage,
                "worst_under_combined": worst,
                "slices": len(raw),
                "models": tables,
            },
            indent=1,
        )
    )
    table = markdown_table(tables)
    table += (
        f"\n\nThe truth inside the lung field (`tf_resattn.data.thorax`, grown by {args.field_margin:g} of its side) "
        "under each shift, and the field's share of the image:\n\n" + coverage_table(coverage)
    )
    (out / "robustness.md").write_text(
        f"# Robustness to acquisition shifts\n\n{len(raw)} slices of {args.data}"
        f"{', each scored by the model of the fold that held it out' if args.per_fold else ''}.\n\n{table}\n"
    )
    plot(tables, out / "robustness.png")
    print(table)
    return tables


def _lung_constraint(text):
    """`--lung-constraint`: "own" when not given, None for "none", else the margin in [0, 1]."""
    if text is None:
        return "own"
    if text.lower() == "none":
        return None
    try:
        margin = float(text)
    except ValueError:
        margin = -1.0
    if not 0.0 <= margin <= 1.0:
        raise InferenceError(
            f"--lung-constraint takes a margin in [0, 1] (a share of the lung field's side) or none, got {text!r}"
        )
    return margin


def _load(path, tta, constraint):
    """The predictor of `path`, checked to take 8-bit grey slices, its lung constraint replaced unless `"own"`."""
    from tf_resattn.inference.predictors import load_predictor

    predictor = load_predictor(path, tta=tta)
    if predictor.preprocessing.input_kind != "uint8":
        raise InferenceError(f"model {path} takes Hounsfield units; the robustness shifts are for 8-bit grey models")
    if constraint != "own":
        predictor.preprocessing = dataclasses.replace(predictor.preprocessing, lung_constraint=constraint)
    return predictor


def _segmenter(predictor, batch_size):
    """Raw slices `[n, H, W]` -> label maps `[n, H, W]` (the predictor's own lung crop and constraint included)."""
    from tf_resattn.inference.predict import segment

    return lambda raw: segment(predictor, raw, batch_size)


def field_coverage(raw, masks, num_classes, shifts, margin):
    """`{shift: shares}` for the scored shifts: per class (and `"infection"`) the share of the true pixels inside the
    lung field grown by `margin`, and `"area"`, the field's share of the image: what a lung constraint keeps at most."""
    from tf_resattn.inference.robustness import SHIFTS, truth_inside_field

    return {name: truth_inside_field(*SHIFTS[name](raw, masks), margin, num_classes) for name in shifts}


def write_worst_under_combined(segmenter, raw, masks, num_classes, path, count=6):
    """Overlays of the `count` slices with the lowest infection Dice under the combined shift: image, truth, prediction.

    Returns the `[{"slice": index, "infection_dice": d}]` shown, worst first.
    """
    from tf_resattn.inference.robustness import COMBINED, SHIFTS, worst_slices_figure

    shifted, shifted_masks = SHIFTS[COMBINED](raw, masks)
    return worst_slices_figure(shifted, shifted_masks, segmenter(shifted), num_classes, path, count)


def coverage_table(coverage):
    """`{shift: shares}` -> a Markdown table: per shift, the share of each true class inside the field."""
    columns = [key for key in next(iter(coverage.values())) if key != "area"]
    header = ["shift", *columns, "field's share of the image"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for shift, shares in coverage.items():
        lines.append(f"| {shift} | " + " | ".join(f"{shares[c]:.3f}" for c in columns) + f" | {shares['area']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = parse_args(argv)

    def command():
        run(args)
        return 0

    return run_with_one_line_errors(PROGRAM, command, (ExportError, DataError, FileNotFoundError))
