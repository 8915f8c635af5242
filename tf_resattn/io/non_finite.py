"""Non-finite voxels (NaN, +-inf): read as the scan's lowest value, counted, named in one warning.

NaN is what resampling tools write outside the field of view, so a volume can
hold it around the body. Each such voxel is given the lowest finite value of its
scan (air or the scanner's padding, which every window maps to its lowest grey),
so the rest of its slice is segmented as usual; `Scan.non_finite` keeps where
they were, for the label maps (background there) and the report. A slice with no
finite value at all has nothing to segment and is refused.
"""

import dataclasses
import warnings

import numpy as np

from tf_resattn.io.errors import DataError


def with_finite_values(scan):
    """`scan` with its non-finite voxels set to its lowest finite value and recorded in `non_finite`.

    Returns `scan` itself when every voxel is finite (integer data always is).

    Raises:
        DataError: a slice with no finite voxel.
    """
    if not np.issubdtype(scan.slices.dtype, np.floating):
        return scan
    bad = ~np.isfinite(scan.slices)
    if not bad.any():
        return scan
    empty = np.flatnonzero(bad.all(axis=(1, 2)))
    if empty.size:
        raise DataError(
            f"{scan.image_files[empty[0]]} holds no finite value (all NaN or infinite; {empty.size} such slices in "
            f"{scan.source}); remove those slices or rewrite the scan"
        )
    lowest = np.min(scan.slices[~bad])
    return dataclasses.replace(scan, slices=np.where(bad, lowest, scan.slices), non_finite=bad)


def warn_non_finite(scans):
    """One warning naming the scans with non-finite voxels, their counts and the slices that hold them."""
    parts = []
    for scan in scans:
        if scan.non_finite is None:
            continue
        per_slice = scan.non_finite.sum(axis=(1, 2))
        names = [scan.slice_names[k] for k in np.flatnonzero(per_slice)]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        parts.append(f"{scan.source}: {int(per_slice.sum())} in {len(names)} slices ({shown})")
    if parts:
        warnings.warn(
            f"non-finite voxels (NaN or infinite) read as their scan's lowest value: {'; '.join(parts)}",
            stacklevel=3,
        )


def non_finite_count(scan):
    """Number of voxels of `scan` that were non-finite."""
    return 0 if scan.non_finite is None else int(scan.non_finite.sum())
