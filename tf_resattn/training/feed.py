"""How training slices are fed to `model.fit`: the one rule of cross-validation and tuning.

`train_fold` (`trainer.py`) and `SegmentationHyperModel.fit` (`tf_resattn.tuning.hypermodel`) both
make a `Feed` with `make_feed` and train with `fit_epochs`, so a tuning trial on outer fold `k` sees
the same batches as cross-validation's fold `k` for the same settings and replica count:

- rare classes: `cfg.oversample = (c, k)` repeats the training slices that contain class `c` so that
  each appears `k` times per epoch (before augmentation, so the copies get transforms of their own);
- augmentation (training slices only, after the split): `"offline"` builds the paper's 6x set once
  (`augment_offline`); `"online"` and `"upright"` draw a new transform per slice and epoch; `acquisition_augment`
  adds a random acquisition change per slice and epoch; `scanner_share` shows slices as another scanner would
  make them, drawn on the model input or, with `scanner_views_from="source"`, on the stored slices at their own
  size (`source_slices`) before the transforms (`tf_resattn.data.pipeline`);
- batching: the global batch is `cfg.batch_size` per replica times the replicas; the training
  slices are reshuffled every epoch, the validation slices keep their order;
- replicas: with R > 1 every global batch must split evenly over the replicas (an uneven split
  breaks `fit` under `MirroredStrategy`), so each epoch leaves out the N mod R training slices its
  shuffle puts last (other ones every epoch), and the validation slices are repeated R times (which
  leaves every validation metric unchanged);
- learning rate: `fit_epochs` sets each epoch's rate from `cfg.lr_schedule` (`tf_resattn.training.schedule`);
- seeds: every epoch has its own seed, `epoch_seed(cfg.seed, fold, epoch)`, for its shuffling, its
  random transforms and Keras' global seed; `fit` runs one epoch at a time, so a resumed fold or a
  Hyperband trial that continues from `initial_epoch` gets exactly the epochs it would have had.
"""

import dataclasses
import functools
from collections.abc import Callable

import keras
import numpy as np

from tf_resattn.data import augment_offline
from tf_resattn.data.augmentation import PER_EPOCH_MODES, offline_copies
from tf_resattn.data.batches import make_batches
from tf_resattn.training.schedule import learning_rate_at


def epoch_seed(seed, fold, epoch):
    """The seed of one epoch's shuffling and random state: a resumed run reuses it exactly."""
    return (seed * 1_000_003 + fold * 10_007 + epoch) % (2**31 - 1)


@dataclasses.dataclass(frozen=True)
class Feed:
    """The slices and settings that feed one fold (or one tuning trial) to `model.fit`.

    Attributes:
        train_images, train_masks: float32 `[N, H, W, 1]`, uint8 `[N, H, W]`: the training slices
            (the 6x set when the augmentation is offline).
        val_images, val_masks: the validation slices, never augmented.
        batch_size: the global batch (slices per step over all replicas).
        replicas: replicas of the distribution strategy.
        per_epoch_augment: `"online"` or `"upright"`, the random transform per slice and epoch, or `"none"`.
        acquisition: a random acquisition change per slice and epoch.
        equalized_share: the probability that a training slice is shown histogram-equalised, per epoch.
        scanner_share: the probability that a training slice is shown as from another scanner, per epoch.
        scanner_sources: per training slice (in `train_images`' order), `(grey, labels)` at its stored size,
            that its other-scanner views are drawn from; None: views of the model inputs.
        lung_crop: the slices' lung-crop margin (a scanner view is cut to its lung field), or None.
        scanner_clahe: the CLAHE draws of the scanner views (`scanner_shifts.CLAHE_RANGES`).
        seed, fold: what the epoch seeds are drawn from (`epoch_seed`).
        learning_rate: the learning rate of an epoch (0-based), `learning_rate_at` of the configuration.
    """

    train_images: np.ndarray
    train_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray
    batch_size: int
    replicas: int
    per_epoch_augment: str
    acquisition: bool
    equalized_share: float
    scanner_share: float
    scanner_sources: list | None
    lung_crop: float | None
    scanner_clahe: str
    seed: int
    fold: int
    learning_rate: Callable[[int], float]


def oversample_order(masks, label, times):
    """The slice indices that repeat the slices whose mask `[N, H, W]` contains `label` so that each appears
    `times` (>= 1) times: `0 .. N - 1` first, then the `times - 1` further copies."""
    holding = np.flatnonzero((np.asarray(masks) == label).reshape(len(masks), -1).any(axis=1))
    return np.concatenate([np.arange(len(masks)), np.tile(holding, times - 1)])


def source_slices(slices):
    """`(grey, labels)` of each slice of a `SliceSet` at its stored size, that training's other-scanner views are
    drawn from; None when the set keeps no stored slices (made at the training size)."""
    if slices.source_grey is None:
        return None
    return list(zip(slices.source_grey, slices.source_masks))


def make_feed(cfg, train, validation, replicas, fold, scanner_sources=None):
    """The `Feed` of one fold; builds the offline 6x set from the training slices when `cfg.augment` asks.

    Args:
        cfg: the `TrainingConfig` (oversample, augment, acquisition_augment, equalized_share, batch_size, seed,
            learning-rate schedule).
        train: `(images float32 [N, H, W, 1], masks [N, H, W])`, the training slices.
        validation: the same for the validation slices.
        replicas: replicas of the distribution strategy (`strategy.num_replicas_in_sync`).
        fold: the outer fold number (seeds the epochs).
        scanner_sources: per training slice, `(grey [H_i, W_i] 8-bit, labels [H_i, W_i])` at its stored size
            (`source_slices(train_set)`), what `cfg.scanner_views_from = "source"` draws other-scanner views
            from; None: slices made at the training size, which are their own stored slices.
    """
    train_images, train_masks = train
    sources = None
    if cfg.scanner_share > 0 and cfg.scanner_views_from == "source":
        sources = scanner_sources or [
            (np.round(image[..., 0] * 255.0), mask) for image, mask in zip(train_images, train_masks)
        ]
    if cfg.oversample is not None:
        order = oversample_order(train_masks, *cfg.oversample)
        train_images, train_masks = np.asarray(train_images)[order], np.asarray(train_masks)[order]
        sources = None if sources is None else [sources[i] for i in order]
    if cfg.augment == "offline":
        train_images, train_masks = augment_offline(train_images, train_masks)
        sources = None if sources is None else offline_copies(sources)
    val_images, val_masks = validation
    return Feed(
        np.asarray(train_images, dtype=np.float32),
        np.asarray(train_masks, dtype=np.uint8),
        np.asarray(val_images, dtype=np.float32),
        np.asarray(val_masks, dtype=np.uint8),
        cfg.batch_size * replicas,
        replicas,
        cfg.augment if cfg.augment in PER_EPOCH_MODES else "none",
        cfg.acquisition_augment,
        cfg.equalized_share,
        cfg.scanner_share,
        sources,
        cfg.lung_crop,
        cfg.scanner_clahe,
        cfg.seed,
        fold,
        functools.partial(learning_rate_at, cfg),
    )


def training_batches(feed, epoch):
    """The training batches of `epoch`: reshuffled with the epoch's seed, cut to a multiple of the replicas.

    Returns:
        `make_batches`'s batches (a `tf.data.Dataset` on TensorFlow) of `(images float32 [B, H, W, 1], masks int32 [B, H, W])`.
    """
    batches = make_batches(
        feed.train_images,
        feed.train_masks,
        feed.batch_size,
        augment=feed.per_epoch_augment,
        shuffle=True,
        seed=epoch_seed(feed.seed, feed.fold, epoch),
        acquisition=feed.acquisition,
        equalized_share=feed.equalized_share,
        scanner_share=feed.scanner_share,
        scanner_sources=feed.scanner_sources,
        lung_crop=feed.lung_crop,
        scanner_clahe=feed.scanner_clahe,
    )
    left_out = len(feed.train_images) % feed.replicas
    if left_out:  # replicas > 1: TensorFlow batches; the epoch's last `left_out` shuffled slices wait for the next
        batches = batches.unbatch().take(len(feed.train_images) - left_out).batch(feed.batch_size)
    return batches


def validation_batches(feed):
    """The validation slices repeated once per replica, in order, in global batches (`make_batches`)."""
    repeat = feed.replicas
    return make_batches(
        np.concatenate([feed.val_images] * repeat), np.concatenate([feed.val_masks] * repeat), feed.batch_size
    )


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the run's total epochs although `fit` runs one epoch at a time."""

    def __init__(self, total_epochs):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs


def fit_epochs(model, feed, initial_epoch, epochs, callbacks=(), verbose=1):
    """Trains `model` from `initial_epoch` up to `epochs`, one `model.fit` per epoch with its own seed.

    Args:
        model: a compiled Keras model (built under the strategy's scope when there are replicas).
        feed: the `Feed`.
        initial_epoch: epochs already done (0 for a fresh start).
        epochs: the epoch to stop after.
        callbacks: Keras callbacks; they see every epoch, numbered from `initial_epoch`.
        verbose: Keras verbosity.

    Returns:
        A `keras.callbacks.History` of all the epochs trained.
    """
    history = keras.callbacks.History()
    history.epoch = []
    callbacks = [EpochProgbar(epochs), *callbacks]
    validation = validation_batches(feed)
    for epoch in range(initial_epoch, epochs):
        keras.utils.set_random_seed(epoch_seed(feed.seed, feed.fold, epoch))
        model.optimizer.learning_rate.assign(feed.learning_rate(epoch))
        step = model.fit(
            training_batches(feed, epoch),
            validation_data=validation,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
        history.epoch += step.epoch
        for name, values in step.history.items():
            history.history.setdefault(name, []).extend(values)
    history.set_model(model)
    return history
