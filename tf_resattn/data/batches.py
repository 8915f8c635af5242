"""`make_batches`: slice arrays -> batches for `model.fit` on any Keras backend.

On the TensorFlow backend this is `tf_resattn.data.pipeline.make_dataset` (a `tf.data.Dataset`,
imported only there). On other backends (JAX) it is `ArrayBatches`, a `keras.utils.PyDataset`
over NumPy arrays: the same `"none"` and `"offline"` augmentation, seeded shuffling that
changes every epoch, no TensorFlow. `"online"` augmentation draws its transforms in `tf.data`
and needs the TensorFlow backend.
"""

import keras
import numpy as np

from tf_resattn.arguments import check_positive_int
from tf_resattn.data.augmentation import PER_EPOCH_MODES, augment_offline, check_pairs


def make_batches(
    images,
    masks,
    batch_size,
    *,
    augment="none",
    shuffle=False,
    seed=0,
    acquisition=False,
    equalized_share=0.0,
    scanner_share=0.0,
    scanner_sources=None,
    lung_crop=None,
    scanner_clahe="narrow",
):
    """Batches slices and labels for `model.fit` / `model.evaluate` on the current Keras backend.

    Args:
        images: float32 `[N, H, W, C]` in [0, 1].
        masks: integer `[N, H, W]`.
        batch_size: slices per batch (the last batch may be smaller).
        augment: `"none"`, `"offline"` (the paper's 6x set), `"online"` or `"upright"` (TensorFlow backend only).
        shuffle: reshuffle the slices every epoch.
        seed: seed of the shuffling (and of the online transforms).
        acquisition: random acquisition changes of the images (`tf_resattn.data.acquisition`;
            TensorFlow backend only).
        equalized_share: probability that a slice is shown histogram-equalised (TensorFlow backend only).
        scanner_share: probability that a slice is shown as from another scanner, drawn on the slice itself
            or, given `scanner_sources`, on its stored slice, and cut to its lung field with `lung_crop`
            (TensorFlow backend only; `tf_resattn.data.pipeline`); `scanner_clahe` names the views' CLAHE draws
            (`tf_resattn.data.scanner_shifts.CLAHE_RANGES`).

    Returns:
        A `tf.data.Dataset` on TensorFlow, an `ArrayBatches` elsewhere; both yield
        `(images float32 [B, H, W, C], masks int32 [B, H, W])`.
    """
    if keras.backend.backend() == "tensorflow":
        from tf_resattn.data.pipeline import make_dataset

        return make_dataset(
            images,
            masks,
            batch_size,
            augment=augment,
            shuffle=shuffle,
            seed=seed,
            acquisition=acquisition,
            equalized_share=equalized_share,
            scanner_share=scanner_share,
            scanner_sources=scanner_sources,
            lung_crop=lung_crop,
            scanner_clahe=scanner_clahe,
        )
    if augment in PER_EPOCH_MODES or acquisition or equalized_share > 0 or scanner_share > 0:
        what = (
            f"augment={augment!r}"
            if augment in PER_EPOCH_MODES
            else "acquisition augmentation"
            if acquisition
            else "equalized_share"
            if equalized_share > 0
            else "scanner_share"
        )
        raise ValueError(
            f"{what} draws its transforms in tf.data and needs the TensorFlow backend, not "
            f"{keras.backend.backend()!r}; use augment='offline' or 'none' without acquisition, or KERAS_BACKEND=tensorflow"
        )
    return ArrayBatches(images, masks, batch_size, augment=augment, shuffle=shuffle, seed=seed)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of NumPy slice arrays, optionally shuffled anew every epoch (seeded), no TensorFlow.

    Args:
        images: float32 `[N, H, W, C]`; masks: integer `[N, H, W]`.
        batch_size: slices per batch (the last batch may be smaller).
        augment: `"none"` or `"offline"` (the paper's 6x set, built once).
        shuffle: a new permutation every epoch, drawn from `seed` and the epoch number.
        seed: seed of the shuffling.

    Example:
        batches = ArrayBatches(train.images, train.masks, 4, shuffle=True)
        model.fit(batches, epochs=10)
    """

    def __init__(self, images, masks, batch_size, *, augment="none", shuffle=False, seed=0):
        super().__init__()
        if augment not in ("none", "offline"):
            raise ValueError(f"ArrayBatches augment must be 'none' or 'offline', got {augment!r}")
        check_positive_int(batch_size, "batch_size")
        check_pairs(images, masks)
        self.images = np.asarray(images, dtype=np.float32)
        self.masks = np.asarray(masks, dtype=np.uint8)
        if augment == "offline":
            self.images, self.masks = augment_offline(self.images, self.masks)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self._epoch = 0
        self._order = self._permutation()

    def _permutation(self):
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, self._epoch]).permutation(len(self.images))

    def __len__(self):
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.images[rows], self.masks[rows].astype(np.int32)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._permutation()
