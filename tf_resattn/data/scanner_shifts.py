"""Other scanners' slices made from ours: field of view, display window, CLAHE, JPEG export (NumPy).

Each shift takes an 8-bit grey slice float32 `[H, W]` (0..255) and its label map `[H, W]` and
returns both at the same size; only the field of view moves anatomy, and then image and labels
move together (labels by nearest neighbour, so they stay exact label values). The parameters
are explicit; `random_scanner_view` draws them from a generator, and training shows a slice as another
scanner would make it with `input_view` (drawn on the model's input, the `cpu_v2` preset's way) or
`source_view` (drawn on the stored slice at its own size, then framed as prediction frames it).

- `field_of_view(image, labels, scale, offset)`: the slice shrunk to `scale` of the frame, put
  off-centre by `offset` (fractions of the free space), inside a synthetic body wall (skin and
  muscle, then a fat layer), above a table band, with air around: the whole-body frame of a
  scanner that reconstructs a wider field than the tight thorax crops of the training data.
- `rewindow(image, window)`: the grey levels read as Hounsfield units through `SOURCE_WINDOW` (the
  lung window of the training slices) and shown in `window`: a wide window shows aerated lung
  dark grey and soft tissue light grey.
- `clahe(image, clip_limit, tiles)`: contrast-limited adaptive histogram equalisation (tiles x tiles grid).
- `jpeg_export(image, quality, blur_sigma, noise_sigma, rng)`: blur, noise and JPEG compression.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.data.framing import framed_pairs
from tf_resattn.data.preprocessing import Preprocessing, resize_mask
from tf_resattn.data.roi import crop
from tf_resattn.data.roi import lung_crop as lung_crop_box
from tf_resattn.data.thorax import find_lung_field

cv2 = optional.module("cv2", "io")

SOURCE_WINDOW = (-1380.0, 159.0)
"""The HU window (low, high) that 8-bit lung-window slices are read in (medseg100's, `display_window`)."""


def field_of_view(image, labels, scale, offset=(0.0, 0.0)):
    """The slice shrunk to `scale` (0 < scale <= 1) into a frame of its own size with a body wall, a table and air.

    Args:
        image: float32 `[H, W]`, 8-bit grey levels.
        labels: integer `[H, W]`.
        scale: the shrunk slice's side as a share of the frame's.
        offset: (rows, columns) in [-1, 1]: where the shrunk slice sits in the free space (0 = centre).

    Returns:
        `(image, labels)`, `[H, W]` each; labels are background outside the shrunk slice.
    """
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    body = find_lung_field(image, "uint8").body.astype(np.uint8)
    shrunk = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    shrunk_body = cv2.resize(body, small, interpolation=cv2.INTER_NEAREST_EXACT)
    shrunk_labels = cv2.resize(np.asarray(labels).astype(np.uint8), small, interpolation=cv2.INTER_NEAREST_EXACT)
    top = int(round((height - small[1]) * (0.5 + 0.5 * offset[0])))
    left = int(round((width - small[0]) * (0.5 + 0.5 * offset[1])))

    air, tissue = _air_and_tissue(image)
    fat = air + 0.88 * (tissue - air)
    placed_body = np.zeros((height, width), np.uint8)
    placed_body[top : top + small[1], left : left + small[0]] = shrunk_body
    side = min(height, width)
    fat_layer = cv2.dilate(placed_body, _disc(max(1, round(0.03 * side))))
    skin = cv2.dilate(fat_layer, _disc(max(1, round(0.012 * side))))

    out = np.full((height, width), air, np.float32)
    outline = np.flatnonzero(skin.any(axis=1))
    table_top = min(height - 2, (outline[-1] if outline.size else height // 2) + max(2, round(0.03 * side)))
    out[table_top : table_top + max(2, round(0.025 * side))] = tissue
    out[min(height - 1, table_top + round(0.06 * side)) : min(height, table_top + round(0.07 * side))] = tissue
    out[skin > 0] = tissue
    out[fat_layer > 0] = fat
    region = out[top : top + small[1], left : left + small[0]]
    inside = shrunk_body > 0
    region[inside] = shrunk[inside]
    out_labels = np.zeros((height, width), np.uint8)
    out_labels[top : top + small[1], left : left + small[0]] = np.where(inside, shrunk_labels, 0)
    return out, out_labels.astype(np.asarray(labels).dtype)


def rewindow(image, window, source_window=SOURCE_WINDOW):
    """8-bit grey read as HU through `source_window`, shown again in `window` (low, high HU); float32 0..255."""
    low, high = source_window
    hounsfield = low + np.asarray(image, dtype=np.float32) / 255.0 * (high - low)
    return np.clip((hounsfield - window[0]) / (window[1] - window[0]) * 255.0, 0.0, 255.0).astype(np.float32)


def clahe(image, clip_limit=2.0, tiles=8):
    """Contrast-limited adaptive histogram equalisation of an 8-bit grey slice on a `tiles` x `tiles` grid; float32 0..255."""
    grey = np.clip(np.round(image), 0, 255).astype(np.uint8)
    grid = (int(tiles), int(tiles))
    return cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=grid).apply(grey).astype(np.float32)


def jpeg_export(image, quality, blur_sigma, noise_sigma, rng):
    """Gaussian blur (`blur_sigma` pixels), Gaussian noise (`noise_sigma` grey levels from `rng`), then JPEG at `quality`."""
    image = np.asarray(image, dtype=np.float32)
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), float(blur_sigma))
    image = image + rng.normal(0.0, noise_sigma, image.shape).astype(np.float32)
    grey = np.clip(np.round(image), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)


CLAHE_RANGES = {
    "narrow": ((1.0, 3.5), (8,)),
    "wide": ((1.0, 6.0), (4, 6, 12, 16)),
}
"""Training's CLAHE draws by name (`scanner_clahe`): (clip-limit range, tile grids). Both stay apart from the
test's CLAHE (clip 4 on 8 x 8 tiles): "narrow" below its clip, "wide" never on its grid."""

TRAINING_RANGES = {
    "field_of_view": (0.5, (0.6, 0.95)),
    "window": (0.5, ((-1700.0, -1200.0), (300.0, 1100.0))),
    "clahe": (0.6, CLAHE_RANGES),
    "jpeg": (0.4, ((40, 95), (0.0, 1.2), (0.0, 6.0))),
}
"""Training draws: shift -> (probability, parameter ranges); wider than, and apart from, the test settings."""


def random_scanner_view(image, labels, rng, clahe_range="narrow"):
    """One random other-scanner view of a slice for training: each shift with its `TRAINING_RANGES` probability.

    Args:
        image: float32 `[H, W]` 8-bit grey.
        labels: integer `[H, W]`.
        rng: `numpy.random.Generator` (training's own, never the test shifts' seeds).
        clahe_range: the name of the CLAHE draws in `CLAHE_RANGES`.

    Returns:
        `(image, labels)`.
    """
    probability, (low, high) = TRAINING_RANGES["field_of_view"]
    if rng.uniform() < probability:
        image, labels = field_of_view(image, labels, rng.uniform(low, high), tuple(rng.uniform(-1, 1, 2)))
    probability, (lows, highs) = TRAINING_RANGES["window"]
    if rng.uniform() < probability:
        image = rewindow(image, (rng.uniform(*lows), rng.uniform(*highs)))
    probability, ranges = TRAINING_RANGES["clahe"]
    if rng.uniform() < probability:
        (low, high), grids = ranges[clahe_range]
        clip = rng.uniform(low, high)
        # A single grid is not drawn: the narrow views take the generator's draws they always took.
        image = clahe(image, clip, grids[0] if len(grids) == 1 else rng.choice(grids))
    probability, (quality, blur, noise) = TRAINING_RANGES["jpeg"]
    if rng.uniform() < probability:
        image = jpeg_export(image, rng.integers(*quality), rng.uniform(*blur), rng.uniform(*noise), rng)
    return image, labels


def input_view(image, labels, seed, lung_crop, clahe_range="narrow"):
    """A model input shown as another scanner would make it (`random_scanner_view`), drawn at the model's input size.

    Args:
        image: float32 `[h, w, 1]` in [0, 1], a slice as the model takes it.
        labels: integer `[h, w]`.
        seed: int64 `[2]`, the slice's seed for this epoch.
        lung_crop: the preprocessing's lung-crop margin, or None: after a field-of-view shift the
            slice is cropped to its lung field again, as prediction would crop it.
        clahe_range: the name of the CLAHE draws in `CLAHE_RANGES`.

    Returns:
        `(image float32 [h, w, 1], labels uint8 [h, w])`.
    """
    rng = _slice_generator(seed)
    size = image.shape[:2]
    grey, labels = random_scanner_view(
        np.asarray(image, np.float32)[..., 0] * 255.0, np.asarray(labels, np.uint8), rng, clahe_range
    )
    if lung_crop is not None:
        box, _ = lung_crop_box(grey, "uint8", lung_crop)
        grey = cv2.resize(crop(grey, box, float(grey.min())), size[::-1], interpolation=cv2.INTER_AREA)
        labels = resize_mask(crop(labels, box, 0), size)
    return (np.clip(grey, 0.0, 255.0) / 255.0)[..., None].astype(np.float32), labels.astype(np.uint8)


def source_view(grey, labels, image_size, lung_crop, seed, clahe_range="narrow"):
    """A training slice shown as another scanner would make it, drawn at the slice's own size, framed as prediction frames it.

    The shifts act on the stored slice (a CLAHE tile, a JPEG block and a shrunk field of view have
    the sizes a scanner gives them), then the view is cut to its own lung field and resized to the
    model's size exactly as `predict` treats an 8-bit slice (`tf_resattn.data.framing.framed_pairs`).

    Args:
        grey: `[H, W]` 8-bit grey levels of the stored slice (`SliceSet.source_grey`).
        labels: integer `[H, W]`, its label map.
        image_size: (h, w), the model's input size.
        lung_crop: the lung-crop margin of the model's preprocessing, or None (the whole view resized).
        seed: int64 `[2]`, the slice's seed for this epoch (training's own, never the test shifts' seeds).
        clahe_range: the name of the CLAHE draws in `CLAHE_RANGES`.

    Returns:
        `(image float32 [h, w, 1] in [0, 1], labels uint8 [h, w])`.
    """
    rng = _slice_generator(seed)
    view, view_labels = random_scanner_view(
        np.asarray(grey, np.float32), np.asarray(labels, np.uint8), rng, clahe_range
    )
    framing = Preprocessing("uint8", image_size=tuple(int(v) for v in image_size), lung_crop=lung_crop)
    images, masks, _ = framed_pairs([view], [view_labels], framing)
    return images[0], masks[0]


def _slice_generator(seed):
    """The NumPy generator of a slice's int64 `[2]` tf.data seed (each word taken as 32 bits)."""
    return np.random.default_rng([int(v) & 0xFFFFFFFF for v in np.ravel(seed)])


def _air_and_tissue(image):
    """The slice's air grey level (2nd percentile) and soft-tissue level (median above Otsu's threshold)."""
    grey = np.clip(np.round(image), 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(grey.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = image[image > threshold]
    return float(np.percentile(image, 2)), float(np.median(bright)) if bright.size else 255.0


def _disc(radius):
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
