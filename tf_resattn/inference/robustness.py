"""How a model's Dice holds up when the test slices look as if another scanner or display made them.

`SHIFTS` are controlled changes of 8-bit grey slices `[N, H, W]` (values 0..255) and their masks:
display window (contrast about mid-grey) and level (brightness), gamma 0.5-2, histogram
equalisation, Gaussian noise and resolution loss change the images only; the other-scanner shifts
(`tf_resattn.data.scanner_shifts`) add a whole-body field of view (the slice shrunk into a frame
with a synthetic body wall, fat layer, table and air: image and masks move together), wide
windows that show aerated lung dark grey, CLAHE and a JPEG export, each on its own and all
combined (`COMBINED`, the headline figure). Their settings lie apart from what training draws
(`scanner_shifts.TRAINING_RANGES`; CLAHE clip 4 on 8 x 8 tiles: above the narrow draws' clips, off the
wide draws' grids), and their random parts use their own seed.
`robustness_table` predicts every shifted copy of the slices and scores it against its masks:
the binary infection Dice (any class 1..C-1 against the infection mask, per slice, averaged
over the slices with infection) and the mean foreground Dice, each with its ratio to the
unshifted figure.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.classes import class_names
from tf_resattn.data import scanner_shifts
from tf_resattn.data.framing import grown_field
from tf_resattn.data.thorax import find_lung_field
from tf_resattn.inference.overlays import overlay
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
        return np.stack(
            [
                cv2.resize(
                    cv2.resize(s, small, interpolation=cv2.INTER_AREA), (width, height), interpolation=cv2.INTER_LINEAR
                )
                for s in x.astype(np.float32)
            ]
        )

    return shift


TEST_SEED = 20270101
"""Seed of the test shifts' random parts (placement in the frame, noise); training draws from its own."""


def _images_only(shift):
    return lambda x, masks: (shift(x), masks)


def _per_slice(shift):
    """`shift(image [H, W], labels [H, W], rng)` -> a shift of slices `[N, H, W]` and masks, each slice its own draw."""

    def shifted(x, masks):
        rng = np.random.default_rng(TEST_SEED)
        pairs = [shift(image, labels, rng) for image, labels in zip(x, masks)]
        return np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs])

    return shifted


def _field_of_view(scale):
    return lambda image, labels, rng: scanner_shifts.field_of_view(
        image, labels, scale, tuple(rng.uniform(-0.6, 0.6, 2))
    )


def _other_scanner(*parts):
    """The parts (`image, labels, rng -> image, labels`) one after the other."""

    def shift(image, labels, rng):
        for part in parts:
            image, labels = part(image, labels, rng)
        return image, labels

    return shift


WIDE_WINDOW = (-1450.0, 1300.0)
NARROW_WIDE_WINDOW = (-1150.0, 650.0)
CLAHE_CLIP = 4.0
CLAHE_TILES = 8
JPEG = {"quality": 30, "blur_sigma": 1.0, "noise_sigma": 5.0}


def _rewindow(window):
    return lambda image, labels, rng: (scanner_shifts.rewindow(image, window), labels)


def _clahe(image, labels, rng):
    return scanner_shifts.clahe(image, CLAHE_CLIP, CLAHE_TILES), labels


def _jpeg(image, labels, rng):
    return scanner_shifts.jpeg_export(image, rng=rng, **JPEG), labels


COMBINED = "other scanner: all combined"
"""The headline shift: field of view 0.6, the wide window, CLAHE and a JPEG export, in that order."""

SHIFTS = {
    "none": lambda x, masks: (x, masks),
    COMBINED: _per_slice(_other_scanner(_field_of_view(0.6), _rewindow(WIDE_WINDOW), _clahe, _jpeg)),
    "window narrower (contrast x1.3)": _images_only(_window(1.3)),
    "window wider (contrast x0.7)": _images_only(_window(0.7)),
    "level +25 (brighter)": _images_only(_level(25.0)),
    "level -25 (darker)": _images_only(_level(-25.0)),
    "gamma 0.5": _images_only(_gamma(0.5)),
    "gamma 0.67": _images_only(_gamma(2 / 3)),
    "gamma 1.5": _images_only(_gamma(1.5)),
    "gamma 2": _images_only(_gamma(2.0)),
    "histogram equalisation": _images_only(_equalise),
    "noise sigma 8": _images_only(_noise(8.0)),
    "down-up sampling 0.5": _images_only(_down_up(0.5)),
    "down-up sampling 0.25": _images_only(_down_up(0.25)),
    "other scanner: field of view 0.7": _per_slice(_field_of_view(0.7)),
    "other scanner: field of view 0.5": _per_slice(_field_of_view(0.5)),
    f"other scanner: wide window {WIDE_WINDOW[0]:g}..{WIDE_WINDOW[1]:g} HU": _per_slice(_rewindow(WIDE_WINDOW)),
    f"other scanner: window {NARROW_WIDE_WINDOW[0]:g}..{NARROW_WIDE_WINDOW[1]:g} HU": _per_slice(
        _rewindow(NARROW_WIDE_WINDOW)
    ),
    f"other scanner: CLAHE clip {CLAHE_CLIP:g}": _per_slice(_clahe),
    "other scanner: JPEG q{quality}, blur {blur_sigma:g}, noise {noise_sigma:g}".format(**JPEG): _per_slice(_jpeg),
}
"""Shift name -> function of 8-bit slices `[N, H, W]` float32 and masks `[N, H, W]`, returning both, images in 0..255."""


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
        shifts: names from `SHIFTS` (default all, "none" first, then the headline `COMBINED`).

    Returns:
        A list of rows `{"shift", "infection_dice", "mean_foreground_dice", "dice" (per foreground
        class), "infection_ratio", "foreground_ratio"}`; ratios are to the "none" row.
    """
    names = list(shifts or SHIFTS)
    if "none" not in names:
        names.insert(0, "none")
    rows = []
    for name in names:
        shifted, shifted_masks = SHIFTS[name](np.asarray(raw_slices, dtype=np.float32), np.asarray(masks))
        labels = segment(shifted.astype(np.float32))
        report = segmentation_report(shifted_masks, labels, num_classes)
        rows.append(
            {
                "shift": name,
                "infection_dice": infection_dice(shifted_masks, labels),
                "mean_foreground_dice": float(report["mean_foreground_dice"]),
                "dice": {k: float(v) for k, v in report["dice"].items()},
            }
        )
    base = next(r for r in rows if r["shift"] == "none")
    for row in rows:
        row["infection_ratio"] = (
            row["infection_dice"] / base["infection_dice"] if base["infection_dice"] else float("nan")
        )
        row["foreground_ratio"] = (
            row["mean_foreground_dice"] / base["mean_foreground_dice"] if base["mean_foreground_dice"] else float("nan")
        )
    return rows


def markdown_table(tables):
    """`{model name: rows}` -> a Markdown table, one row per shift, infection Dice (ratio) per model."""
    models = list(tables)
    lines = [
        "| shift | " + " | ".join(f"{m}: infection Dice (x unshifted)" for m in models) + " |",
        "| --- |" + " --- |" * len(models),
    ]
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


def truth_inside_field(raw_slices, masks, margin, num_classes):
    """Share of each foreground class's true pixels inside the lung field grown by `margin`, pooled over the slices.

    Args:
        raw_slices: float32 `[N, H, W]` 8-bit grey.
        masks: `[N, H, W]` true labels.
        margin: the field's growth, a share of its longer side (`tf_resattn.data.framing.grown_field`).
        num_classes: classes of the labels.

    Returns:
        `{class name: share}` for the classes present, `"infection"`: the share of all foreground
        pixels, `"area"`: the field's mean share of the image.
    """
    masks = np.asarray(masks)
    field = np.stack([grown_field(find_lung_field(raw, "uint8").mask, margin) for raw in raw_slices])
    shares = {
        name: float((field & (masks == c)).sum() / (masks == c).sum())
        for c, name in enumerate(class_names(num_classes))
        if c > 0 and (masks == c).any()
    }
    shares["infection"] = float((field & (masks > 0)).sum() / max(int((masks > 0).sum()), 1))
    shares["area"] = float(field.mean())
    return shares


def worst_slices_figure(raw_slices, masks, labels, num_classes, path, count):
    """Writes a PNG of the `count` slices with the lowest infection Dice: per row the slice, the truth, the prediction.

    Returns `[{"slice": index, "infection_dice": d}]`, worst first (slices with infection only).
    """
    scores = [(k, infection_dice(m[None], p[None])) for k, (m, p) in enumerate(zip(masks, labels)) if (m > 0).any()]
    worst = sorted(scores, key=lambda item: item[1])[:count]
    rows = []
    for k, _ in worst:
        grey = np.clip(raw_slices[k], 0, 255) / 255.0
        tiles = [
            overlay(grey, np.zeros_like(masks[k]), num_classes),
            overlay(grey, masks[k], num_classes),
            overlay(grey, labels[k], num_classes),
        ]
        rows.append(np.concatenate([cv2.resize(t, (256, 256), interpolation=cv2.INTER_AREA) for t in tiles], axis=1))
    if rows:
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return [{"slice": int(k), "infection_dice": float(d)} for k, d in worst]
