"""The paper's offline augmentation (6x), in NumPy/OpenCV, on image and label stacks together.

Apply it after the fold split, to the training slices only: a rotated copy of a test slice in the
training set would inflate every figure.

Fixed-size rule (shared with the online mode in `pipeline.py`): a transform that changes the
size is followed by a centred crop or pad back to the input size (H, W). For a new size n and a
target N along one axis, padding puts `(N - n) // 2` zeros before the content and cropping
drops `(n - N) // 2` rows/columns before the kept window. Padding is 0 for images (air, the
background after scaling) and label 0 for masks. Scaled size: `round(H * factor)`.
"""

import numpy as np

from tf_resattn.data.preprocessing import resize_image, resize_mask
from tf_resattn.io import DataError

OFFLINE_ROTATIONS = (1, 2, 3)
"""Quarter turns (counter-clockwise, as `np.rot90`) of the offline set: 90, 180 and 270 degrees."""
OFFLINE_SCALES = (0.5, 1.5)
"""Zoom factors of the offline set: 0.5 (zoom out, padded) and 1.5 (zoom in, centre crop)."""
PER_EPOCH_MODES = ("online", "upright")
"""The augmentation modes that draw a new transform per slice and epoch, in `tf.data` (`pipeline.py`)."""


def augment_offline(images, masks):
    """The paper's 6x training set: originals, rotations by 90/180/270, scaling by 0.5 and 1.5.

    Args:
        images: float `[N, H, W, C]`.
        masks: integer `[N, H, W]`.

    Returns:
        (images `[6N, H, W, C]`, masks `[6N, H, W]`), same dtypes, in blocks of N:
        originals, rot90, rot180, rot270, scale 0.5, scale 1.5 (copy `j` of slice `i` is at `j * N + i`).

    Example:
        >>> x, y = augment_offline(np.zeros((2, 16, 16, 1), np.float32), np.zeros((2, 16, 16), np.uint8))
        >>> x.shape, y.shape
        ((12, 16, 16, 1), (12, 16, 16))
    """
    check_pairs(images, masks)
    blocks = [(images, masks)]
    blocks += [rotate90(images, masks, k) for k in OFFLINE_ROTATIONS]
    blocks += [scale_fixed_size(images, masks, f) for f in OFFLINE_SCALES]
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def offline_copies(per_slice):
    """A list with one entry per slice, repeated as `augment_offline` orders its copies (copy `j` of slice `i` at `j * N + i`)."""
    return list(per_slice) * (1 + len(OFFLINE_ROTATIONS) + len(OFFLINE_SCALES))


def rotate90(images, masks, quarter_turns):
    """Rotates `[N, H, W, C]` images and `[N, H, W]` masks counter-clockwise by `quarter_turns` * 90 degrees.

    Non-square slices are brought back to (H, W) by the fixed-size rule.
    """
    height, width = images.shape[1:3]
    rotated_images = np.rot90(images, quarter_turns, axes=(1, 2))
    rotated_masks = np.rot90(masks, quarter_turns, axes=(1, 2))
    return crop_or_pad(rotated_images, height, width), crop_or_pad(rotated_masks, height, width)


def scale_fixed_size(images, masks, factor):
    """Zooms `[N, H, W, C]` images and `[N, H, W]` masks by `factor` about the centre, keeping (H, W).

    Images are resized with the preprocessing rule (area when shrinking, bilinear when growing),
    masks by nearest neighbour; then the fixed-size rule crops (factor > 1) or pads (factor < 1).
    """
    if factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor!r}")
    height, width = images.shape[1:3]
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    scaled_images = np.stack([_resize_channels(im, size) for im in images])
    scaled_masks = np.stack([resize_mask(m, size) for m in masks])
    return crop_or_pad(scaled_images, height, width), crop_or_pad(scaled_masks, height, width)


def crop_or_pad(stack, height, width):
    """Centre-crops or zero-pads axes 1 and 2 of `stack` `[N, h, w, ...]` to (height, width)."""
    for axis, target in ((1, height), (2, width)):
        size = stack.shape[axis]
        if size > target:
            start = (size - target) // 2
            stack = np.take(stack, np.arange(start, start + target), axis=axis)
        elif size < target:
            pad = [(0, 0)] * stack.ndim
            pad[axis] = ((target - size) // 2, target - size - (target - size) // 2)
            stack = np.pad(stack, pad)
    return stack


def check_pairs(images, masks):
    """Raises `DataError` unless images are `[N, H, W, C]` and masks `[N, H, W]` with the same N, H, W."""
    if np.ndim(images) != 4 or np.ndim(masks) != 3 or np.shape(images)[:3] != np.shape(masks):
        raise DataError(
            f"images must be [N, H, W, C] and masks [N, H, W] with the same N, H, W; got {np.shape(images)} "
            f"and {np.shape(masks)}"
        )
    if len(images) == 0:
        raise DataError("no slices to augment or batch: the set is empty; check the data path and the fold split")


def _resize_channels(image, size):
    """Resizes one `[h, w, C]` image channel by channel to (H, W) -> `[H, W, C]`."""
    return np.stack([resize_image(image[..., c], size) for c in range(image.shape[-1])], axis=-1)
