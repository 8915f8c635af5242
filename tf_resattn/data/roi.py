"""Region-of-interest normalisation: each slice cropped to a square around its lung field.

A lesion then has about the same size in pixels at training and at inference whatever the
source's field of view: a whole-body frame with the table and the air around it is cropped to
the chest as the tight thorax crops of the training data are. The square is centred on the
lung field's bounding box (`tf_resattn.data.thorax`), its side the box's longer side grown by
`margin` on each side; where it leaves the frame the slice is padded with its lowest value (air).
Probabilities come back at the source size by `paste`: resized to the square, its part inside
the frame put in place, background elsewhere. `crop` and `paste` are exact inverses on label
maps (nearest neighbour), at any size and aspect ratio.

Example:
    >>> labels = np.zeros((60, 90), np.uint8); labels[20:40, 30:50] = 2
    >>> box = CropBox(top=-10, left=15, side=80)
    >>> bool(np.array_equal(paste_labels(crop(labels, box, fill=0), box, labels.shape), labels))
    True
"""

import dataclasses

import numpy as np

from tf_resattn import optional
from tf_resattn.data.thorax import find_lung_field

cv2 = optional.module("cv2", "io")

DEFAULT_MARGIN = 0.05
"""The square's margin on each side, a share of the lung field's longer side."""


@dataclasses.dataclass(frozen=True)
class CropBox:
    """A square in a slice's pixel coordinates; it may reach outside the frame (negative `top`, ...)."""

    top: int
    left: int
    side: int

    def to_list(self):
        return [self.top, self.left, self.side]


def lung_crop(raw_slice, input_kind, margin=DEFAULT_MARGIN):
    """The crop square of one slice and its lung field.

    Args:
        raw_slice: `[H, W]` raw values (HU or 8-bit grey).
        input_kind: `"hu"` or `"uint8"`.
        margin: grown on each side, a share of the field's longer side.

    Returns:
        `(CropBox, LungField)`; an empty field (nothing found) gives the square around the whole frame.
    """
    field = find_lung_field(raw_slice, input_kind)
    rows, columns = np.nonzero(field.mask)
    if rows.size == 0:
        rows, columns = np.array([0, raw_slice.shape[0] - 1]), np.array([0, raw_slice.shape[1] - 1])
    height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
    side = int(round(max(height, width) * (1 + 2 * margin)))
    top = int(round((rows.min() + rows.max() + 1) / 2 - side / 2))
    left = int(round((columns.min() + columns.max() + 1) / 2 - side / 2))
    return CropBox(top, left, side), field


def crop(image, box, fill):
    """`image` `[H, W, ...]` cut to `box`: `[side, side, ...]`, padded with `fill` where the box leaves the frame."""
    image = np.asarray(image)
    out = np.full((box.side, box.side) + image.shape[2:], fill, dtype=image.dtype)
    rows, columns = _overlap(box, image.shape[:2])
    out[rows[0] - box.top : rows[1] - box.top, columns[0] - box.left : columns[1] - box.left] = image[
        rows[0] : rows[1], columns[0] : columns[1]
    ]
    return out


def paste(square, box, frame_size, fill):
    """Inverse of `crop`: `square` `[side, side, ...]` put back into a frame `[H, W, ...]` of `fill` at `box`."""
    square = np.asarray(square)
    out = np.full(tuple(frame_size) + square.shape[2:], fill, dtype=square.dtype)
    rows, columns = _overlap(box, frame_size)
    out[rows[0] : rows[1], columns[0] : columns[1]] = square[
        rows[0] - box.top : rows[1] - box.top, columns[0] - box.left : columns[1] - box.left
    ]
    return out


def paste_labels(square_labels, box, frame_size):
    """Label map `[side, side]` (or at any square size, resized by nearest neighbour) back into `[H, W]`, 0 outside."""
    square_labels = np.asarray(square_labels)
    if square_labels.shape[0] != box.side:
        square_labels = cv2.resize(square_labels, (box.side, box.side), interpolation=cv2.INTER_NEAREST_EXACT)
    return paste(square_labels, box, frame_size, 0)


def paste_probabilities(probabilities, box, frame_size, resize):
    """Probabilities `[h, w, C]` at the model's size back into `[H, W, C]`: resized to the square, background outside.

    Args:
        probabilities: float `[h, w, C]`.
        box: the `CropBox` the input was cut with.
        frame_size: (H, W) of the source slice.
        resize: `resize_image`-like callable `(image [h, w] or [h, w, C], (side, side)) -> [side, side(, C)]`.
    """
    classes = probabilities.shape[-1]
    square = np.asarray(resize(probabilities, (box.side, box.side))).reshape(box.side, box.side, classes)
    return paste(square, box, frame_size, background(classes, square.dtype))


def background(classes, dtype=np.float32):
    """`[C]`: the probabilities of a pixel that is certainly background (one-hot class 0)."""
    return np.eye(classes, dtype=dtype)[0]


def _overlap(box, frame_size):
    """The rows and columns (start, stop) where `box` and a frame of `frame_size` overlap."""
    rows = (max(box.top, 0), min(box.top + box.side, frame_size[0]))
    columns = (max(box.left, 0), min(box.left + box.side, frame_size[1]))
    return rows, columns
