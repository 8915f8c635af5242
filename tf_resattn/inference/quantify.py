"""Quantification of a label map: per-class amounts and the infection burden.

Amounts are in mL when the pixel spacing and the slice distance are known
(volumes), in mm^2 when only the pixel spacing is (2-D slices), otherwise in
pixels, and the report says which. The infection burden is the infected share
of the lung field (`lung_field.py`), in percent.
"""

import numpy as np

from tf_resattn.classes import class_names


def amount_unit(spacing_mm, thickness_mm):
    """`(unit, amount per pixel)`: `("mL", row*col*thickness/1000)`, `("mm^2", row*col)` or `("pixels", 1)`."""
    if spacing_mm is None:
        return "pixels", 1.0
    area = float(spacing_mm[0]) * float(spacing_mm[1])
    if thickness_mm is None:
        return "mm^2", area
    return "mL", area * float(thickness_mm) / 1000.0


def quantify(labels, lung_field, num_classes, spacing_mm=None, thickness_mm=None):
    """Per-class amounts and the infection burden of one scan.

    Args:
        labels: int label map `[N, H, W]` (0 background, 1.. infection classes).
        lung_field: bool `[N, H, W]`.
        num_classes: classes of the model.
        spacing_mm: (row, col) pixel size in mm, or None.
        thickness_mm: slice distance in mm, or None.

    Returns:
        A JSON-serialisable dict: `unit`, `amount_per_pixel`, `classes`
        {name: {"pixels", "amount"}}, `infection`, `lung_field` (each
        {"pixels", "amount"}), `infection_burden_percent` (None when the lung
        field is empty), and a `note` when amounts are in pixels.

    Example:
        >>> labels = np.zeros((1, 10, 10), np.uint8)
        >>> labels[0, :5] = 1  # 50 pixels of ground glass
        >>> q = quantify(labels, np.ones((1, 10, 10), bool), 4, spacing_mm=(0.5, 0.5))
        >>> q["unit"], q["classes"]["ground_glass"]["amount"]
        ('mm^2', 12.5)
    """
    labels = np.asarray(labels)
    lung_field = np.asarray(lung_field, dtype=bool)
    unit, per_pixel = amount_unit(spacing_mm, thickness_mm)
    # per slice: one count of a 300-slice volume would first copy it into 64-bit integers (630 MB)
    counts = sum(
        np.bincount(labels_slice.ravel(), minlength=num_classes)
        for labels_slice in labels.reshape(-1, *labels.shape[-2:])
    )

    def amount(pixels):
        return {"pixels": int(pixels), "amount": float(pixels) * per_pixel}

    infection = labels > 0
    lung_pixels = int(lung_field.sum())
    infected = int((infection & lung_field).sum())
    report = {
        "unit": unit,
        "amount_per_pixel": per_pixel,
        "classes": {name: amount(count) for name, count in zip(class_names(num_classes), counts)},
        "infection": amount(infection.sum()),
        "lung_field": amount(lung_pixels),
        "infection_burden_percent": 100.0 * infected / lung_pixels if lung_pixels else None,
    }
    if unit == "pixels":
        report["note"] = "no pixel spacing known: amounts are pixel counts"
    return report


def format_table(items):
    """A text table, one row per scan: per infection class, all infection, lung field (amount and unit), burden.

    Args:
        items: list of `(name, quantification)` pairs.
    """
    if not items:
        return ""
    names = list(items[0][1]["classes"])[1:]
    header = ["scan", "unit"] + names + ["infection", "lung_field", "burden_%"]
    rows = []
    for name, q in items:
        burden = q["infection_burden_percent"]
        rows.append(
            [name, q["unit"]]
            + [_number(q["classes"][c]["amount"]) for c in names]
            + [
                _number(q["infection"]["amount"]),
                _number(q["lung_field"]["amount"]),
                "-" if burden is None else f"{burden:.2f}",
            ]
        )
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = [
        "  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header] + rows
    ]
    return "\n".join(lines)


def _number(value):
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
