"""How a model's Dice holds up when the test slices look as if another scanner or display made them.

`SHIFTS` are controlled changes of 8-bit grey slices `[N, H, W]` (values 0..255), applied to the
images only: display window (contrast about mid-grey) and level (brightness), gamma 0.5-2,
histogram equalisation, Gaussian noise, and resolution loss (down-sampled, then up again).
`robustness_table` predicts every shifted copy of the slices and scores it against the same
masks: the binary infection Dice (any class 1..C-1 against the infection mask, per slice,
averaged over the slices with infection) and the mean foreground Dice, each with its ratio to
the unshifted figure.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.metrics import segmentation_report

cv2 = optional.module("cv2", "io")


def _window(factor):
    return lambda x: np.clip((x - 127.5) * factor + 127.5, 0, 255)


def _level(offset):
    return lambda x: np.clip(x + offset, 0, 255)


def _gamma(gamma):
    return lambda x: 255.0 * (np.clip(x, 0, 255) / 255.0) ** gamma


def _equalise(x):
    return np.stack([cv2.equalizeHist(s.astype(np.uint8)) for s in np.clip(np.round(x), 0, 255)]).astype(np.float32)


def _noise(sigma, seed=0):
    return lambda x: np.clip(x + np.random.default_rng(seed).normal(0.0, sigma, x.shape), 0, 255)


def _down_up(factor):
    def shift(x):
        height, width = x.shape[1:3]
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        return np.stack([cv2.resize(cv2.resize(s, small, interpolation=cv2.INTER_AREA), (width, height),
                                    interpolation=cv2.INTER_LINEAR) for s in x.astype(np.float32)])
    return shift


SHIFTS = {
    "none": lambda x: x,
    "window narrower (contrast x1.3)": _window(1.3),
    "window wider (contrast x0.7)": _window(0.7),
    "level +25 (brighter)": _level(25.0),
    "level -25 (darker)": _level(-25.0),
    "gamma 0.5": _gamma(0.5),
    "gamma 0.67": _gamma(2 / 3),
    "gamma 1.5": _gamma(1.5),
    "gamma 2": _gamma(2.0),
    "histogram equalisation": _equalise,
    "noise sigma 8": _noise(8.0),
    "down-up sampling 0.5": _down_up(0.5),
    "down-up sampling 0.25": _down_up(0.25),
}
"""Shift name -> function of 8-bit slices `[N, H, W]` float32, returning the same shape in 0..255."""


def infection_dice(masks, labels):
    """Binary infection Dice of label maps `[N, H, W]`: any foreground class against any, per slice,
    averaged over the slices whose truth holds infection."""
    truth, predicted = (np.asarray(x) > 0 for x in (masks, labels))
    return float(segmentation_report(truth.astype(np.uint8), predicted.astype(np.uint8), 2)["mean_foreground_dice"])


def robustness_table(segment, raw_slices, masks, num_classes, shifts=None):
    """Dice of the model under each shift of the slices.

    Args:
        segment: callable raw slices `[n, H, W]` -> label maps `[n, H, W]` (e.g. `predict.segment`
            around a predictor).
        raw_slices: float32 `[N, H, W]`, 8-bit grey values.
        masks: `[N, H, W]` true labels.
        num_classes: classes of the labels.
        shifts: names from `SHIFTS` (default all, "none" first).

    Returns:
        A list of rows `{"shift", "infection_dice", "mean_foreground_dice", "dice" (per foreground
        class), "infection_ratio", "foreground_ratio"}`; ratios are to the "none" row.
    """
    names = list(shifts or SHIFTS)
    if "none" not in names:
        names.insert(0, "none")
    rows = []
    for name in names:
        labels = segment(SHIFTS[name](np.asarray(raw_slices, dtype=np.float32)).astype(np.float32))
        report = segmentation_report(masks, labels, num_classes)
        rows.append({
            "shift": name,
            "infection_dice": infection_dice(masks, labels),
            "mean_foreground_dice": float(report["mean_foreground_dice"]),
            "dice": {k: float(v) for k, v in report["dice"].items()},
        })
    base = next(r for r in rows if r["shift"] == "none")
    for row in rows:
        row["infection_ratio"] = row["infection_dice"] / base["infection_dice"] if base["infection_dice"] else float("nan")
        row["foreground_ratio"] = (row["mean_foreground_dice"] / base["mean_foreground_dice"]
                                   if base["mean_foreground_dice"] else float("nan"))
    return rows


def markdown_table(tables):
    """`{model name: rows}` -> a Markdown table, one row per shift, infection Dice (ratio) per model."""
    models = list(tables)
    lines = ["| shift | " + " | ".join(f"{m}: infection Dice (x unshifted)" for m in models) + " |",
             "| --- |" + " --- |" * len(models)]
    for i, row in enumerate(tables[models[0]]):
        cells = [f"{tables[m][i]['infection_dice']:.3f} ({tables[m][i]['infection_ratio']:.2f}x)" for m in models]
        lines.append(f"| {row['shift']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(tables, path):
    """A bar chart of the infection Dice ratio per shift and model, written to `path` (PNG)."""
    plt = optional.pyplot()
    models = list(tables)
    shifts = [r["shift"] for r in tables[models[0]]]
    figure, axes = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(models)
    for j, model in enumerate(models):
        axes.bar(np.arange(len(shifts)) + j * width, [r["infection_ratio"] for r in tables[model]], width, label=model)
    axes.axhline(0.8, color="grey", linestyle="--", linewidth=1, label="0.8x")
    axes.set_xticks(np.arange(len(shifts)) + width * (len(models) - 1) / 2, shifts, rotation=35, ha="right")
    axes.set_ylabel("infection Dice / unshifted")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
