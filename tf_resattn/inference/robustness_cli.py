"""`scripts/robustness.py MODEL [MODEL ...] --data DIR`: Dice under controlled acquisition shifts, per model.

Writes `robustness.json`, `robustness.md` (the table) and `robustness.png` (the plot) into `--out`
and prints the table. Exit status 0, 2 on bad input (one line on stderr), 130 when interrupted.
"""

import argparse
import json
import pathlib

from tf_resattn.command_line import run_with_one_line_errors
from tf_resattn.inference.model_files import ExportError
from tf_resattn.io import DataError

PROGRAM = "robustness.py"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("models", nargs="+", help=".keras files or cv_train run folders (fold ensembles) to compare")
    parser.add_argument("--data", required=True, help="folder of 8-bit slices with masks (e.g. ../shared/data/medseg100)")
    parser.add_argument("--splits", help="score only the test ids of this split file (e.g. splits/infnet-50-48.json)")
    parser.add_argument("--names", nargs="+", help="one display name per model (default: the paths)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation for every model")
    parser.add_argument("--shifts", nargs="+", metavar="SHIFT",
                        help="only these shifts, by name (quoted, e.g. none 'gamma 2'; default all; 'none' is always scored)")
    parser.add_argument("--lung-field", type=int, metavar="MARGIN",
                        help="set predicted labels outside the lung field grown by MARGIN pixels to background, and "
                             "report how much of the true infection that field holds under each shift")
    parser.add_argument("--out", required=True, help="folder for robustness.json, .md and .png")
    parser.add_argument("--batch-size", type=int, default=8, help="slices per model call (default 8)")
    return parser.parse_args(argv)


def scored_slices(data, splits):
    """Raw 8-bit slices `[N, H, W]` float32 and masks `[N, H, W]` at the stored size (the split's test ids only)."""
    from tf_resattn.data import load_slices

    slices = load_slices(data, image_size=None)
    if slices.input_kind != "uint8":
        raise ExportError(f"{data} holds Hounsfield units; the robustness shifts are defined for 8-bit grey slices")
    if splits:
        from tf_resattn.training.config import ConfigError
        from tf_resattn.training.folds import read_fixed_split

        try:
            slices = slices.subset(read_fixed_split(splits, slices.names)["test"])
        except ConfigError as error:
            raise ExportError(str(error)) from None
    return slices.images[..., 0] * 255.0, slices.masks


def run(args):
    """Scores every model under every shift; returns `{name: rows}`."""
    from tf_resattn.inference.predictors import load_predictor
    from tf_resattn.inference.robustness import SHIFTS, markdown_table, plot, robustness_table

    names = args.names or args.models
    if len(names) != len(args.models):
        raise ExportError(f"--names gives {len(names)} names for {len(args.models)} models")
    unknown = [name for name in args.shifts or () if name not in SHIFTS]
    if unknown:
        raise ExportError(f"unknown shift {unknown[0]!r}; choose from: {', '.join(SHIFTS)}")
    if args.lung_field is not None and args.lung_field < 0:
        raise ExportError(f"--lung-field takes a margin of 0 or more pixels, got {args.lung_field}")
    raw, masks = scored_slices(args.data, args.splits)
    tables = {}
    for name, path in zip(names, args.models):
        predictor = load_predictor(path, tta=args.tta)
        if predictor.preprocessing.input_kind != "uint8":
            raise ExportError(f"model {path} takes Hounsfield units; the robustness shifts are for 8-bit grey models")
        tables[name] = robustness_table(_segmenter(predictor, args), raw, masks, predictor.num_classes, args.shifts)
    shifts = [row["shift"] for row in next(iter(tables.values()))]
    coverage = None if args.lung_field is None else field_coverage(raw, masks, predictor.num_classes, shifts, args.lung_field)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps({"data": args.data, "splits": args.splits, "tta": args.tta,
                                                     "lung_field_margin": args.lung_field, "truth_inside_lung_field": coverage,
                                                     "slices": len(raw), "models": tables}, indent=1))
    table = markdown_table(tables)
    if coverage is not None:
        table += f"\n\nPredictions kept inside the lung field grown by {args.lung_field} pixels; the truth inside that field:\n\n"
        table += coverage_table(coverage)
    (out / "robustness.md").write_text(f"# Robustness to acquisition shifts\n\n{len(raw)} slices of {args.data}.\n\n{table}\n")
    plot(tables, out / "robustness.png")
    print(table)
    return tables


def _segmenter(predictor, args):
    """Raw slices `[n, H, W]` -> label maps, constrained to the lung field when `--lung-field` is given."""
    from tf_resattn.inference.lung_field import constrain_to_lung_field
    from tf_resattn.inference.predict import segment

    def segmenter(raw):
        labels = segment(predictor, raw, args.batch_size)
        return labels if args.lung_field is None else constrain_to_lung_field(raw, labels, "uint8", args.lung_field)

    return segmenter


def field_coverage(raw, masks, num_classes, shifts, margin):
    """`{shift: truth_inside_lung_field(...)}` for the scored shifts: what the constraint can keep at most."""
    from tf_resattn.inference.lung_field import truth_inside_lung_field
    from tf_resattn.inference.robustness import SHIFTS

    return {name: truth_inside_lung_field(SHIFTS[name](raw), masks, "uint8", margin, num_classes) for name in shifts}


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
