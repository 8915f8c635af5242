"""The lung field of a slice without labels: the chest cavity inside the body wall.

Dense infection at the lung's border (consolidation in the dependent lung, pleural effusion
against the chest wall) is as bright as the chest wall in any window, so no grey-level rule
tells it from the wall. The wall's thickness does: the field is the body minus a rind as
thick as the thinnest wall that covers the aerated lung. Per 2-D slice:

1. dark pixels: below `LUNG_THRESHOLD_HU` (-320 HU) for Hounsfield units; for 8-bit grey in an
   unknown window, at or below Otsu's threshold, and when that leaves no aerated lung (a wide
   window shows the lung dark grey and only the air outside black), Otsu's threshold of the
   pixels above the first one;
2. the body: every pixel not in a dark component that touches the frame, opened by a disc of
   `TABLE_OPENING` of the frame's side (a table band or a cable joined to the body by a thin
   bridge falls away) and reduced to its largest component, holes filled;
3. the aerated lungs: dark components inside the body larger than `MIN_COMPONENT_FRACTION` of
   the frame;
4. the wall: the distance of each body pixel to the outside (the frame's edge counts as
   outside); the wall's thickness is `WALL_SHARE` of the distance of the aerated lung's
   nearest pixels (their `NEAREST_PERCENTILE`-th percentile), so no aerated lung falls in it;
5. the field: the body pixels deeper than the wall (it holds both lungs with their dense
   borders, the mediastinum and the spine; it leaves out the body wall, breast tissue, the
   table and the air around).

When no aerated lung is found (a slice below the lungs, lungs entirely consolidated) the wall
is `FALLBACK_WALL_SHARE` of the body's half width; the result says so. A slice of one value
(blank, all air) has no body and an empty field.

A slice larger than `WORKING_SIDE` on its longer side is found at that size (area-averaged) and
the masks brought back by nearest neighbour: the field is coarse by design, and a 512x512 slice
costs a quarter of the time.
"""

import dataclasses

import numpy as np

from tf_resattn import optional

cv2 = optional.module("cv2", "io")
ndimage = optional.module("scipy.ndimage", "io")

LUNG_THRESHOLD_HU = -320.0
MIN_COMPONENT_FRACTION = 0.002
TABLE_OPENING = 0.015
WALL_SHARE = 0.8
NEAREST_PERCENTILE = 0.5
FALLBACK_WALL_SHARE = 0.15
WORKING_SIDE = 256
MIN_LUNG_FRACTION = 0.01
"""Aerated lung under this share of the frame counts as none found (a few airways, the stomach's gas)."""

METHOD = (
    "per slice: the body (pixels not in dark regions touching the frame, table bands opened away) minus a wall "
    "0.8 times as thick as the skin-to-aerated-lung distance; dark: below -320 HU, or at or below Otsu's threshold"
)
"""The method in one line, for reports."""


@dataclasses.dataclass
class LungField:
    """The lung field of one slice.

    Attributes:
        mask: bool `[H, W]`, the field.
        body: bool `[H, W]`, the body (holes filled).
        aerated: bool `[H, W]`, the aerated lung found inside the body.
        status: `"found"`, `"one lung"` (a single aerated component: the field still spans the
            cavity) or `"no lung"` (no aerated lung: the fallback wall).
    """

    mask: np.ndarray
    body: np.ndarray
    aerated: np.ndarray
    status: str


def _otsu(values):
    """Otsu's threshold of 8-bit values (any shape)."""
    grey = np.clip(np.round(values), 0, 255).astype(np.uint8).reshape(-1, 1)
    threshold, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return threshold


def _components_off_border(mask):
    """Labels of `mask`'s components and a bool per label: True where the component touches the frame."""
    components, count = ndimage.label(mask)
    touches = np.zeros(count + 1, dtype=bool)
    touches[np.unique(np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]]))] = True
    touches[0] = False
    return components, touches


def _body(dark):
    """Step 2: bool `[H, W]` body (largest component of what is not outside air, opened, holes filled)."""
    components, touches = _components_off_border(dark)
    outside = touches[components]
    side = min(dark.shape)
    radius = max(1, int(round(TABLE_OPENING * side)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    opened = cv2.morphologyEx((~outside).astype(np.uint8), cv2.MORPH_OPEN, disc)
    pieces, count = ndimage.label(opened)
    if count == 0:
        return np.zeros(dark.shape, dtype=bool)
    largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
    return ndimage.binary_fill_holes(pieces == largest)


def _aerated(dark, body):
    """Step 3: bool `[H, W]` dark components inside the body, each at least `MIN_COMPONENT_FRACTION` of the frame."""
    components, count = ndimage.label(dark & body)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= MIN_COMPONENT_FRACTION * dark.size
    keep[0] = False
    return keep[components], int(keep.sum())


def _dark_candidates(raw_slice, input_kind):
    """Step 1: the dark masks to try, in order."""
    if input_kind == "hu":
        yield raw_slice < LUNG_THRESHOLD_HU
        return
    first = _otsu(raw_slice)
    yield raw_slice <= first
    brighter = raw_slice[raw_slice > first]
    if brighter.size:
        yield raw_slice <= _otsu(brighter)


def _outside_distance(body):
    """Distance of each pixel to the nearest pixel outside the body, the frame's edge counting as outside."""
    padded = np.pad(body, 1).astype(np.uint8)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def find_lung_field(raw_slice, input_kind):
    """The lung field of one slice (steps 1-5 of the module docstring).

    Args:
        raw_slice: `[H, W]` raw values, Hounsfield units or 8-bit grey (0..255) in any window.
        input_kind: `"hu"` or `"uint8"`.

    Returns:
        `LungField`.
    """
    raw_slice = np.asarray(raw_slice, dtype=np.float32)
    scale = WORKING_SIDE / max(raw_slice.shape)
    if scale >= 1:
        return _field_at_size(raw_slice, input_kind)
    small = cv2.resize(
        raw_slice,
        (max(1, round(raw_slice.shape[1] * scale)), max(1, round(raw_slice.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )
    found = _field_at_size(small, input_kind)
    size = (raw_slice.shape[1], raw_slice.shape[0])
    masks = [
        cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)
        for m in (found.mask, found.body, found.aerated)
    ]
    return LungField(*masks, found.status)


def _field_at_size(raw_slice, input_kind):
    """`find_lung_field` at the slice's own size; a slice of one value (blank, all air) has no body and no field."""
    if np.ptp(raw_slice) == 0:
        empty = np.zeros(raw_slice.shape, dtype=bool)
        return LungField(empty, empty, empty, "no lung")
    best = None
    for dark in _dark_candidates(raw_slice, input_kind):
        body = _body(dark)
        aerated, pieces = _aerated(dark, body)
        if best is None or aerated.sum() > best[1].sum():
            best = (body, aerated, pieces)
        if aerated.mean() >= MIN_LUNG_FRACTION:
            break
    body, aerated, pieces = best
    depth = _outside_distance(body)
    if aerated.mean() >= MIN_LUNG_FRACTION:
        wall = WALL_SHARE * float(np.percentile(depth[aerated], NEAREST_PERCENTILE))
        status = "found" if pieces > 1 else "one lung"
    else:
        wall = FALLBACK_WALL_SHARE * float(depth.max())
        status = "no lung"
    return LungField(body & (depth > wall), body, aerated, status)
