"""Colour overlays of label maps with a legend: `overlays/<name>[_<slice>].png` per slice drawn.

By default the `DEFAULT_OVERLAYS` slices of each scan with the most infection are drawn
(`overlay_slices`); `"all"` draws every slice, `"none"` none.

Each overlay is the slice in the model's window with the infection labels in the
colours of `tf_resattn.classes.CLASS_COLORS` blended in, and a legend box.
"""

import pathlib

import numpy as np

from tf_resattn import optional
from tf_resattn.classes import CLASS_COLORS, class_names

cv2 = optional.module("cv2", "io")

OVERLAY_OPACITY = 0.45


def overlay(grey, labels, num_classes):
    """RGB uint8 `[H, W, 3]`: grey `[H, W]` in [0, 1] with the infection labels blended in and a legend."""
    rgb = np.repeat(np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    colours = np.array([CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(num_classes)], dtype=np.float32)
    infected = labels > 0
    rgb[infected] = np.round(
        (1 - OVERLAY_OPACITY) * rgb[infected] + OVERLAY_OPACITY * colours[labels[infected]]
    ).astype(np.uint8)
    return draw_legend(rgb, num_classes)


def draw_legend(rgb, num_classes):
    """Draws a box with each infection class's colour and name in the top-left corner of `rgb` (in place)."""
    scale = max(0.3, rgb.shape[1] / 1400)
    line = int(round(28 * scale / 0.5))
    names = class_names(num_classes)[1:]
    width = int(max(cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for n in names) + 2.2 * line)
    cv2.rectangle(
        rgb, (0, 0), (min(width, rgb.shape[1] - 1), min(line * len(names) + line // 3, rgb.shape[0] - 1)), (0, 0, 0), -1
    )
    for row, name in enumerate(names, start=0):
        top = row * line + line // 4
        cv2.rectangle(
            rgb,
            (line // 4, top),
            (line // 4 + line // 2, top + line // 2),
            CLASS_COLORS[(row + 1) % len(CLASS_COLORS)],
            -1,
        )
        cv2.putText(
            rgb, name, (line, top + line // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return rgb


DEFAULT_OVERLAYS = 6
"""Overlays written per scan by default: its slices with the most infection."""


def overlay_slices(labels, choice):
    """The slice indices to draw, in order: all, none, or the `choice` slices with the most infection.

    Args:
        labels: `[N, H, W]` label maps of one scan.
        choice: `"all"`, `"none"` or a whole number N >= 0.

    Example:
        >>> labels = np.zeros((4, 2, 2), np.uint8); labels[2, 0] = 1; labels[3] = 2
        >>> overlay_slices(labels, 2), overlay_slices(labels, "none"), overlay_slices(labels, "all")
        ([2, 3], [], [0, 1, 2, 3])
    """
    if choice == "all":
        return list(range(len(labels)))
    if choice == "none":
        return []
    infected = (np.asarray(labels) > 0).reshape(len(labels), -1).sum(axis=1)
    return sorted(np.argsort(-infected, kind="stable")[: int(choice)].tolist())


def check_overlay_choice(choice):
    """`choice` as `"all"`, `"none"` or an int >= 0; `ValueError` with the accepted values otherwise."""
    if choice in ("all", "none"):
        return choice
    if isinstance(choice, str) and choice.isdigit():
        return int(choice)
    if isinstance(choice, int) and not isinstance(choice, bool) and choice >= 0:
        return choice
    raise ValueError(f"overlays must be all, none or a number of slices (e.g. 6), got {choice!r}")


def write_overlays(scan, labels, preprocessing, num_classes, out_dir, choice=DEFAULT_OVERLAYS):
    """Writes overlay PNGs of the slices `overlay_slices(labels, choice)` picks under `out_dir/overlays`.

    Returns the paths relative to `out_dir`.
    """
    picked = overlay_slices(labels, choice)
    if not picked:
        return []
    folder = pathlib.Path(out_dir) / "overlays"
    folder.mkdir(exist_ok=True)
    paths = []
    for k in picked:
        raw, label_slice = scan.slices[k], labels[k]
        suffix = "" if len(scan.slices) == 1 else f"_{k:03d}"
        path = folder / f"{scan.name}{suffix}.png"
        rgb = overlay(preprocessing.scale(raw), np.asarray(label_slice), num_classes)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(str(path.relative_to(out_dir)))
    return paths
