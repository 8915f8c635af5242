"""The lung field: where infection can be, the denominator of the infection burden.

Method (per 2-D slice, the same for one slice and a 100-slice volume):

1. dark pixels: below `LUNG_THRESHOLD_HU` (-320 HU, between aerated lung at about
   -850 HU and soft tissue at 0..60 HU) for Hounsfield-unit input; for 8-bit grey
   input, whose window is unknown, at or below Otsu's threshold of the slice (the grey
   value that best separates the dark air/lung mode from the bright tissue mode);
2. air outside the body: dark components that touch the image border are dropped;
3. specks: components smaller than `MIN_COMPONENT_FRACTION` of the slice are dropped
   (bowel gas, noise); the trachea and main bronchi may stay, they are small;
4. each remaining component (a lung, or both when they touch) is replaced by its
   convex hull: vessels, nodules and ground-glass or consolidation enclosed by or
   lying in the concavities of aerated lung become lung (on the 98 labelled
   real MedSeg slices this raises the share of labelled infection inside the
   field, before step 5, from 62 % to about 76 % of all infected pixels);
5. the predicted infection is added: dense consolidation and pleural effusion at
   the lung's edge are brighter than the threshold and would otherwise fall outside.

The result is an estimate for the burden's denominator, not a lung segmentation
to be reported on its own.

`constrain_to_lung_field` uses steps 1-4 (grown by a margin) as a constraint on predictions, and
`truth_inside_lung_field` measures what such a constraint would cut: the share of each class of
the true labels that lies inside the field. `scripts/robustness.py --lung-field MARGIN` reports
both under every acquisition shift.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.classes import class_names

cv2 = optional.module("cv2", "io")
ndimage = optional.module("scipy.ndimage", "io")

METHOD = (
    "per slice: pixels below -320 HU (8-bit input: at or below Otsu's threshold), minus components touching the "
    "border or under 0.2 % of the slice, each component replaced by its convex hull, plus the predicted infection"
)
"""The method in one line, for reports."""

LUNG_THRESHOLD_HU = -320.0
MIN_COMPONENT_FRACTION = 0.002


def dark_pixels(raw_slice, input_kind):
    """Step 1: bool `[H, W]`, pixels darker than the lung threshold of `input_kind` ("hu" or "uint8")."""
    raw_slice = np.asarray(raw_slice, dtype=np.float32)
    if input_kind == "hu":
        return raw_slice < LUNG_THRESHOLD_HU
    grey = np.clip(np.round(raw_slice), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return grey <= threshold  # OpenCV: levels <= the threshold are the dark class


def lung_field_slice(raw_slice, input_kind, infection=None):
    """The lung field of one slice (steps 1-5 of the module docstring).

    Args:
        raw_slice: `[H, W]` raw values (HU or 8-bit grey).
        input_kind: `"hu"` or `"uint8"`.
        infection: optional bool `[H, W]` predicted infection, added in step 5.

    Returns:
        bool `[H, W]`.
    """
    dark = dark_pixels(raw_slice, input_kind)
    components, count = ndimage.label(dark)
    border = np.unique(np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]]))
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= MIN_COMPONENT_FRACTION * dark.size
    keep[border] = False
    keep[0] = False
    field = np.zeros(dark.shape, dtype=np.uint8)
    for index in np.flatnonzero(keep):
        hull = cv2.convexHull(cv2.findNonZero((components == index).astype(np.uint8)))
        cv2.fillPoly(field, [hull], 1)
    field = field.astype(bool)
    if infection is not None:
        field |= np.asarray(infection, dtype=bool)
    return field


def lung_field(raw_slices, input_kind, labels=None):
    """The lung field of each slice: bool `[N, H, W]` for raw slices `[N, H, W]` and label maps `[N, H, W]` or None."""
    return np.stack(
        [
            lung_field_slice(raw, input_kind, None if labels is None else labels[k] > 0)
            for k, raw in enumerate(raw_slices)
        ]
    )


def grown_lung_field(raw_slices, input_kind, margin):
    """Steps 1-4 of each slice, grown by a disc of radius `margin` pixels: bool `[N, H, W]` for raw `[N, H, W]`."""
    fields = lung_field(raw_slices, input_kind).astype(np.uint8)
    if margin > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
        fields = np.stack([cv2.dilate(field, disc) for field in fields])
    return fields.astype(bool)


def constrain_to_lung_field(raw_slices, labels, input_kind, margin):
    """Label maps `[N, H, W]` with every label outside the grown lung field set to background (0).

    Args:
        raw_slices: `[N, H, W]` raw values (HU or 8-bit grey) the labels were predicted from.
        labels: integer `[N, H, W]`.
        input_kind: `"hu"` or `"uint8"`.
        margin: pixels the field of steps 1-4 is grown by (pleural effusion and consolidation at
            the lung's edge lie outside the aerated lung).
    """
    return np.where(grown_lung_field(raw_slices, input_kind, margin), labels, 0).astype(np.asarray(labels).dtype)


def truth_inside_lung_field(raw_slices, masks, input_kind, margin, num_classes):
    """Share of each foreground class's true pixels inside the grown lung field, and of all infection.

    Returns:
        `{class name: share}` for the foreground classes present in `masks` (pooled over the
        slices), `"infection"`: the share of all foreground pixels, and `"area"`: the share of the
        image the field covers.
    """
    masks = np.asarray(masks)
    field = grown_lung_field(raw_slices, input_kind, margin)
    shares = {name: float((field & (masks == c)).sum() / (masks == c).sum())
              for c, name in enumerate(class_names(num_classes)) if c > 0 and (masks == c).any()}
    shares["infection"] = float((field & (masks > 0)).sum() / max(int((masks > 0).sum()), 1))
    shares["area"] = float(field.mean())
    return shares
