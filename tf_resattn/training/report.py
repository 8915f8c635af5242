"""Merge the finished folds of a run folder into `results.json` and `results.md`.

Works on whatever folds exist (`<variant>/fold_<k>/metrics.json`), so folds trained as separate
jobs can be merged at any time (`cv_train.py --report-only --out RUN`).

`results.json`:

    {"run": ..., "n_folds": 5, "grouped": false, "config": {...},
     "variants": {"resattn": {"folds": {"0": <segmentation_report>, ...},
                              "summary": {"mean_foreground_dice": {"mean": m, "std": s, "n": 5}, ...}}}}

`folds` and `summary` hold the headline figures: at the scans' own resolution (each test slice's
prediction resized back to its stored size and scored against its original mask, as a user of
`predict.py` gets it), or at the training size for folds finished before such scores existed
(`resolution` says which). `folds_training_resolution` and `summary_training_resolution` hold the
figures at the training size, against the resized masks.

Summary keys are the report's scalars and `<field>/<class>` for its per-class dicts
(e.g. `dice/ground_glass`). Mean and sample standard deviation (ddof=1) over the folds where the
value is defined: a per-class figure is NaN on a fold whose test slices lack that class, and such
folds are left out (`n` says how many folds count); `std` is NaN with fewer than two folds.
"""

import math
import pathlib

import numpy as np

from tf_resattn.classes import class_names
from tf_resattn.training.files import read_json, write_json_atomic, write_text_atomic
from tf_resattn.training.published import published_table

TABLE_ROWS = (
    ("mean_foreground_dice", "Mean foreground Dice (per slice, classes 1-3)"),
    ("dice/ground_glass", "Dice ground-glass (GGO)"),
    ("dice/consolidation", "Dice consolidation"),
    ("dice/pleural_effusion", "Dice pleural effusion"),
    ("mean_foreground_dice_pooled", "Mean foreground Dice, pooled pixels"),
    ("mean_foreground_iou", "Mean foreground IoU (per slice)"),
    ("pixel_accuracy", "Pixel accuracy (all classes)"),
    ("mean_precision", "Precision (foreground mean)"),
    ("mean_recall", "Recall (foreground mean)"),
    ("paper_style_dsc", "Paper-style DSC (incl. background, pooled)"),
)
"""(summary key, label) of the rows of `results.md`; every key is also in `results.json`."""


def collect_folds(run_dir):
    """Finished test folds: dict variant -> {fold number: metrics.json dict}, variants and folds sorted.

    A `fold_all` model (`--train-all`) has no test fold and is left out.
    """
    found = {}
    for path in sorted(pathlib.Path(run_dir).glob("*/fold_[0-9]*/metrics.json")):
        variant, fold = path.parent.parent.name, int(path.parent.name.split("_")[1])
        found.setdefault(variant, {})[fold] = read_json(path)
    return {v: dict(sorted(folds.items())) for v, folds in found.items()}


def flatten_report(report):
    """`segmentation_report` dict -> flat {key: float}, adding the foreground means of pooled Dice and IoU."""
    flat = {}
    for key, value in report.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{name}": float(v) for name, v in value.items()})
        else:
            flat[key] = float(value)
    for field in ("dice_pooled", "iou"):
        values = [v for k, v in report.get(field, {}).items() if k != "background"]
        flat[f"mean_foreground_{'dice_pooled' if field == 'dice_pooled' else 'iou'}"] = _nanmean(values)
    return flat


def summarise(fold_reports):
    """Mean, sample std and count over folds of every flattened key; NaN folds are left out."""
    flats = [flatten_report(r) for r in fold_reports]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    summary = {}
    for key in keys:
        values = np.array([f.get(key, math.nan) for f in flats], dtype=float)
        values = values[~np.isnan(values)]
        summary[key] = {
            "mean": float(values.mean()) if len(values) else math.nan,
            "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "n": int(len(values)),
        }
    return summary


def build_results(run_dir):
    """The `results.json` dict of the folds finished in `run_dir`."""
    run_dir = pathlib.Path(run_dir)
    config = read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    splits = read_json(run_dir / "splits.json") if (run_dir / "splits.json").exists() else {}
    variants = {}
    for variant, folds in collect_folds(run_dir).items():
        at_training_size = {str(k): m["report"] for k, m in folds.items()}
        at_source = {str(k): m["report_source_resolution"] for k, m in folds.items() if "report_source_resolution" in m}
        headline = at_source if len(at_source) == len(folds) else at_training_size
        variants[variant] = {
            "resolution": "source" if headline is at_source else "training",
            "folds": headline,
            "best_epochs": {str(k): m["best_epoch"] for k, m in folds.items()},
            "train_seconds": {str(k): m["train_seconds"] for k, m in folds.items()},
            "summary": summarise(list(headline.values())),
            "folds_training_resolution": at_training_size,
            "summary_training_resolution": summarise(list(at_training_size.values())),
        }
    return {
        "run": str(run_dir),
        "n_folds": splits.get("n_folds", config.get("n_folds")),
        "grouped": splits.get("grouped", False),
        "fixed_split": splits.get("fixed_split"),
        "split_sizes": [
            {part: len(fold[part]) for part in ("train", "val", "test")} for fold in splits.get("folds", [])
        ],
        "config": config,
        "variants": variants,
    }


def format_cell(stats, n_folds):
    """`{"mean": .81234, "std": .0523, "n": 5}` -> `"0.812 ± 0.052"`; says when fewer folds count."""
    if stats is None or stats["n"] == 0:
        return "n/a"
    if stats["n"] == 1:
        return f"{stats['mean']:.3f}" if n_folds == 1 else f"{stats['mean']:.3f} (1 fold)"
    cell = f"{stats['mean']:.3f} ± {stats['std']:.3f}"
    return cell if stats["n"] == n_folds else f"{cell} ({stats['n']} folds)"


def results_table(results, summary="summary"):
    """Markdown table: one row per metric, one column per variant, `mean ± std` over finished folds.

    `summary` picks the figures: `"summary"` (the headline) or `"summary_training_resolution"`.
    """
    variants = results["variants"]
    lines = ["| metric | " + " | ".join(variants) + " |", "| --- |" + " --- |" * len(variants)]
    for key, label in TABLE_ROWS:
        cells = [format_cell(r[summary].get(key), len(r["folds"])) for r in variants.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(results):
    """The full `results.md`: what was run, the table, how to read it."""
    config, n_folds = results["config"], results["n_folds"]
    done = ", ".join(
        f"{v} {len(r['folds'])}/{n_folds} (folds {','.join(r['folds'])})" for v, r in results["variants"].items()
    )
    names = class_names(config.get("num_classes", 4))
    fixed = results.get("fixed_split")
    if fixed:
        sizes = results["split_sizes"][0]
        layout = (
            f"fixed split `{fixed}` ({sizes['train']} training, {sizes['val']} validation, {sizes['test']} test slices)"
        )
        tested = (
            "Figures on the split's test slices (one model per variant, so no spread is given)."
            if n_folds == 1
            else f"Mean ± sample standard deviation over the {n_folds} fold models, each trained on {n_folds - 1} of {n_folds} "
            "parts of the training ids (its best epoch picked on the part it leaves out) and tested on the same test slices; "
            "`predict.py --model` or `robustness.py` with a variant's folder scores their ensemble."
        )
    else:
        layout = f"{n_folds} folds"
        tested = "Mean ± sample standard deviation over the test folds (each slice is tested exactly once)."
    published = published_table(fixed)
    older = [v for v, r in results["variants"].items() if r.get("resolution") == "training"]
    resolution_note = (
        " (each test slice's prediction resized back to its stored size, scored against its original mask)"
        if not older
        else f" (not recorded for {', '.join(older)}: folds trained before it was; their rows repeat the training size)"
    )
    lines = [
        "# Fixed-split results" if fixed else "# Cross-validation results",
        "",
        f"Data: `{config.get('data')}`; preset `{config.get('preset')}`; {layout}; "
        f"{config.get('image_size')}x{config.get('image_size')} pixels; {config.get('epochs')} epochs; "
        f"loss `{config.get('loss')}`; augmentation `{config.get('augment')}`.",
        f"Finished folds: {done or 'none yet'}.",
        "",
        tested,
        "",
        f"At the scans' own resolution{resolution_note}:",
        "",
        results_table(results),
        "",
        f"At the training size ({config.get('image_size')}x{config.get('image_size')}, against the resized masks):",
        "",
        results_table(results, "summary_training_resolution"),
        "",
        *([*published, ""] if published else []),
        "How to read it:",
        f"- Per-class Dice ({', '.join(names[1:])}): Dice of each test slice, averaged over the slices "
        "where the class is present in the truth; the mean foreground Dice averages these classes. "
        "A fold whose test slices lack a class does not count for that class.",
        "- Pooled Dice: over all pixels of the fold at once. IoU follows the per-slice rule.",
        "- Paper-style DSC: Dice averaged over all classes including background, pooled; the "
        "background dominates it, so it is much higher than the foreground figures. It is given "
        "only for comparison with the paper's way of reporting.",
        f"- The model of each fold is the epoch with the best validation mean foreground Dice; the "
        f"validation slices ({config.get('val_fraction', 0.1):.0%} of the training folds) never "
        "include the test fold, and augmentation touched training slices only, after the split.",
    ]
    if fixed:
        lines.append("- The split is fixed: the test slices are those the split file names.")
    elif results.get("grouped"):
        lines.append("- Folds are grouped: all slices of one group (patient) lie in one fold.")
    else:
        lines.append(
            "- Folds split by slice: no groups (patient ids) were given, so slices of one patient "
            "may lie on both sides of a split, which can flatter the figures."
        )
    return "\n".join(lines) + "\n"


def write_report(run_dir):
    """Writes `results.json` and `results.md` for the finished folds of `run_dir`; returns the results dict."""
    results = build_results(run_dir)
    write_json_atomic(pathlib.Path(run_dir) / "results.json", results)
    write_text_atomic(pathlib.Path(run_dir) / "results.md", results_markdown(results))
    return results


def _nanmean(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan
