"""Manifest CSV: one row per slice, an image column, an optional mask column, optional name and group columns.

Columns (case-insensitive): image `image`, `image_path`, `img`, `img_path`; mask
`mask`, `mask_path`, `label`, `label_path` (empty = no mask); name `id`, `name`;
group `group`, `patient`, `patient_id`. Paths are relative to the CSV.
"""

import csv
import pathlib

from tf_resattn.io.errors import DataError, one_line
from tf_resattn.io.image_files import image_scans, slice_name

IMAGE_COLUMNS = ("image", "image_path", "img", "img_path")
MASK_COLUMNS = ("mask", "mask_path", "label", "label_path")
NAME_COLUMNS = ("id", "name")
GROUP_COLUMNS = ("group", "patient", "patient_id")


def read_manifest(csv_path, masks=False):
    """The one-slice scans listed in a manifest CSV; their masks too when `masks`."""
    csv_path = pathlib.Path(csv_path)
    try:
        with open(csv_path, newline="") as f:
            rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read manifest {csv_path} ({one_line(e)}); fix or remove it") from e
    if not rows:
        raise DataError(f"manifest {csv_path} lists no slices; add one row per image")
    columns = list(rows[0])
    image_col = _pick_column(columns, IMAGE_COLUMNS)
    if image_col is None:
        raise DataError(f"manifest {csv_path} has no image column (one of {IMAGE_COLUMNS}); its columns are {columns}")
    mask_col, name_col, group_col = (_pick_column(columns, c) for c in (MASK_COLUMNS, NAME_COLUMNS, GROUP_COLUMNS))
    root = csv_path.parent
    image_files = [root / row[image_col] for row in rows]
    mask_files = None
    if masks:
        mask_files = [root / row[mask_col] if mask_col and row[mask_col] else None for row in rows]
        mask_files = [m if m is not None and m.is_file() else None for m in mask_files]
    names = [row[name_col] if name_col and row[name_col] else slice_name(f) for f, row in zip(image_files, rows)]
    groups = [row[group_col] for row in rows] if group_col else None
    return image_scans(image_files, mask_files, names, groups)


def _pick_column(columns, candidates):
    return next((c for c in candidates if c in columns), None)
