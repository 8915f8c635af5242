"""2-D image files (PNG, JPEG, TIFF, BMP): slices and their label maps.

Images are read with `cv2.IMREAD_UNCHANGED` (8- or 16-bit). A colour image whose
channels are all equal is taken as grey; one whose channels differ is converted
to grey (`cv2.COLOR_BGR2GRAY`) with one warning naming the files. A label map
must be single-channel or have equal channels.
"""

import pathlib
import warnings

import numpy as np

from tf_resattn import optional
from tf_resattn.io.errors import DataError
from tf_resattn.io.scan import Scan

cv2 = optional.module("cv2", "io")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def is_image_file(path):
    """True for a visible file with one of `IMAGE_EXTENSIONS`."""
    path = pathlib.Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def image_scans(image_files, mask_files=None, names=None, groups=None):
    """One-slice scans of 2-D image files, colour converted to grey (one warning for all).

    Args:
        image_files: paths of the images.
        mask_files: per image, the path of its label map or None (None: no masks read).
        names: per image, the slice name (default: `slice_name` of the file).
        groups: per image, a group id (default: None).
    """
    scans, colour = [], []
    for k, path in enumerate(image_files):
        path = pathlib.Path(path)
        image = read_image_file(path)
        if image.ndim == 3:
            colour.append(path.name)
            image = _to_grey(image)
        mask_file = None if mask_files is None else mask_files[k]
        scans.append(
            Scan(
                name=path.stem,
                kind="image",
                slices=image[None],
                slice_names=[slice_name(path) if names is None else names[k]],
                image_files=[str(path)],
                masks=None if mask_file is None else [read_mask_file(mask_file)],
                mask_files=None if mask_file is None else [str(mask_file)],
                group=None if groups is None else groups[k],
                source=str(path),
            )
        )
    if colour:
        shown = ", ".join(colour[:5]) + (", ..." if len(colour) > 5 else "")
        warnings.warn(f"{len(colour)} colour images converted to grey ({shown})", stacklevel=3)
    return scans


def mask_candidates(mask_folder, image_file):
    """Mask files that may belong to `image_file`: `mask_NNNN.<ext>` for `img_NNNN.<ext>`, and the same name."""
    stem, suffix = image_file.stem, image_file.suffix
    candidates = [mask_folder / image_file.name]
    for prefix in ("img_", "image_"):
        if stem.startswith(prefix):
            candidates.insert(0, mask_folder / f"mask_{stem[len(prefix) :]}{suffix}")
    return candidates


def slice_name(image_file):
    """`img_0022.png` -> `0022`; other names keep their stem."""
    stem = pathlib.Path(image_file).stem
    for prefix in ("img_", "image_"):
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem


def read_image_file(path):
    """The image as stored: `[H, W]` grey or `[H, W, C]` BGR(A), 8- or 16-bit."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; fix the path or remove the entry")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot read image file {path}: it is corrupt, truncated or not an image; replace it")
    return image


def read_mask_file(path):
    """A label map `[H, W]`; a multi-channel one must have equal channels."""
    mask = read_image_file(path)
    if mask.ndim == 3:
        if not np.all(mask == mask[..., :1]):
            raise DataError(
                f"mask {path} has colour channels that differ; save label maps as single-channel integer images"
            )
        mask = mask[..., 0]
    return mask


def _to_grey(image):
    """BGR(A) -> grey; channels that are all equal are simply taken."""
    image = image[..., :3]
    if np.all(image == image[..., :1]):
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
