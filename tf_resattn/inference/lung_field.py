"""The aerated lung plus the predicted infection: the denominator of the infection burden.

Method (per 2-D slice, the same for one slice and a 100-slice volume):

1. the aerated lung of `tf_resattn.data.thorax.find_lung_field`: dark pixels (below -320 HU,
   or at or below Otsu's threshold of 8-bit grey) inside the body, specks under 0.2 % of the
   slice dropped (bowel gas, noise); the trachea and main bronchi may stay, they are small;
2. each component (a lung, or both when they touch) is replaced by its convex hull: vessels,
   nodules and ground-glass or consolidation enclosed by or lying in the concavities of
   aerated lung become lung;
3. the predicted infection is added: dense consolidation and pleural effusion at the lung's
   edge are brighter than the threshold and would otherwise fall outside.

The result is an estimate for the burden's denominator, not a lung segmentation to be reported
on its own. The lung field that crops and constrains predictions (the chest inside the body
wall, dense borders included) is `tf_resattn.data.thorax`'s.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.data.thorax import find_lung_field

cv2 = optional.module("cv2", "io")
ndimage = optional.module("scipy.ndimage", "io")

METHOD = (
    "per slice: pixels below -320 HU (8-bit input: at or below Otsu's threshold) inside the body, minus components "
    "under 0.2 % of the slice, each component replaced by its convex hull, plus the predicted infection"
)
"""The method in one line, for reports."""


def lung_field_slice(raw_slice, input_kind, infection=None, aerated=None):
    """The burden's lung field of one slice (steps 1-3 of the module docstring).

    Args:
        raw_slice: `[H, W]` raw values (HU or 8-bit grey).
        input_kind: `"hu"` or `"uint8"`.
        infection: optional bool `[H, W]` predicted infection, added in step 3.
        aerated: bool `[H, W]` aerated lung of step 1 when already found (`SliceRegion.aerated`), else None.

    Returns:
        bool `[H, W]`.
    """
    if aerated is None:
        aerated = find_lung_field(raw_slice, input_kind).aerated
    components, count = ndimage.label(aerated)
    field = np.zeros(components.shape, dtype=np.uint8)
    for index in range(1, count + 1):
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
