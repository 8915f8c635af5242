"""`SliceSet`: a stack of 2-D slices ready for training, with their label maps."""

import dataclasses

import numpy as np

from tf_resattn.data.preprocessing import Preprocessing
from tf_resattn.io import DataError


@dataclasses.dataclass
class SliceSet:
    """Preprocessed slices and labels, one row per slice.

    Attributes:
        images: float32 `[N, H, W, 1]`, scaled to [0, 1].
        masks: uint8 `[N, H, W]`, label values `0 .. num_classes - 1`.
        names: N slice names (e.g. `"0022"` for `img_0022.png`, `"tr_im:007"` for a volume's slice 7).
        preprocessing: the `Preprocessing` that made `images` from the stored slices (its
            `image_size` is (H, W), or None when the slices kept their stored size); a model trained
            on them saves it as `preprocessing.json`.
        groups: N group ids (e.g. patients) for grouped folds, or None when unknown.
        spacing_mm: float `[N, 2]` (row, column) pixel size in mm after resizing, or None when unknown.
        source: where the slices came from (a path or a description of the generator).
        source_masks: N label maps uint8 `[h_i, w_i]` at each slice's stored size (before resizing),
            for scoring at the scans' own resolution; None when the slices were made at this size.
        regions: N `tf_resattn.data.framing.SliceRegion` (crop square and lung field of each stored
            slice) when the preprocessing crops to the lung field, else None.
        source_grey: N uint8 `[h_i, w_i]`: each slice at its stored size as 8-bit grey (HU through
            the preprocessing's window), what training's other-scanner views are made from
            (`tf_resattn.data.scanner_shifts.source_view`); None when the slices were made at this size.

    Example:
        >>> from tf_resattn.data import load_slices
        >>> s = load_slices("synthetic", image_size=64)
        >>> s.images.shape, s.masks.shape, len(s)
        ((40, 64, 64, 1), (40, 64, 64), 40)
        >>> train = s.subset([0, 1, 2])
    """

    images: np.ndarray
    masks: np.ndarray
    names: list
    preprocessing: Preprocessing
    groups: list | None = None
    spacing_mm: np.ndarray | None = None
    source: str = ""
    source_masks: list | None = None
    regions: list | None = None
    source_grey: list | None = None

    def __post_init__(self):
        n = len(self.names)
        if self.images.ndim != 4 or self.images.shape[-1] != 1:
            raise DataError(f"SliceSet images must be [N, H, W, 1], got shape {self.images.shape}")
        if self.masks.shape != self.images.shape[:3]:
            raise DataError(f"SliceSet masks shape {self.masks.shape} does not match images {self.images.shape[:3]}")
        if len(self.images) != n:
            raise DataError(f"SliceSet has {len(self.images)} images but {n} names")
        if self.groups is not None and len(self.groups) != n:
            raise DataError(f"SliceSet has {n} slices but {len(self.groups)} groups")
        if self.spacing_mm is not None and np.shape(self.spacing_mm) != (n, 2):
            raise DataError(f"SliceSet spacing_mm must be [{n}, 2], got {np.shape(self.spacing_mm)}")
        if self.source_masks is not None and len(self.source_masks) != n:
            raise DataError(f"SliceSet has {n} slices but {len(self.source_masks)} source masks")
        if self.regions is not None and len(self.regions) != n:
            raise DataError(f"SliceSet has {n} slices but {len(self.regions)} regions")
        if self.source_grey is not None and len(self.source_grey) != n:
            raise DataError(f"SliceSet has {n} slices but {len(self.source_grey)} source slices")
        size = self.preprocessing.image_size
        if size is not None and size != self.image_size:
            raise DataError(f"SliceSet images are {self.image_size} but their preprocessing resizes to {size}")

    def __len__(self):
        return len(self.names)

    @property
    def input_kind(self):
        """`"hu"` (windowed Hounsfield units) or `"uint8"` (8-bit scaled by 1/255): the preprocessing's."""
        return self.preprocessing.input_kind

    @property
    def image_size(self):
        """(H, W) of every slice."""
        return tuple(self.images.shape[1:3])

    def subset(self, indices):
        """Returns a new `SliceSet` with the slices at `indices` (e.g. one fold), in that order."""
        indices = np.asarray(indices, dtype=int)
        return dataclasses.replace(
            self,
            images=self.images[indices],
            masks=self.masks[indices],
            names=[self.names[i] for i in indices],
            groups=None if self.groups is None else [self.groups[i] for i in indices],
            spacing_mm=None if self.spacing_mm is None else np.asarray(self.spacing_mm)[indices],
            source_masks=None if self.source_masks is None else [self.source_masks[i] for i in indices],
            regions=None if self.regions is None else [self.regions[i] for i in indices],
            source_grey=None if self.source_grey is None else [self.source_grey[i] for i in indices],
        )
