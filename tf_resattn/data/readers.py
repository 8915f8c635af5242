"""Readers: from a path on disk to raw slices (values as stored, before any scaling).

Supported inputs (`read_path` picks by what it finds):

- a folder with `images/` and `masks/` (the layout of `../shared/data/medseg100`): an image
  `images/img_NNNN.png` is paired with `masks/mask_NNNN.png` (or a mask of the same file name);
- a folder with a `manifest.csv`, or the CSV itself: one row per slice, an image column
  (`image`, `image_path`, `img`), a mask column (`mask`, `mask_path`, `label`; empty = no mask),
  optional `id`/`name` and `group`/`patient`/`patient_id` columns; paths relative to the CSV;
- a NIfTI image (`tr_im.nii.gz`, Hounsfield units) with its label volume beside it
  (`tr_mask.nii.gz`) or given as `mask_path`; slices along the last axis;
- a DICOM series folder (one file per slice); labels from `mask_path` or a `mask.nii.gz` in the folder.

Orientation of volumes: NIfTI stores `data[x, y, z]`; slice `k` is `data[:, :, k].T`, so that rows
run along y and columns along x, which is how the MedSeg PNG slices were written from
`tr_im.nii.gz` (equivalently `np.fliplr(np.rot90(data[:, :, k], 3))`). DICOM pixel data is already
`[rows, columns]` and is used as it is.

PNG images are read with `cv2.IMREAD_UNCHANGED` (8- or 16-bit); colour images are converted to grey
with a warning.
"""

import csv
import dataclasses
import pathlib
import warnings

import cv2
import numpy as np

from tf_resattn.data.errors import DataError

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
IMAGE_COLUMNS = ("image", "image_path", "img", "img_path")
MASK_COLUMNS = ("mask", "mask_path", "label", "label_path")
NAME_COLUMNS = ("id", "name")
GROUP_COLUMNS = ("group", "patient", "patient_id")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
NIFTI_MASK_NAMES = (("_im", "_mask"), ("_ct", "_seg"), ("image", "mask"), ("image", "label"))
"""(image token, mask token): the mask of `tr_im.nii.gz` is `tr_mask.nii.gz`, of `x_ct.nii.gz` is `x_seg.nii.gz`."""


@dataclasses.dataclass
class RawSlices:
    """Slices as stored on disk, one entry per slice.

    Attributes:
        images: list of 2-D arrays (stored dtype and values: 8-bit grey or HU).
        masks: list of 2-D label arrays, None where a slice has no mask.
        names: slice names.
        image_files, mask_files: where each image / mask came from, for messages.
        groups: group ids (patients) or None.
        spacing_mm: list of (row, col) pixel sizes in mm, or None.
        from_volume: True for NIfTI/DICOM (values expected in HU), False for 2-D image files.
        source: the path that was read.
    """

    images: list
    masks: list
    names: list
    image_files: list
    mask_files: list
    groups: list | None = None
    spacing_mm: list | None = None
    from_volume: bool = False
    source: str = ""


def read_path(path, mask_path=None):
    """Reads any supported input (see the module docstring) and returns `RawSlices`."""
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError(
            f"{path} does not exist; pass a folder of images and masks, a NIfTI image file, "
            "a DICOM series folder or 'synthetic'"
        )
    if path.is_file():
        if _is_nifti(path):
            return read_nifti_pair(path, mask_path)
        if path.suffix.lower() == ".csv":
            return read_manifest(path)
        raise DataError(
            f"{path}: unknown kind of file; pass a NIfTI image (.nii/.nii.gz), a manifest .csv, "
            "a folder of images and masks or a DICOM series folder"
        )
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise DataError(f"folder {path} is empty; put images/ and masks/ (or a manifest.csv) or a DICOM series in it")
    if (path / "manifest.csv").is_file():
        return read_manifest(path / "manifest.csv")
    if (path / "images").is_dir():
        return read_image_folder(path)
    if _dicom_files(path):
        return read_dicom_series(path, mask_path)
    raise DataError(
        f"{path}: no images/ folder, manifest.csv or DICOM files found; expected images/img_NNNN.png "
        "with masks/mask_NNNN.png, a manifest.csv, or a DICOM series"
    )


def read_image_folder(folder):
    """Reads `folder/images/*` and the matching `folder/masks/*` (see `mask_candidates`)."""
    folder = pathlib.Path(folder)
    image_files = sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not image_files:
        raise DataError(f"folder {folder / 'images'} holds no images ({', '.join(IMAGE_EXTENSIONS)}); put the slices there")
    mask_files = [next((m for m in mask_candidates(folder / "masks", f) if m.is_file()), None) for f in image_files]
    names = [_slice_name(f) for f in image_files]
    return _read_image_files(image_files, mask_files, names, None, str(folder))


def mask_candidates(mask_folder, image_file):
    """Mask files that may belong to `image_file`: `mask_NNNN.<ext>` for `img_NNNN.<ext>`, and the same name."""
    stem, suffix = image_file.stem, image_file.suffix
    candidates = [mask_folder / image_file.name]
    for prefix in ("img_", "image_"):
        if stem.startswith(prefix):
            candidates.insert(0, mask_folder / f"mask_{stem[len(prefix):]}{suffix}")
    return candidates


def read_manifest(csv_path):
    """Reads the slices listed in a manifest CSV (columns: see the module docstring)."""
    csv_path = pathlib.Path(csv_path)
    try:
        with open(csv_path, newline="") as f:
            rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read manifest {csv_path} ({_one_line(e)}); fix or remove it") from e
    if not rows:
        raise DataError(f"manifest {csv_path} lists no slices; add one row per image")
    columns = list(rows[0])
    image_col = _pick_column(columns, IMAGE_COLUMNS)
    mask_col = _pick_column(columns, MASK_COLUMNS)
    if image_col is None:
        raise DataError(f"manifest {csv_path} has no image column (one of {IMAGE_COLUMNS}); its columns are {columns}")
    name_col, group_col = _pick_column(columns, NAME_COLUMNS), _pick_column(columns, GROUP_COLUMNS)
    root = csv_path.parent
    image_files = [root / row[image_col] for row in rows]
    mask_files = []
    for row in rows:
        mask = root / row[mask_col] if mask_col and row[mask_col] else None
        mask_files.append(mask if mask is not None and mask.is_file() else None)
    names = [row[name_col] if name_col and row[name_col] else _slice_name(f) for f, row in zip(image_files, rows)]
    groups = [row[group_col] for row in rows] if group_col else None
    return _read_image_files(image_files, mask_files, names, groups, str(csv_path))


def read_nifti_pair(image_path, mask_path=None):
    """Reads a NIfTI CT volume (HU) and its label volume; slices along the last axis, transposed.

    The mask is `mask_path` or, by default, the file beside the image named by `NIFTI_MASK_NAMES`
    (`tr_im.nii.gz` -> `tr_mask.nii.gz`). Spacing (row, col) comes from the header's zooms (y, x).
    """
    image_path = pathlib.Path(image_path)
    volume, zooms = _load_nifti(image_path)
    mask_path = pathlib.Path(mask_path) if mask_path is not None else _default_nifti_mask(image_path)
    if mask_path is not None and not mask_path.is_file():
        raise DataError(f"mask file {mask_path} does not exist; pass the label volume of {image_path.name} as mask_path")
    labels = None if mask_path is None else _load_nifti(mask_path)[0]
    if labels is not None and labels.shape != volume.shape:
        raise DataError(
            f"{image_path.name} has shape {volume.shape} but its mask {mask_path.name} has {labels.shape}; "
            "give the label volume that belongs to this image"
        )
    stem = _nifti_stem(image_path)
    n = volume.shape[-1]
    return RawSlices(
        images=[volume[:, :, k].T for k in range(n)],
        masks=[None if labels is None else labels[:, :, k].T for k in range(n)],
        names=[f"{stem}:{k:03d}" for k in range(n)],
        image_files=[f"{image_path} slice {k}" for k in range(n)],
        mask_files=[f"{mask_path} slice {k}" for k in range(n)],
        spacing_mm=[(zooms[1], zooms[0])] * n,
        from_volume=True,
        source=str(image_path),
    )


def read_dicom_series(folder, mask_path=None):
    """Reads a DICOM series (one slice per file) in Hounsfield units, ordered along the patient axis.

    HU = stored value * RescaleSlope + RescaleIntercept. Order: position along the slice normal
    (ImagePositionPatient . (row x column direction)), else InstanceNumber, else file name.
    Spacing: PixelSpacing (row, col). Labels: a NIfTI volume (`mask_path`, or `mask.nii.gz` in the
    folder) with one slice per DICOM file in that order, oriented like `read_nifti_pair`.
    """
    import pydicom

    folder = pathlib.Path(folder)
    slices = []
    for f in _dicom_files(folder):
        try:
            ds = pydicom.dcmread(f)
            pixels = ds.pixel_array
        except Exception as e:  # pydicom raises many types for corrupt or truncated files
            raise DataError(f"cannot read DICOM file {f} ({_one_line(e)}); the file is corrupt or truncated, replace it") from e
        if pixels.ndim != 2:
            raise DataError(f"{f} is a multi-frame or colour DICOM (pixel shape {pixels.shape}); give one grey slice per file")
        hu = pixels.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        spacing = tuple(float(s) for s in ds.PixelSpacing) if "PixelSpacing" in ds else None
        slices.append((_dicom_order_key(ds, f), f, hu, spacing))
    slices.sort(key=lambda s: s[0])
    files = [s[1] for s in slices]
    if mask_path is None and (folder / "mask.nii.gz").is_file():
        mask_path = folder / "mask.nii.gz"
    masks = [None] * len(slices)
    if mask_path is not None:
        labels = _load_nifti(pathlib.Path(mask_path))[0]
        if labels.shape[-1] != len(slices):
            raise DataError(
                f"mask {mask_path} has {labels.shape[-1]} slices but the DICOM series {folder} has {len(slices)}; "
                "give the label volume of this series"
            )
        masks = [labels[:, :, k].T for k in range(len(slices))]
    spacings = [s[3] for s in slices]
    return RawSlices(
        images=[s[2] for s in slices],
        masks=masks,
        names=[f.name for f in files],
        image_files=[str(f) for f in files],
        mask_files=[f"{mask_path} slice {k}" for k in range(len(files))],
        spacing_mm=None if None in spacings else spacings,
        from_volume=True,
        source=str(folder),
    )


def _read_image_files(image_files, mask_files, names, groups, source):
    """Reads paired 2-D image files; `mask_files` entries may be None (no mask)."""
    images, colour = [], []
    for f in image_files:
        image = _read_image_file(f)
        if image.ndim == 3:
            colour.append(f.name)
            image = _to_grey(image)
        images.append(image)
    if colour:
        warnings.warn(f"{len(colour)} colour images converted to grey ({', '.join(colour[:5])}{', ...' if len(colour) > 5 else ''})", stacklevel=3)
    masks = [None if f is None else _read_mask_file(f) for f in mask_files]
    return RawSlices(
        images=images,
        masks=masks,
        names=names,
        image_files=[str(f) for f in image_files],
        mask_files=[str(f) for f in mask_files],
        groups=groups,
        source=source,
    )


def _read_image_file(path):
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; fix the path or remove the entry")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"cannot read image file {path}: it is corrupt, truncated or not an image; replace it")
    return image


def _read_mask_file(path):
    mask = _read_image_file(path)
    if mask.ndim == 3:
        if not np.all(mask == mask[..., :1]):
            raise DataError(f"mask {path} has colour channels that differ; save label maps as single-channel integer images")
        mask = mask[..., 0]
    return mask


def _to_grey(image):
    """BGR(A) -> grey; channels that are all equal are simply taken."""
    image = image[..., :3]
    if np.all(image == image[..., :1]):
        return image[..., 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _load_nifti(path):
    """Returns (float32 volume with at most 3 dims, header zooms)."""
    import nibabel

    try:
        image = nibabel.load(str(path))
        volume = image.get_fdata(dtype=np.float32)
    except Exception as e:  # nibabel/gzip raise many types for corrupt or truncated files
        raise DataError(f"cannot read NIfTI file {path} ({_one_line(e)}); the file is corrupt or truncated, replace it") from e
    zooms = tuple(float(z) for z in image.header.get_zooms())
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim == 2:
        volume = volume[..., None]
    if volume.ndim != 3:
        raise DataError(
            f"{path} is a {volume.ndim}D NIfTI (shape {volume.shape}); give a 3D volume with slices along the last axis "
            "(for a time series, save one time point)"
        )
    return volume, zooms + (1.0,) * (2 - len(zooms))


def _default_nifti_mask(image_path):
    stem = _nifti_stem(image_path)
    suffix = image_path.name[len(stem):]
    for image_token, mask_token in NIFTI_MASK_NAMES:
        if image_token in stem:
            head, _, tail = stem.rpartition(image_token)
            candidate = image_path.with_name(f"{head}{mask_token}{tail}{suffix}")
            if candidate.is_file():
                return candidate
    return None


def _dicom_files(folder):
    """Files of a folder that are DICOM: a `.dcm` name or the `DICM` marker at byte 128."""
    files = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix.lower() == ".dcm":
            files.append(f)
        elif not f.suffix:
            with open(f, "rb") as handle:
                if handle.read(132)[128:] == b"DICM":
                    files.append(f)
    return files


def _dicom_order_key(ds, path):
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        return (0, float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))), path.name)
    if "InstanceNumber" in ds:
        return (1, float(ds.InstanceNumber), path.name)
    return (2, 0.0, path.name)


def _is_nifti(path):
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _nifti_stem(path):
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _slice_name(image_file):
    """`img_0022.png` -> `0022`; other names keep their stem."""
    stem = pathlib.Path(image_file).stem
    for prefix in ("img_", "image_"):
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return stem


def _pick_column(columns, candidates):
    return next((c for c in candidates if c in columns), None)


def _one_line(error):
    return " ".join(f"{type(error).__name__}: {error}".split())
