"""From raw slices to model inputs and from model outputs back to the slices (NumPy), as `Preprocessing` says.

The same three steps in training, prediction, the ensemble, the exports' parity checks and the
reports, so that a lesion is framed alike everywhere:

1. `slice_regions`: per slice, its lung field and crop square (`tf_resattn.data.roi`), where the
   preprocessing crops or constrains to the lung field;
2. `model_inputs`: scaled, cropped to the square and resized to the model's size;
3. `source_probabilities`: probabilities back at each slice's own size (pasted into the square,
   background outside it, or resized when there is no crop), then, with a lung constraint,
   background outside the lung field grown by its margin; `source_labels` gives their argmax
   without building the frame-sized probabilities (prediction's label maps).
"""

import dataclasses

import numpy as np

from tf_resattn import optional
from tf_resattn.data.preprocessing import resize_image, resize_mask, restore_size
from tf_resattn.data.roi import background, crop, lung_crop, paste, paste_probabilities
from tf_resattn.data.thorax import find_lung_field

cv2 = optional.module("cv2", "io")


@dataclasses.dataclass
class SliceRegion:
    """Where a slice's model input came from.

    Attributes:
        frame_size: (H, W) of the raw slice.
        box: the `CropBox` it was cut to, or None (whole slice).
        field: bool `[H, W]` lung field, or None when the preprocessing uses none.
        status: the lung field's `"found"`, `"one lung"` or `"no lung"`, or None.
        aerated: bool `[H, W]` aerated lung the field was found from (`LungField.aerated`), or None.
    """

    frame_size: tuple
    box: object = None
    field: np.ndarray | None = None
    status: str | None = None
    aerated: np.ndarray | None = None


def slice_regions(raw_slices, preprocessing):
    """One `SliceRegion` per raw slice (`[N, H, W]` or a list of `[H, W]`)."""
    regions = []
    for raw in raw_slices:
        raw = np.asarray(raw, dtype=np.float32)
        if preprocessing.lung_crop is not None:
            box, field = lung_crop(raw, preprocessing.input_kind, preprocessing.lung_crop)
        elif preprocessing.lung_constraint is not None:
            box, field = None, find_lung_field(raw, preprocessing.input_kind)
        else:
            regions.append(SliceRegion(raw.shape[:2]))
            continue
        regions.append(SliceRegion(raw.shape[:2], box, field.mask, field.status, field.aerated))
    return regions


def model_inputs(raw_slices, preprocessing, regions):
    """Raw slices `[N, H, W]` -> float32 `[N, h, w, 1]` in [0, 1]: scaled, cropped to each region's box, resized."""
    return np.stack([preprocessing.apply(raw, region.box) for raw, region in zip(raw_slices, regions)]).astype(
        np.float32
    )


def framed_pairs(raw_images, masks, preprocessing):
    """Training pairs as the model takes them: raw slices and label maps (lists or stacks of `[H_i, W_i]`) ->
    `(images float32 [N, h, w, 1], masks uint8 [N, h, w], regions)`, the masks cut to the same squares and
    resized by nearest neighbour."""
    regions = slice_regions(raw_images, preprocessing)
    images = model_inputs(raw_images, preprocessing, regions)
    framed = [np.asarray(m) if r.box is None else crop(m, r.box, 0) for m, r in zip(masks, regions)]
    return images, np.stack([resize_mask(m, images.shape[1:3]) for m in framed]).astype(np.uint8), regions


def source_probabilities(probabilities, preprocessing, regions):
    """Probabilities `[N, h, w, C]` at the model's size -> `[N, H, W, C]` at the slices' own size.

    Pasted into each region's square (background outside it) or resized when there is none;
    with `preprocessing.lung_constraint`, background outside the grown lung field.
    Slices of different sizes give a list of `[H_i, W_i, C]` instead.
    """
    restored = [
        constrained(put_back(p, region), preprocessing, region).astype(np.float32)
        for p, region in zip(probabilities, regions)
    ]
    return _stacked(restored)


def source_labels(probabilities, preprocessing, regions):
    """Label maps uint8 `[N, H, W]` (a list when sizes differ) of probabilities `[N, h, w, C]` (or a list of
    `[h_i, w_i, C]`) at the model's size: the argmax of `source_probabilities`, computed inside each square only."""
    return _stacked([label_back(p, preprocessing, region) for p, region in zip(probabilities, regions)])


def label_back(probabilities, preprocessing, region):
    """One slice's label map uint8 `[H, W]` from probabilities `[h, w, C]`: resized to its square (or frame) and
    argmax there, 0 outside the square and, under `lung_constraint`, outside the grown lung field."""
    frame = region.frame_size if region.box is None else (region.box.side, region.box.side)
    labels = np.argmax(resize_image(probabilities, frame).reshape(*frame, probabilities.shape[-1]), axis=-1)
    labels = labels.astype(np.uint8)
    if region.box is not None:
        labels = paste(labels, region.box, region.frame_size, 0)
    if preprocessing.lung_constraint is not None:
        labels[~grown_field(region.field, preprocessing.lung_constraint)] = 0
    return labels


def put_back(probabilities, region):
    """One slice's probabilities `[h, w, C]` at the model's size -> `[H, W, C]`: pasted into its square or resized."""
    if region.box is None:
        return restore_size(probabilities[None], region.frame_size)[0]
    return paste_probabilities(probabilities, region.box, region.frame_size, resize_image)


def constrained(probabilities, preprocessing, region):
    """One slice's probabilities `[H, W, C]`, background outside its grown lung field under `lung_constraint`."""
    if preprocessing.lung_constraint is None:
        return probabilities
    return _background_outside(probabilities, grown_field(region.field, preprocessing.lung_constraint))


def grown_field(field, margin):
    """bool `[H, W]`: `field` grown by a disc of `margin` times its longer side (unchanged when empty)."""
    rows, columns = np.nonzero(field)
    if rows.size == 0 or margin <= 0:
        return field
    radius = max(1, int(round(margin * max(np.ptp(rows), np.ptp(columns)))))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(field.astype(np.uint8), disc).astype(bool)


def _stacked(arrays):
    """One array of equally shaped `arrays`, else the list as it is."""
    return np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays


def _background_outside(probabilities, field):
    """Probabilities `[H, W, C]` with every pixel outside `field` (all of them when it is empty) set to background."""
    return np.where(field[..., None], probabilities, background(probabilities.shape[-1], probabilities.dtype))
