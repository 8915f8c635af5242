"""A seeded generator of synthetic axial chest CT slices with the four MedSeg labels.

Each slice is drawn in Hounsfield units on a normalised grid (rows from anterior, -1, to
posterior, +1; columns from the patient's right, -1, to left, +1), so that shapes do not depend
on the image size:

- air outside the body (-1000 HU); a body ellipse with a fat rim (about -100 HU) around soft
  tissue (about 40 HU) and a vertebra (bone, about 600 HU) at the back;
- two lungs (about -850 HU, a little denser towards the back), irregular ellipses;
- vessels: small bright blobs and short branches (about 40 HU) inside the lungs;
- label 1, ground-glass opacity: 0-3 hazy irregular patches (-650 to -400 HU) inside a lung;
- label 2, consolidation: 0-2 smaller dense patches (-80 to 40 HU), often within a ground-glass patch;
- label 3, pleural effusion: a fluid crescent (0 to 20 HU) at the back of one or both lungs;
- a slight blur and Gaussian noise (about 20 HU).

Sizes, positions, counts and values vary per slice, and some slices lack some classes; about a
third of the slices have an effusion, so all four classes appear in any set of a dozen slices or
more. Slice `i` of seed `s` depends only on `(s, i)`: the same seed gives the same slices, and a
larger `n` only adds slices. `synthetic_slices` windows the HU like real CT (lung window) and
returns a `SliceSet`; `synthetic_hu_slices` returns the raw HU for tests of HU handling.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.data.preprocessing import LUNG_WINDOW, Preprocessing, normalize_image_size
from tf_resattn.data.slices import SliceSet

cv2 = optional.module("cv2", "io")

FIELD_OF_VIEW_MM = 350.0
"""Width and height of the synthetic field of view; pixel spacing is this over the image size."""

AIR_HU, FAT_HU, SOFT_TISSUE_HU, BONE_HU, LUNG_HU, VESSEL_HU = -1000.0, -100.0, 40.0, 600.0, -850.0, 40.0
GROUND_GLASS, CONSOLIDATION, EFFUSION = 1, 2, 3


def synthetic_hu_slices(n=40, image_size=128, seed=0):
    """Draws `n` synthetic chest slices in Hounsfield units with their labels.

    Args:
        n: number of slices.
        image_size: int or (h, w).
        seed: slices depend only on (seed, slice index).

    Returns:
        (hu float32 `[n, h, w]`, masks uint8 `[n, h, w]` with labels 0..3).

    Example:
        >>> hu, masks = synthetic_hu_slices(4, 64, seed=1)
        >>> hu.shape, hu.dtype.name, bool(hu.min() < -900), int(masks.max()) <= 3
        ((4, 64, 64), 'float32', True, True)
    """
    h, w = normalize_image_size(image_size)
    yy, xx = np.meshgrid((np.arange(h) + 0.5) / h * 2 - 1, (np.arange(w) + 0.5) / w * 2 - 1, indexing="ij")
    slices = [_draw_slice(np.random.default_rng([seed, i]), yy, xx) for i in range(n)]
    hu = np.stack([s[0] for s in slices]).astype(np.float32) if n else np.zeros((0, h, w), np.float32)
    masks = np.stack([s[1] for s in slices]).astype(np.uint8) if n else np.zeros((0, h, w), np.uint8)
    return hu, masks


def synthetic_slices(n=40, image_size=128, seed=0, hu_window=LUNG_WINDOW):
    """The embedded default data set: `synthetic_hu_slices` windowed to [0, 1] like real CT.

    Args:
        n: number of slices.
        image_size: int or (h, w).
        seed: slices depend only on (seed, slice index).
        hu_window: (low, high) HU mapped to 0 and 1.

    Returns:
        `SliceSet` with the preprocessing `Preprocessing("hu", hu_window, image_size)`, names
        `synthetic_0000`, ..., no groups, and the spacing of a 350 mm field of view.

    Example:
        >>> s = synthetic_slices(n=8, image_size=64)
        >>> s.images.shape, s.images.dtype.name, bool(s.masks.max() <= 3)
        ((8, 64, 64, 1), 'float32', True)
    """
    size = normalize_image_size(image_size)
    hu, masks = synthetic_hu_slices(n, size, seed)
    prep = Preprocessing("hu", hu_window, size)
    spacing = np.tile([[FIELD_OF_VIEW_MM / size[0], FIELD_OF_VIEW_MM / size[1]]], (n, 1))
    return SliceSet(
        images=prep.scale(hu)[..., None],
        masks=masks,
        names=[f"synthetic_{i:04d}" for i in range(n)],
        groups=None,
        spacing_mm=spacing,
        preprocessing=prep,
        source=f"synthetic(n={n}, image_size={size[0]}x{size[1]}, seed={seed})",
    )


def _draw_slice(rng, yy, xx):
    """One slice: returns (hu [h, w] float64, labels [h, w] uint8)."""
    h, w = yy.shape
    hu = np.full((h, w), AIR_HU)
    labels = np.zeros((h, w), np.uint8)
    texture = _smooth_noise(rng, h, w)

    body_cy, body_cx = rng.normal(0.05, 0.02), rng.normal(0.0, 0.02)
    body_ry, body_rx = rng.uniform(0.62, 0.75), rng.uniform(0.82, 0.93)
    rim = rng.uniform(0.04, 0.08)
    body = _blob(rng, yy, xx, body_cy, body_cx, body_ry, body_rx, wobble=0.01)
    inner = _blob(rng, yy, xx, body_cy, body_cx, body_ry - rim, body_rx - rim, wobble=0.01)
    hu[body] = FAT_HU + 10 * texture[body]
    hu[inner] = SOFT_TISSUE_HU + 10 * texture[inner]
    vertebra = _blob(rng, yy, xx, body_cy + body_ry - rim - 0.14, body_cx, 0.09, 0.08, wobble=0.02)
    hu[vertebra] = BONE_HU

    lungs = []
    for side in (-1, 1):
        cy, cx = rng.uniform(-0.05, 0.06), side * rng.uniform(0.36, 0.44)
        ry, rx = rng.uniform(0.40, 0.50), rng.uniform(0.22, 0.30)
        lung = _blob(rng, yy, xx, cy, cx, ry, rx, angle=side * rng.uniform(0.0, 0.25), wobble=0.05) & inner & ~vertebra
        hu[lung] = LUNG_HU + rng.normal(0, 20) + 60 * np.clip((yy[lung] - cy) / ry, 0, 1) + 15 * texture[lung]
        lungs.append((lung, cy, cx, ry, rx))
    lung_any = lungs[0][0] | lungs[1][0]
    lung_pixels = np.nonzero(lung_any)

    ground_glass = np.zeros((h, w), bool)
    for _ in range(rng.choice(4, p=[0.2, 0.35, 0.3, 0.15])):
        cy, cx = _random_point(rng, yy, xx, lung_pixels)
        patch = _blob(rng, yy, xx, cy, cx, rng.uniform(0.12, 0.26), rng.uniform(0.1, 0.2), rng.uniform(0, np.pi), 0.2)
        patch &= lung_any
        hu[patch] = rng.uniform(-650, -420) + 40 * texture[patch]
        ground_glass |= patch
    labels[ground_glass] = GROUND_GLASS

    _draw_vessels(rng, hu, yy, xx, lung_any)

    ground_glass_pixels = np.nonzero(ground_glass)
    for _ in range(rng.choice(3, p=[0.4, 0.4, 0.2])):
        inside_ggo = ground_glass_pixels[0].size > 0 and rng.random() < 0.5
        cy, cx = _random_point(rng, yy, xx, ground_glass_pixels if inside_ggo else lung_pixels)
        patch = _blob(rng, yy, xx, cy, cx, rng.uniform(0.06, 0.15), rng.uniform(0.05, 0.12), rng.uniform(0, np.pi), 0.25)
        patch &= lung_any
        hu[patch] = rng.uniform(-80, 40) + 15 * texture[patch]
        labels[patch] = CONSOLIDATION

    if rng.random() < 0.35:
        for side in ((0,), (1,), (0, 1))[rng.integers(3)]:
            lung, cy, cx, ry, rx = lungs[side]
            crescent = lung & _blob(rng, yy, xx, cy + ry, cx, ry * rng.uniform(0.25, 0.5), rx * rng.uniform(0.9, 1.2), wobble=0.03)
            hu[crescent] = rng.uniform(0, 20) + 5 * texture[crescent]
            labels[crescent] = EFFUSION

    hu = cv2.GaussianBlur(hu, (0, 0), 0.6) + rng.normal(0, 20, size=(h, w))
    return hu, labels


def _blob(rng, yy, xx, cy, cx, ry, rx, angle=0.0, wobble=0.0):
    """Boolean mask of an ellipse (centre, radii in grid units, rotation) with a randomly wavy edge."""
    harmonics = [(k, wobble * rng.uniform(0.3, 1.0) / (k - 1), rng.uniform(0, 2 * np.pi)) for k in range(2, 6)]
    window = _window(yy, xx, cy, cx, max(ry, rx) * (1 + 2.5 * wobble))
    dy, dx = yy[window] - cy, xx[window] - cx
    u = ((dx * np.cos(angle) + dy * np.sin(angle)) / rx).astype(np.float32)
    v = ((-dx * np.sin(angle) + dy * np.cos(angle)) / ry).astype(np.float32)
    radius2 = u * u + v * v
    direction = (u + 1j * v) / np.sqrt(np.maximum(radius2, 1e-12))  # exp(i theta), theta the polar angle
    edge = np.ones_like(u)
    power = direction
    for k, amplitude, phase in harmonics:  # edge += amplitude * cos(k theta + phase)
        power = power * direction
        edge += amplitude * (power * np.exp(1j * phase)).real
    mask = np.zeros(yy.shape, bool)
    mask[window] = radius2 <= edge * edge
    return mask


def _window(yy, xx, cy, cx, radius):
    """(row slice, col slice) of the pixels within `radius` (grid units) of (cy, cx) along each axis."""
    h, w = yy.shape
    rows = slice(max(0, int((cy - radius + 1) / 2 * h)), max(0, int(np.ceil((cy + radius + 1) / 2 * h)) + 1))
    cols = slice(max(0, int((cx - radius + 1) / 2 * w)), max(0, int(np.ceil((cx + radius + 1) / 2 * w)) + 1))
    return rows, cols


def _draw_vessels(rng, hu, yy, xx, lung):
    """Adds bright round vessels and short branches (about 40 HU) inside the lung mask, in place."""
    h, w = hu.shape
    pixel = 2.0 / max(h, w)
    strength = np.zeros_like(hu)
    lung_pixels = np.nonzero(lung)
    for _ in range(rng.integers(20, 45)):
        cy, cx = _random_point(rng, yy, xx, lung_pixels)
        sigma = max(rng.uniform(0.006, 0.016), pixel)
        direction, length = rng.uniform(0, np.pi), rng.uniform(0.04, 0.12) if rng.random() < 0.3 else 0.0
        window = _window(yy, xx, cy, cx, length / 2 + 4 * sigma)
        dy, dx = yy[window] - cy, xx[window] - cx
        along = dy * np.sin(direction) + dx * np.cos(direction)
        across = -dy * np.cos(direction) + dx * np.sin(direction)
        dist2 = across**2 + np.clip(np.abs(along) - length / 2, 0, None) ** 2
        strength[window] = np.maximum(strength[window], np.exp(-dist2 / (2 * sigma**2)))
    hu[lung] += (VESSEL_HU - hu[lung]) * strength[lung]


def _random_point(rng, yy, xx, pixels):
    """A random (row, col) grid position among `pixels` (`np.nonzero` of a region), or the centre if none."""
    rows, cols = pixels
    if rows.size == 0:
        return 0.0, 0.0
    k = rng.integers(rows.size)
    return yy[rows[k], cols[k]], xx[rows[k], cols[k]]


def _smooth_noise(rng, h, w):
    """Smooth random texture in about [-1, 1], `[h, w]`."""
    coarse = rng.normal(0, 0.5, size=(8, 8))
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
