"""Figures of a run folder (matplotlib, Agg backend, no display needed).

- `learning_curves.png`: training and validation loss, and validation mean foreground Dice, per epoch,
  one line per fold, one colour per variant;
- `dice_per_fold.png`: per-class Dice on each test fold, one bar per variant;
- `overlay.png`: like the paper's Fig. 5: test slices, the truth and each variant's prediction
  overlaid in the class colours, with a legend.
"""

import csv
import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.classes import CLASS_COLORS, class_names
from tf_resattn.training.files import replaced_atomically


def write_figures(run_dir, results, max_overlay_slices=4):
    """Writes the three figures for the finished folds of `run_dir`; returns the paths written."""
    run_dir = pathlib.Path(run_dir)
    if not results["variants"]:
        return []
    num_classes = results["config"].get("num_classes", 4)
    written = [
        _save(learning_curves(run_dir, list(results["variants"])), run_dir / "learning_curves.png"),
        _save(dice_per_fold(results, num_classes), run_dir / "dice_per_fold.png"),
    ]
    figure = overlay(run_dir, list(results["variants"]), num_classes, max_overlay_slices)
    if figure is not None:
        written.append(_save(figure, run_dir / "overlay.png"))
    return written


def learning_curves(run_dir, variants):
    """Loss (solid: training, dashed: validation) and validation mean foreground Dice per epoch."""
    figure, (loss_axis, dice_axis) = optional.pyplot().subplots(1, 2, figsize=(11, 4))
    for colour, variant in zip(_colours(), variants):
        for k, path in enumerate(sorted((run_dir / variant).glob("fold_*/history.csv"))):
            rows = list(csv.DictReader(path.open()))
            epochs = [int(r["epoch"]) for r in rows]
            label = variant if k == 0 else None
            loss_axis.plot(epochs, [float(r["loss"]) for r in rows], color=colour, label=label)
            if rows and "val_loss" in rows[0]:
                loss_axis.plot(epochs, [float(r["val_loss"]) for r in rows], color=colour, linestyle="--")
            if rows and "val_mean_fg_dice" in rows[0]:
                dice_axis.plot(epochs, [float(r["val_mean_fg_dice"]) for r in rows], color=colour, label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss (solid: training, dashed: validation)")
    dice_axis.set(xlabel="epoch", ylabel="mean foreground Dice", title="Validation mean foreground Dice")
    loss_axis.legend()
    dice_axis.legend()
    figure.tight_layout()
    return figure


def dice_per_fold(results, num_classes):
    """One panel per foreground class: Dice on each test fold, one bar per variant."""
    names = class_names(num_classes)[1:]
    variants = results["variants"]
    folds = sorted({int(k) for r in variants.values() for k in r["folds"]})
    figure, axes = optional.pyplot().subplots(1, len(names), figsize=(4 * len(names), 3.5), squeeze=False)
    width = 0.8 / len(variants)
    for axis, name in zip(axes[0], names):
        for i, (colour, (variant, r)) in enumerate(zip(_colours(), variants.items())):
            values = [r["folds"].get(str(k), {}).get("dice", {}).get(name, np.nan) for k in folds]
            axis.bar(np.arange(len(folds)) + i * width, values, width, color=colour, label=variant)
        axis.set(title=f"Dice {name}", xlabel="test fold", ylim=(0, 1))
        axis.set_xticks(np.arange(len(folds)) + 0.4 - width / 2, [str(k) for k in folds])
    axes[0][0].set_ylabel("Dice (per slice, where present)")
    axes[0][0].legend()
    figure.tight_layout()
    return figure


def overlay(run_dir, variants, num_classes, max_slices=4, worst=False):
    """Fig. 5 of the paper: per row a test slice; columns image, truth, each variant's prediction.

    Picks the test slices predicted by every variant with the most foreground classes (then the
    largest foreground), or with `worst` the infected slices on which the first variant's binary
    infection Dice (any class 1-3) is lowest. Returns None when no slice was predicted by all variants.
    """
    predictions = {v: _load_predictions(run_dir / v) for v in variants}
    if any(p is None for p in predictions.values()):
        return None
    common = set.intersection(*(set(p["indices"].tolist()) for p in predictions.values()))
    if not common:
        return None
    first = predictions[variants[0]]
    row_of = {int(i): r for r, i in enumerate(first["indices"])}

    def richness(index):
        truth = first["y_true"][row_of[index]]
        return (len(np.unique(truth[truth > 0])), int((truth > 0).sum()))

    def infection_dice(index):
        truth, predicted = first["y_true"][row_of[index]] > 0, first["y_pred"][row_of[index]] > 0
        return 2.0 * np.sum(truth & predicted) / (np.sum(truth) + np.sum(predicted))

    if worst:
        chosen = sorted((i for i in common if first["y_true"][row_of[i]].any()), key=infection_dice)[:max_slices]
    else:
        chosen = sorted(common, key=richness, reverse=True)[:max_slices]
    columns = ["image", "truth"] + variants
    figure, axes = optional.pyplot().subplots(
        len(chosen), len(columns), figsize=(2.6 * len(columns), 2.6 * len(chosen)), squeeze=False
    )
    for row, index in enumerate(chosen):
        image = first["images"][row_of[index]]
        panels = [None, first["y_true"][row_of[index]]]
        for v in variants:
            p = predictions[v]
            panels.append(p["y_pred"][int(np.flatnonzero(p["indices"] == index)[0])])
        for axis, title, labels in zip(axes[row], columns, panels):
            axis.imshow(image if labels is None else _blend(image, labels), cmap="gray" if labels is None else None)
            axis.set_axis_off()
            if row == 0:
                axis.set_title(title)
        axes[row][0].text(
            0.02,
            0.98,
            str(first["names"][row_of[index]]),
            color="white",
            fontsize=8,
            va="top",
            transform=axes[row][0].transAxes,
        )
    colours = np.asarray(CLASS_COLORS[:num_classes]) / 255.0
    Patch = optional.require("matplotlib.patches", "train").Patch
    handles = [Patch(color=colours[c], label=name) for c, name in enumerate(class_names(num_classes)) if c > 0]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure


def write_worst_overlay(run_dir, variants, path, num_classes=4, max_slices=4):
    """Writes `overlay(..., worst=True)` of a run's test predictions to `path`; returns the path or None."""
    figure = overlay(pathlib.Path(run_dir), list(variants), num_classes, max_slices, worst=True)
    return None if figure is None else _save(figure, pathlib.Path(path))


def _blend(image, labels, alpha=0.55):
    """Grey uint8 image `[H, W]` with labels `[H, W]` painted in the class colours -> RGB float."""
    grey = np.repeat(image[..., None] / 255.0, 3, axis=-1)
    colours = np.asarray(CLASS_COLORS, dtype=float)[np.minimum(labels, len(CLASS_COLORS) - 1)] / 255.0
    painted = labels[..., None] > 0
    return np.where(painted, (1 - alpha) * grey + alpha * colours, grey)


def _load_predictions(variant_dir):
    """All folds' `predictions.npz` of one variant, concatenated, or None when there is none."""
    parts = [np.load(p) for p in sorted(variant_dir.glob("fold_*/predictions.npz"))]
    if not parts:
        return None
    return {key: np.concatenate([p[key] for p in parts]) for key in ("indices", "names", "y_true", "y_pred", "images")}


def _colours():
    return optional.pyplot().rcParams["axes.prop_cycle"].by_key()["color"]


def _save(figure, path):
    """Saves a figure as PNG under a temporary name, then renames it into place."""
    try:
        with replaced_atomically(path) as tmp:
            figure.savefig(tmp, dpi=110, format="png")
    finally:
        optional.pyplot().close(figure)
    return path
