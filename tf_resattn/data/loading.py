"""`load_slices`: any supported input -> a checked, preprocessed `SliceSet`."""

import warnings

import numpy as np

from tf_resattn.data.framing import framed_pairs
from tf_resattn.data.preprocessing import (
    INPUT_KINDS,
    LUNG_WINDOW,
    Preprocessing,
    detect_input_kind,
    normalize_image_size,
)
from tf_resattn.data.slices import SliceSet
from tf_resattn.data.synthetic import synthetic_slices
from tf_resattn.io import DataError, read_path

SYNTHETIC = "synthetic"
SYNTHETIC_DEFAULT_SIZE = 128


def load_slices(
    path,
    *,
    image_size=None,
    num_classes=4,
    input_kind="auto",
    hu_window=LUNG_WINDOW,
    mask_path=None,
    lung_crop=None,
    lung_constraint=None,
):
    """Reads slices and labels from disk (or the synthetic default) and preprocesses them.

    Args:
        path: `"synthetic"` (40 generated slices, 128x128 unless `image_size` says otherwise), a folder
            with `images/` + `masks/` or a `manifest.csv` (the layout of `../shared/data/medseg100`),
            a NIfTI image (`tr_im.nii.gz`, its labels `tr_mask.nii.gz` beside it), or a DICOM series
            folder. See `tf_resattn.io.reading` for the details.
        image_size: int or (h, w) to resize every slice to (masks by nearest neighbour), or None to
            keep the stored size (then all slices must have the same size).
        num_classes: label values must lie in 0 .. num_classes - 1.
        input_kind: `"auto"` (detect: 8-bit images -> `"uint8"`, NIfTI/DICOM with air below -500 ->
            `"hu"`, anything else is an error), `"hu"` or `"uint8"` to say what the values are.
        hu_window: (low, high) HU mapped to 0 and 1 for HU input; the lung window by default.
        mask_path: the label volume of a NIfTI image or DICOM series, when not found by name.
        lung_crop: None, or the margin of the square around each slice's lung field that images
            and masks are cropped to before resizing (`Preprocessing.lung_crop`).
        lung_constraint: None, or the margin of the lung field outside which predictions become
            background (`Preprocessing.lung_constraint`; recorded here, applied when scoring).

    Returns:
        `SliceSet`: images float32 `[N, H, W, 1]` in [0, 1], masks uint8 `[N, H, W]`. Slices without
        a mask are dropped with a warning that names them.

    Raises:
        DataError: missing or unknown path, empty folder, no masks at all, image/mask size mismatch,
            label values out of range, corrupt file, input that is neither HU nor 8-bit, ...

    Example:
        s = load_slices("../shared/data/medseg100", image_size=256)  # warns: 0022, 0048 have no mask
        len(s), s.input_kind, s.images.shape[1:]  # (98, 'uint8', (256, 256, 1))
    """
    if input_kind not in ("auto",) + INPUT_KINDS:
        raise ValueError(f"input_kind must be 'auto', 'hu' or 'uint8', got {input_kind!r}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes!r}")
    size = normalize_image_size(image_size)
    if str(path) == SYNTHETIC:
        slices = synthetic_slices(image_size=size or SYNTHETIC_DEFAULT_SIZE, hu_window=hu_window)
        check_labels(slices.masks, num_classes, slices.names)
        return slices

    raw = _drop_unlabelled(read_path(path, mask_path))
    for image, mask, image_file, mask_file in zip(raw.images, raw.masks, raw.image_files, raw.mask_files):
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(
                f"image {image_file} is {image.shape[0]}x{image.shape[1]} but its mask {mask_file} is "
                f"{mask.shape[0]}x{mask.shape[1]}; give masks of the same size as their images"
            )
    check_labels(raw.masks, num_classes, raw.mask_files)
    masks = [_integer_labels(m, f) for m, f in zip(raw.masks, raw.mask_files)]
    if size is None and lung_crop is not None:
        raise DataError("lung_crop crops every slice to a square of its own size: pass image_size to resize them all")
    if size is None and len({im.shape[:2] for im in raw.images}) > 1:
        shapes = sorted({f"{im.shape[0]}x{im.shape[1]}" for im in raw.images})
        raise DataError(
            f"{raw.source}: slices have different sizes ({', '.join(shapes)}); pass image_size to resize them all"
        )

    kind = (
        input_kind
        if input_kind != "auto"
        else detect_input_kind(raw.images, from_volume=raw.from_volume, source=raw.source)
    )
    prep = Preprocessing(kind, hu_window, size, lung_crop=lung_crop, lung_constraint=lung_constraint)
    source_masks = masks
    images, masks, regions = framed_pairs(raw.images, masks, prep)
    spacing = None
    if raw.spacing_mm is not None:
        framed = np.array([(r.box.side,) * 2 if r.box else r.frame_size for r in regions], dtype=np.float64)
        spacing = np.asarray(raw.spacing_mm, dtype=np.float64) * framed / np.array(images.shape[1:3], dtype=np.float64)
    return SliceSet(
        images,
        masks,
        list(raw.names),
        prep,
        raw.groups,
        spacing,
        raw.source,
        source_masks,
        regions if regions[0].field is not None else None,
        [prep.grey(image) for image in raw.images],
    )


def check_labels(masks, num_classes, files):
    """Raises `DataError` naming the first mask (of `files`) with label values outside 0 .. num_classes - 1.

    A mask of 0 and 255 only is named for what it is, a black-and-white image, rather than
    met with the advice of 256 classes.
    """
    for mask, file in zip(masks, files):
        values = np.unique(mask)
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size and set(values.tolist()) <= {0, 255}:
            raise DataError(
                f"mask {file} holds only 0 and 255: a black-and-white mask, not label values; save it with labels "
                f"0..{num_classes - 1} (0 and 1 for a binary mask: divide it by 255)"
            )
        if bad.size:
            shown = ", ".join(str(int(v)) for v in bad[:8])
            raise DataError(
                f"mask {file} has label values {shown} outside 0..{num_classes - 1}; "
                f"fix the mask or set num_classes to {int(values.max()) + 1}"
            )


def _integer_labels(mask, file):
    """Label map (already checked to lie in 0 .. num_classes - 1) as uint8, once it holds integers only."""
    if not np.issubdtype(mask.dtype, np.integer) and not np.all(mask == np.round(mask)):
        raise DataError(f"mask {file} holds non-integer values; save label maps as integers 0..num_classes-1")
    return mask.astype(np.uint8)


def _drop_unlabelled(raw):
    """Drops slices without a mask (with a warning naming them); an error when none has one."""
    missing = [i for i, m in enumerate(raw.masks) if m is None]
    if not missing:
        return raw
    names = [raw.names[i] for i in missing]
    if len(missing) == len(raw.masks):
        shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        raise DataError(
            f"{raw.source}: no mask found for any image ({shown}); put masks/mask_NNNN.png beside images/img_NNNN.png, "
            "fill the mask column of manifest.csv, or pass mask_path (the label volume of a NIfTI image or DICOM series)"
        )
    warnings.warn(f"{raw.source}: dropped {len(names)} slices without a mask: {', '.join(names)}", stacklevel=3)
    keep = [i for i, m in enumerate(raw.masks) if m is not None]
    for field in ("images", "masks", "names", "image_files", "mask_files", "groups", "spacing_mm"):
        values = getattr(raw, field)
        if values is not None:
            setattr(raw, field, [values[i] for i in keep])
    return raw
