"""From a raw 2-D slice (Hounsfield units or 8-bit grey) to a float32 image in [0, 1].

Order of operations (the TF export repeats it with TF ops, so it is fixed here):

1. scale: HU are clipped to `hu_window` and mapped linearly to [0, 1]
   (`(hu - low) / (high - low)`); 8-bit grey is divided by 255 (and clipped to [0, 1]);
2. resize to `image_size` (h, w), if given: `cv2.INTER_AREA` when neither side grows
   (TF: `tf.image.resize(method="area")`), else `cv2.INTER_LINEAR`
   (TF: `method="bilinear", antialias=False`). Label maps use nearest neighbour with
   pixel-centre alignment (`cv2.INTER_NEAREST_EXACT`, TF: `method="nearest"`), so no
   new label value can appear.
"""

import dataclasses

import numpy as np

from tf_resattn import optional
from tf_resattn.data.roi import crop
from tf_resattn.io import DataError

cv2 = optional.module("cv2", "io")

INPUT_KINDS = ("hu", "uint8")
LUNG_WINDOW = (-1000.0, 400.0)
"""Default HU window (low, high): from air to just above soft tissue, the lung window."""

AIR_THRESHOLD_HU = -500.0
"""A CT volume in Hounsfield units has air (about -1000 HU) around the body; values below this mark HU."""


def check_window(window, name):
    """`window` (two finite numbers, low < high) as a (low, high) tuple of floats; ValueError naming `name` otherwise."""
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (low, high) in HU, got {window!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} must be two finite numbers (low, high) in HU, got {window!r}")
    if not low < high:
        raise ValueError(f"{name} must be (low, high) with low < high, got {window!r}")
    return (low, high)


def window_to_grey(hu_slices, window):
    """Hounsfield units -> the float grey levels 0..255 that `window` (low, high) gives, clipped; shape kept.

    Example:
        >>> window_to_grey(np.array([-1350.0, -600.0, 150.0, 400.0]), (-1350, 150)).tolist()
        [0.0, 127.5, 255.0, 255.0]
    """
    low, high = window
    grey = np.array(hu_slices, dtype=np.float32)  # one copy, then in place: a 300-slice volume is 315 MB
    grey -= low
    grey /= high - low
    grey *= 255.0
    return np.clip(grey, 0.0, 255.0, out=grey)


def normalize_image_size(image_size):
    """Returns `image_size` (None, an int or an (h, w) pair) as None or an (h, w) tuple of ints."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        image_size = (image_size, image_size)
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be a positive int or an (h, w) pair, got {image_size!r}")
    return size


def detect_input_kind(raw_images, *, from_volume, source, kind_option="input_kind"):
    """Decides whether raw slices are Hounsfield units (`"hu"`) or 8-bit grey (`"uint8"`).

    Args:
        raw_images: list of 2-D arrays as read from disk.
        from_volume: True for NIfTI/DICOM (expected HU), False for PNG and other 2-D images.
        source: the path, for error messages.
        kind_option: the setting by which the caller can say what the values are, named in the
            error's fix, or None where there is none (prediction: the model decides).

    Returns:
        `"hu"` or `"uint8"`. Raises `DataError` when the values fit neither, rather than guess.
    """
    low = min(float(np.min(im)) for im in raw_images)
    high = max(float(np.max(im)) for im in raw_images)
    integer_valued = all(np.issubdtype(im.dtype, np.integer) or np.all(im == np.round(im)) for im in raw_images)
    fits_8bit = integer_valued and low >= 0 and high <= 255
    say_kind = f" or pass {kind_option}='hu' or 'uint8' to say what it is" if kind_option else ""
    if from_volume:
        if low < AIR_THRESHOLD_HU:
            return "hu"
        not_hu = (
            f"{source}: values {low:g}..{high:g} do not look like Hounsfield units (no air below {AIR_THRESHOLD_HU:g})"
        )
        if fits_8bit and kind_option:
            raise DataError(f"{not_hu}; if it holds 8-bit windowed grey values pass {kind_option}='uint8'")
        raise DataError(f"{not_hu}; rescale it to HU (slope/intercept){say_kind}")
    if fits_8bit:
        return "uint8"
    raise DataError(
        f"{source}: image values {low:g}..{high:g} are neither 8-bit grey (0..255) nor a CT volume; convert the "
        f"images to 8-bit PNG or give the CT as NIfTI/DICOM in HU{say_kind}"
    )


def image_interpolation(from_size, to_size):
    """Returns `"area"` when shrinking (neither side grows) and `"bilinear"` otherwise; sizes are (h, w)."""
    return "area" if to_size[0] <= from_size[0] and to_size[1] <= from_size[1] else "bilinear"


_CV2_INTERPOLATION = {"area": "INTER_AREA", "bilinear": "INTER_LINEAR"}  # names: cv2 is read when used


def resize_image(image, size):
    """Resizes a float 2-D image `[h, w]` to `size` (h, w) with the rule of `image_interpolation`."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    method = getattr(cv2, _CV2_INTERPOLATION[image_interpolation(image.shape[:2], size)])
    return cv2.resize(image, (size[1], size[0]), interpolation=method)


def restore_size(probabilities, size):
    """Probabilities `[N, h, w, C]` -> `[N, H, W, C]` for `size` (H, W), by `image_interpolation`'s rule."""
    return np.stack([resize_image(p, tuple(size)).reshape(*size, p.shape[-1]) for p in probabilities])


def resize_mask(mask, size):
    """Resizes a label map `[h, w]` to `size` (h, w) by nearest neighbour: no new label values appear."""
    if tuple(mask.shape[:2]) == tuple(size):
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


@dataclasses.dataclass
class Preprocessing:
    """The preprocessing of one kind of input, saved with a model so that inference repeats it.

    Args:
        input_kind: `"hu"` (Hounsfield units) or `"uint8"` (8-bit grey, 0..255).
        hu_window: (low, high) HU mapped to 0 and 1; used when `input_kind == "hu"`.
        image_size: (h, w) to resize to, an int for square, or None to keep the size.
        source_window: for `"uint8"`, the (low, high) HU window the 8-bit training slices were
            made with (`tf_resattn.data.display_window`), or None when unknown: HU input is
            windowed to the same grey levels (`for_input`).
        lung_crop: None, or the margin (a share of the lung field's longer side) of the square
            each slice is cropped to before resizing (`tf_resattn.data.roi`); probabilities are
            pasted back at the source size, background outside the square.
        lung_constraint: None, or the margin (a share of the lung field's longer side) by which the
            lung field is grown before every prediction outside it is set to background.

    Example:
        >>> prep = Preprocessing("hu", (-1000, 400), 128)
        >>> prep.apply(np.full((512, 512), -600.0, np.float32)).shape
        (128, 128, 1)
        >>> Preprocessing.from_config(prep.to_config()) == prep
        True
    """

    input_kind: str = "uint8"
    hu_window: tuple = LUNG_WINDOW
    image_size: tuple | None = None
    source_window: tuple | None = None
    lung_crop: float | None = None
    lung_constraint: float | None = None

    def __post_init__(self):
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        self.hu_window = check_window(self.hu_window, "hu_window")
        if self.source_window is not None:
            self.source_window = check_window(self.source_window, "source_window")
        self.image_size = normalize_image_size(self.image_size)
        for name in ("lung_crop", "lung_constraint"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(float(value)) and 0.0 <= float(value) <= 1.0):
                raise ValueError(
                    f"{name} must be None or a margin in [0, 1] (a share of the lung field's side), got {value!r}"
                )
            setattr(self, name, None if value is None else float(value))

    def to_config(self):
        """Returns a JSON-serialisable dict (the content of `preprocessing.json`)."""
        return {
            "input_kind": self.input_kind,
            "hu_window": list(self.hu_window),
            "image_size": None if self.image_size is None else list(self.image_size),
            "source_window": None if self.source_window is None else list(self.source_window),
            "lung_crop": self.lung_crop,
            "lung_constraint": self.lung_constraint,
        }

    @classmethod
    def from_config(cls, config):
        """Inverse of `to_config` (a file written before `source_window` or the lung settings existed reads them as None)."""
        return cls(
            config["input_kind"],
            tuple(config["hu_window"]),
            config["image_size"],
            config.get("source_window"),
            config.get("lung_crop"),
            config.get("lung_constraint"),
        )

    def resized(self, image_size):
        """The same preprocessing with another `image_size`."""
        return dataclasses.replace(self, image_size=image_size)

    def hu_bridge(self, window=None):
        """The HU window that turns a Hounsfield-unit scan into the 8-bit grey levels this model was trained on.

        Args:
            window: (low, high) HU given by the user (`--window`), overriding `source_window`.

        Returns:
            `(low, high)`: grey = 255 (hu - low) / (high - low), clipped (`window_to_grey`).
            Raises `DataError` when the model takes HU itself, or when no window is known.
        """
        if self.input_kind == "hu":
            raise DataError("the model takes Hounsfield units itself: it needs no display window (drop --window)")
        window = self.source_window if window is None else window
        if window is None:
            raise DataError(
                "the model was trained on 8-bit grey slices and records no display window, so Hounsfield units cannot "
                "be mapped to its grey levels; pass --window LOW HIGH (the HU window its slices were made with, e.g. "
                "--window -1350 150 for lung-window slices) or retrain with --source-window"
            )
        return check_window(window, "window")

    def scale(self, raw_image):
        """Maps a raw 2-D slice to float32 in [0, 1] (no resizing)."""
        image = np.asarray(raw_image, dtype=np.float32)
        if self.input_kind == "hu":
            low, high = self.hu_window
            return np.clip((image - low) / (high - low), 0.0, 1.0)
        return np.clip(image / 255.0, 0.0, 1.0)

    def grey(self, raw_image):
        """A raw 2-D slice as 8-bit grey `uint8 [h, w]` at its own size (`scale` times 255, rounded)."""
        return np.round(self.scale(raw_image) * 255.0).astype(np.uint8)

    def apply(self, raw_image, box=None):
        """Scales, crops to `box` (a `tf_resattn.data.roi.CropBox`, if given) and resizes a raw 2-D slice `[h, w]`.

        Returns float32 `[H, W, 1]` in [0, 1]; where the box leaves the frame, the slice's lowest value.
        """
        image = self.scale(raw_image)
        if box is not None:
            image = crop(image, box, fill=float(image.min()))
        if self.image_size is not None:
            image = resize_image(image, self.image_size)
        return image[..., None]
