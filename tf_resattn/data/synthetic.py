"""A seeded generator of synthetic axial chest CT slices with the four MedSeg labels.

Each slice is drawn in Hounsfield units on a normalised grid (rows from anterior, -1, to
posterior, +1, so that the bottom of the image is dependent for a supine patient; columns from
the patient's right, -1, to left, +1), so that shapes do not depend on the image size. Two
versions share the chest:

- air outside the body (-1000 HU); a body ellipse with a fat rim (about -100 HU) around soft
  tissue and a vertebra (bone, about 600 HU) at the back;
- two lungs (about -850 HU, a little denser towards the back), irregular ellipses;
- vessels: small bright blobs and short branches (about 40 HU) inside the aerated lung;
- a slight blur and Gaussian noise.

Version 2, what `synthetic_slices` gives (the training set of the `demo` preset), draws each lesion
with the look and in the place it has in real CT:

- the chest: soft tissue of about 50 HU, a fat line (about -100 HU) along the lateral and
  posterior pleura, 3-5 ribs per side just outside it, few visible vessels in the outer
  centimetre of the lung, noise of about 12 HU;
- label 1, ground-glass opacity: 0-4 patchy clusters of hazy density (-650 to -350 HU, soft
  edges), mostly subpleural, with the vessels visible through them;
- label 2, consolidation: 0-3 dense patches (-100 to 30 HU) at the periphery of the lung, mostly
  posterior (dependent); half of them hold air bronchograms (thin lines of air);
- label 3, pleural effusion, in about three quarters of the slices: a dependent crescent of fluid
  (0 to 20 HU) between the posterior chest wall's fat line and the lung of one or both sides; it
  is thickest at the back and tapers up the sides, and the lung sits on it.

Version 1, the first generator, places 0-3 ground-glass patches (-650 to -420 HU) and 0-2
consolidations (-80 to 40 HU) anywhere in the lung, and a fluid crescent (0 to 20 HU) at the back
of about a third of the slices, in soft tissue of about 40 HU with noise of about 20 HU. Small
models learn little beyond its ground glass in minutes. It stays unchanged because the released
model's sample inputs (`tf_resattn.inference.release.release_samples`) are its slices, and
`synthetic_hu_slices` defaults to it for that reason.

Sizes, positions, counts and values vary per slice, and some slices lack some classes; all four
classes appear in any set of a dozen slices or more. Slice `i` of seed `s` depends only on
`(s, i)` and the version: the same seed gives the same slices, and a larger `n` only adds slices.
`synthetic_slices` windows the HU like real CT (lung window) and returns a `SliceSet`;
`synthetic_hu_slices` returns the raw HU for tests of HU handling.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.data.preprocessing import LUNG_WINDOW, Preprocessing, normalize_image_size
from tf_resattn.data.slices import SliceSet

cv2 = optional.module("cv2", "io")

FIELD_OF_VIEW_MM = 350.0
"""Width and height of the synthetic field of view; pixel spacing is this over the image size."""

AIR_HU, FAT_HU, SOFT_TISSUE_HU, BONE_HU, LUNG_HU, VESSEL_HU = -1000.0, -100.0, 40.0, 600.0, -850.0, 40.0
MUSCLE_HU = 50.0
"""The soft tissue of version 2: chest wall muscle and mediastinum, a little denser than pleural fluid."""
GROUND_GLASS, CONSOLIDATION, EFFUSION = 1, 2, 3
VERSIONS = (1, 2)
"""Generator versions: 1, the first (the release samples); 2, lesions as in real CT (the training set)."""


def synthetic_hu_slices(n=40, image_size=128, seed=0, version=1):
    """Draws `n` synthetic chest slices in Hounsfield units with their labels.

    Args:
        n: number of slices.
        image_size: int or (h, w).
        seed: slices depend only on (seed, slice index, version).
        version: 1 (default: the first generator, whose slices are the release samples) or 2
            (lesions drawn and placed as in real CT, as `synthetic_slices` gives).

    Returns:
        (hu float32 `[n, h, w]`, masks uint8 `[n, h, w]` with labels 0..3).

    Raises:
        ValueError: `version` is not one of `VERSIONS`.

    Example:
        >>> hu, masks = synthetic_hu_slices(4, 64, seed=1, version=2)
        >>> hu.shape, hu.dtype.name, bool(hu.min() < -900), int(masks.max()) <= 3
        ((4, 64, 64), 'float32', True, True)
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(map(str, VERSIONS))}, got {version!r}")
    draw = _draw_slice_v1 if version == 1 else _draw_slice_v2
    h, w = normalize_image_size(image_size)
    yy, xx = np.meshgrid((np.arange(h) + 0.5) / h * 2 - 1, (np.arange(w) + 0.5) / w * 2 - 1, indexing="ij")
    slices = [draw(np.random.default_rng([seed, i]), yy, xx) for i in range(n)]
    hu = np.stack([s[0] for s in slices]).astype(np.float32) if n else np.zeros((0, h, w), np.float32)
    masks = np.stack([s[1] for s in slices]).astype(np.uint8) if n else np.zeros((0, h, w), np.uint8)
    return hu, masks


def synthetic_slices(n=40, image_size=128, seed=0, hu_window=LUNG_WINDOW, version=2):
    """The embedded default data set: `synthetic_hu_slices` windowed to [0, 1] like real CT.

    Args:
        n: number of slices.
        image_size: int or (h, w).
        seed: slices depend only on (seed, slice index, version).
        hu_window: (low, high) HU mapped to 0 and 1.
        version: 2 (default: lesions as in real CT) or 1 (the first generator).

    Returns:
        `SliceSet` with the preprocessing `Preprocessing("hu", hu_window, image_size)`, names
        `synthetic_0000`, ..., no groups, and the spacing of a 350 mm field of view.

    Example:
        >>> s = synthetic_slices(n=8, image_size=64)
        >>> s.images.shape, s.images.dtype.name, bool(s.masks.max() <= 3)
        ((8, 64, 64, 1), 'float32', True)
    """
    size = normalize_image_size(image_size)
    hu, masks = synthetic_hu_slices(n, size, seed, version)
    prep = Preprocessing("hu", hu_window, size)
    spacing = np.tile([[FIELD_OF_VIEW_MM / size[0], FIELD_OF_VIEW_MM / size[1]]], (n, 1))
    return SliceSet(
        images=prep.scale(hu)[..., None],
        masks=masks,
        names=[f"synthetic_{i:04d}" for i in range(n)],
        groups=None,
        spacing_mm=spacing,
        preprocessing=prep,
        source=f"synthetic(n={n}, image_size={size[0]}x{size[1]}, seed={seed}, version={version})",
    )


def _draw_chest(rng, yy, xx, texture, soft_tissue_hu=SOFT_TISSUE_HU):
    """Body (a fat rim around soft tissue of `soft_tissue_hu`), vertebra and two lungs, in HU.

    Returns:
        (hu `[h, w]` float64, the soft tissue inside the body but the vertebra `[h, w]` bool,
        the lungs as [(mask `[h, w]` bool, cy, cx, ry, rx, angle)] from the patient's right).
    """
    h, w = yy.shape
    hu = np.full((h, w), AIR_HU)
    body_cy, body_cx = rng.normal(0.05, 0.02), rng.normal(0.0, 0.02)
    body_ry, body_rx = rng.uniform(0.62, 0.75), rng.uniform(0.82, 0.93)
    rim = rng.uniform(0.04, 0.08)
    body = _blob(rng, yy, xx, body_cy, body_cx, body_ry, body_rx, wobble=0.01)
    inner = _blob(rng, yy, xx, body_cy, body_cx, body_ry - rim, body_rx - rim, wobble=0.01)
    hu[body] = FAT_HU + 10 * texture[body]
    hu[inner] = soft_tissue_hu + 10 * texture[inner]
    vertebra = _blob(rng, yy, xx, body_cy + body_ry - rim - 0.14, body_cx, 0.09, 0.08, wobble=0.02)
    hu[vertebra] = BONE_HU

    lungs = []
    for side in (-1, 1):
        cy, cx = rng.uniform(-0.05, 0.06), side * rng.uniform(0.36, 0.44)
        ry, rx = rng.uniform(0.40, 0.50), rng.uniform(0.22, 0.30)
        angle = side * rng.uniform(0.0, 0.25)
        lung = _blob(rng, yy, xx, cy, cx, ry, rx, angle=angle, wobble=0.05) & inner & ~vertebra
        hu[lung] = LUNG_HU + rng.normal(0, 20) + 60 * np.clip((yy[lung] - cy) / ry, 0, 1) + 15 * texture[lung]
        lungs.append((lung, cy, cx, ry, rx, angle))
    return hu, inner & ~vertebra, lungs


def _draw_slice_v1(rng, yy, xx):
    """One slice of version 1: returns (hu [h, w] float64, labels [h, w] uint8)."""
    h, w = yy.shape
    labels = np.zeros((h, w), np.uint8)
    texture = _smooth_noise(rng, h, w)
    hu, _, lungs = _draw_chest(rng, yy, xx, texture)
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
        patch = _blob(
            rng, yy, xx, cy, cx, rng.uniform(0.06, 0.15), rng.uniform(0.05, 0.12), rng.uniform(0, np.pi), 0.25
        )
        patch &= lung_any
        hu[patch] = rng.uniform(-80, 40) + 15 * texture[patch]
        labels[patch] = CONSOLIDATION

    if rng.random() < 0.35:
        for side in ((0,), (1,), (0, 1))[rng.integers(3)]:
            lung, cy, cx, ry, rx, _ = lungs[side]
            crescent = lung & _blob(
                rng, yy, xx, cy + ry, cx, ry * rng.uniform(0.25, 0.5), rx * rng.uniform(0.9, 1.2), wobble=0.03
            )
            hu[crescent] = rng.uniform(0, 20) + 5 * texture[crescent]
            labels[crescent] = EFFUSION

    hu = cv2.GaussianBlur(hu, (0, 0), 0.6) + rng.normal(0, 20, size=(h, w))
    return hu, labels


def _draw_slice_v2(rng, yy, xx):
    """One slice of version 2: returns (hu [h, w] float64, labels [h, w] uint8)."""
    h, w = yy.shape
    pixel = 2.0 / max(h, w)
    texture = _smooth_noise(rng, h, w)
    hu, soft_tissue, lungs = _draw_chest(rng, yy, xx, texture, MUSCLE_HU)
    _draw_chest_wall(rng, hu, yy, xx, soft_tissue, lungs, texture, pixel)
    effusion = _effusion(rng, yy, lungs, pixel)
    aerated = (lungs[0][0] | lungs[1][0]) & ~effusion
    depth = cv2.distanceTransform(aerated.astype(np.uint8), cv2.DIST_L2, 3) * pixel  # to the pleura, grid units
    near_pleura = aerated & (depth < 0.12)  # the outer 2 cm

    ground_glass = _ground_glass(rng, hu, yy, xx, aerated, near_pleura, texture, pixel)
    _draw_vessels(rng, hu, yy, xx, aerated, centres=depth > 0.06)  # none centred in the outer centimetre
    consolidation = _consolidation(rng, hu, yy, xx, aerated, near_pleura, texture, pixel)
    hu[effusion] = rng.uniform(0, 20) + 4 * texture[effusion]

    labels = np.zeros((h, w), np.uint8)
    labels[ground_glass] = GROUND_GLASS
    labels[consolidation] = CONSOLIDATION
    labels[effusion] = EFFUSION
    hu = cv2.GaussianBlur(hu, (0, 0), 0.6) + rng.normal(0, 12, size=(h, w))
    return hu, labels


def _draw_chest_wall(rng, hu, yy, xx, soft_tissue, lungs, texture, pixel):
    """Adds, in place, a fat line (about -100 HU) along the lungs' lateral and posterior pleura, and ribs outside it."""
    cavity = lungs[0][0] | lungs[1][0]
    ring = cv2.dilate(cavity.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & soft_tissue & ~cavity
    for side, (_, cy, cx, ry, rx, _) in zip((-1, 1), lungs):
        costal = ring & ((side * (xx - cx) > 0) | (yy > cy))
        hu[costal] = FAT_HU + 10 * texture[costal]
        for theta in np.sort(rng.uniform(-0.3, 1.7, size=rng.integers(3, 6))):  # 0: lateral, pi / 2: posterior
            gap = rng.uniform(0.04, 0.06)
            radius = max(rng.uniform(0.025, 0.04), pixel)
            rib_cy, rib_cx = cy + (ry + gap) * np.sin(theta), cx + side * (rx + gap) * np.cos(theta)
            rib = _blob(rng, yy, xx, rib_cy, rib_cx, radius, radius)
            rib &= soft_tissue & ~cavity
            hu[rib] = rng.uniform(300, 700)


def _effusion(rng, yy, lungs, pixel):
    """Pleural effusion `[h, w]` bool: in about three quarters of the slices, a dependent crescent in one or both lungs.

    The fluid fills the lowest part of the pleural space: each pixel of the lung's posterior half that
    has the lung's edge within a vertical `thickness` (0.1-0.25 grid units) below it, so that the crescent
    follows the chest wall, thickest at the back and tapering up the sides.
    """
    effusion = np.zeros(yy.shape, bool)
    if rng.random() >= 0.75:
        return effusion
    for side in ((0,), (1,), (0, 1))[rng.integers(3)]:
        lung, cy, _, _, _, _ = lungs[side]
        thickness = max(1, int(round(rng.uniform(0.1, 0.25) / pixel)))
        below = np.zeros_like(lung)
        below[:-thickness] = lung[thickness:]
        effusion |= lung & ~below & (yy > cy)
    return effusion


def _ground_glass(rng, hu, yy, xx, aerated, near_pleura, texture, pixel):
    """Draws 0-4 hazy ground-glass clusters into `hu` (in place), mostly subpleural; returns their mask `[h, w]` bool.

    Each cluster is 1-3 overlapping blobs whose density fades out over a soft edge; the label is where
    the density is at least half of the cluster's.
    """
    ground_glass = np.zeros(yy.shape, bool)
    for _ in range(rng.choice(5, p=[0.05, 0.15, 0.3, 0.3, 0.2])):
        cy, cx = _random_point(rng, yy, xx, np.nonzero(near_pleura if rng.random() < 0.75 else aerated))
        cluster = np.zeros(yy.shape, bool)
        for _ in range(rng.integers(1, 4)):
            dy, dx = rng.normal(0, 0.06, size=2)
            cluster |= _blob(
                rng,
                yy,
                xx,
                cy + dy,
                cx + dx,
                rng.uniform(0.08, 0.2),
                rng.uniform(0.07, 0.16),
                rng.uniform(0, np.pi),
                0.2,
            )
        haze = cv2.GaussianBlur((cluster & aerated).astype(np.float64), (0, 0), max(0.02 / pixel, 0.5)) * aerated
        level = rng.uniform(-650, -350) + 40 * texture
        hu += (level - hu) * haze
        ground_glass |= haze >= 0.5
    return ground_glass


def _consolidation(rng, hu, yy, xx, aerated, near_pleura, texture, pixel):
    """Draws 0-3 dense consolidations into `hu` (in place), peripheral, mostly posterior; returns `[h, w]` bool.

    Half of them hold air bronchograms: 1-3 thin lines of air (about -850 HU).
    """
    consolidation = np.zeros(yy.shape, bool)
    dependent = near_pleura * np.exp(4.0 * yy)  # the back of the lung weighs about 40 times its front
    for _ in range(rng.choice(4, p=[0.15, 0.35, 0.3, 0.2])):
        cy, cx = _weighted_point(rng, yy, xx, dependent)
        patch = aerated & _blob(
            rng, yy, xx, cy, cx, rng.uniform(0.07, 0.15), rng.uniform(0.09, 0.2), rng.uniform(-0.5, 0.5), 0.25
        )
        hu[patch] = rng.uniform(-100, 30) + 20 * texture[patch]
        if rng.random() < 0.5:
            _draw_tubes(rng, hu, yy, xx, patch, rng.integers(1, 4), LUNG_HU, pixel)
        consolidation |= patch
    return consolidation


def _draw_tubes(rng, hu, yy, xx, region, count, value, pixel):
    """Blends `count` thin straight tubes of HU `value` into `hu` inside `region`, in place (air bronchograms).

    A tube narrower than the pixels is drawn wider and fainter, as the partial volume effect shows it.
    """
    points = np.nonzero(region)
    strength = np.zeros_like(hu)
    width = 0.008  # grid units, about 1.4 mm
    sigma = max(width, 0.5 * pixel)
    for _ in range(count):
        cy, cx = _random_point(rng, yy, xx, points)
        direction, length = rng.uniform(0, np.pi), rng.uniform(0.05, 0.12)
        window = _window(yy, xx, cy, cx, length / 2 + 4 * sigma)
        profile = _segment(yy[window] - cy, xx[window] - cx, direction, length, sigma)
        strength[window] = np.maximum(strength[window], profile)
    hu[region] += (value - hu[region]) * 0.8 * width / sigma * strength[region]


def _segment(dy, dx, direction, length, sigma):
    """Gaussian profile in [0, 1] (width `sigma`) around a segment of `length` through the origin, at offsets (dy, dx).

    All in grid units; `direction` is the segment's angle from the column axis. Shapes follow `dy`.
    """
    along = dy * np.sin(direction) + dx * np.cos(direction)
    across = -dy * np.cos(direction) + dx * np.sin(direction)
    dist2 = across**2 + np.clip(np.abs(along) - length / 2, 0, None) ** 2
    return np.exp(-dist2 / (2 * sigma**2))


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
    for _k, amplitude, phase in harmonics:  # edge += amplitude * cos(k theta + phase)
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


def _draw_vessels(rng, hu, yy, xx, lung, centres=None):
    """Adds bright round vessels and short branches (about 40 HU) inside the lung mask, in place.

    Their centres lie in `centres` (`[h, w]` bool; default: anywhere in `lung`).
    """
    h, w = hu.shape
    pixel = 2.0 / max(h, w)
    strength = np.zeros_like(hu)
    centre_pixels = np.nonzero(lung if centres is None else centres)
    for _ in range(rng.integers(20, 45)):
        cy, cx = _random_point(rng, yy, xx, centre_pixels)
        sigma = max(rng.uniform(0.006, 0.016), pixel)
        direction, length = rng.uniform(0, np.pi), rng.uniform(0.04, 0.12) if rng.random() < 0.3 else 0.0
        window = _window(yy, xx, cy, cx, length / 2 + 4 * sigma)
        profile = _segment(yy[window] - cy, xx[window] - cx, direction, length, sigma)
        strength[window] = np.maximum(strength[window], profile)
    hu[lung] += (VESSEL_HU - hu[lung]) * strength[lung]


def _weighted_point(rng, yy, xx, weight):
    """A random (row, col) grid position, drawn in proportion to `weight` `[h, w]`; the centre if all weights are 0."""
    flat = weight.ravel()
    total = flat.sum()
    if total <= 0:
        return 0.0, 0.0
    k = rng.choice(flat.size, p=flat / total)
    return yy.flat[k], xx.flat[k]


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
