"""One variant on one fold: build, compile, fit with checkpoints, resume, evaluate on the test fold.

Fold folder (`<run>/<variant>/fold_<k>/`), in the order things are written:

- `preprocessing.json`: `Preprocessing.to_config()` of the data the model was trained on;
- `checkpoint/epoch_NNNN.keras`, `checkpoint/best_epoch_NNNN.keras` + `checkpoint/state.json`:
  the last finished epoch (model and optimizer state) and the best one so far, with the epoch
  number, best score, history and random-generator state. `state.json` is renamed into place
  after the model files it names, so it never points at a half-written or stale file; files it
  no longer names are deleted afterwards;
- `best.keras`: a copy of the epoch with the highest `val_mean_fg_dice`, made when training ends;
- `history.csv`, `logs/` (TensorBoard);
- `predictions.npz`: the test fold's `indices` (into the data set), `names`, `y_true`, `y_pred`
  (label maps `[N, H, W]` uint8, predicted by `best.keras`) and `images` (uint8 `[N, H, W]`, for figures);
- `metrics.json`: written last; its presence marks the fold as finished. It holds two reports of
  the test slices: `report_source_resolution` (the predicted probabilities resized back to each
  slice's stored size and scored against its original mask, as `predict.py` serves them: the
  headline) and `report` (at the training size, against the resized masks).

The held-out fold is only the test set. Checkpoint selection uses the fold's validation slices,
carved from the training folds (see `folds.py`). How the slices are fed to `fit` (augmentation of
the training slices only, batches, replicas, seeds per epoch) is `feed.py`'s rule.
"""

import csv
import io
import math
import pathlib
import time

import keras
import numpy as np

from tf_resattn import losses, metrics
from tf_resattn.data.framing import SliceRegion, source_probabilities
from tf_resattn.models import build_model
from tf_resattn.training.feed import fit_epochs, make_feed, source_slices
from tf_resattn.training.files import (
    copy_atomic,
    read_json,
    save_model_atomic,
    save_npz_atomic,
    write_json_atomic,
    write_text_atomic,
)

MONITOR = "val_mean_fg_dice"
"""Checkpoint selection score: mean foreground Dice on the validation slices (higher is better)."""


def make_optimizer(cfg):
    """Adam with default settings; AdamW when `cfg.weight_decay > 0`."""
    if cfg.weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate)


def build_compiled_model(cfg, variant, image_shape):
    """Builds and compiles `variant` for `image_shape` (H, W, C) as `cfg` says."""
    model = build_model(
        variant, input_shape=image_shape, num_classes=cfg.num_classes, seed=cfg.seed, **cfg.model_kwargs()
    )
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=losses.get(cfg.loss, cfg.num_classes, cfg.class_weights and list(cfg.class_weights)),
        metrics=metrics.default_metrics(cfg.num_classes),
        jit_compile=cfg.jit_compile,
    )
    return model


class FoldCheckpoint(keras.callbacks.Callback):
    """Saves best and last checkpoints, history and random state after every epoch (atomically).

    Args:
        fold_dir: the fold folder (`pathlib.Path`).
        state: the `state.json` dict to continue from, or None for a fresh start.
        on_epoch: called with the epoch's duration in seconds after everything is saved.
    """

    def __init__(self, fold_dir, state=None, on_epoch=None):
        super().__init__()
        self.fold_dir = fold_dir
        self.state = state or {"epoch": 0, "best": -math.inf, "best_epoch": 0, "history": [], "train_seconds": 0.0}
        self.on_epoch = on_epoch
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        seconds = time.monotonic() - self._started
        state = self.state
        checkpoint_dir = self.fold_dir / "checkpoint"
        checkpoint_dir.mkdir(exist_ok=True)
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        state["history"].append({"epoch": epoch + 1, **logs, "learning_rate": learning_rate, "seconds": seconds})
        state.update(
            epoch=epoch + 1,
            checkpoint=f"epoch_{epoch + 1:04d}.keras",
            train_seconds=state["train_seconds"] + seconds,
            rng=random_state(self.model),
        )
        save_model_atomic(self.model, checkpoint_dir / state["checkpoint"])
        score = logs.get(MONITOR, math.nan)
        if state["best_epoch"] == 0 or score > state["best"]:
            state.update(best=score, best_epoch=epoch + 1, best_checkpoint=f"best_epoch_{epoch + 1:04d}.keras")
            copy_atomic(checkpoint_dir / state["checkpoint"], checkpoint_dir / state["best_checkpoint"])
        write_json_atomic(checkpoint_dir / "state.json", state)
        for path in checkpoint_dir.glob("*.keras"):
            if path.name not in (state["checkpoint"], state["best_checkpoint"]):
                path.unlink()
        write_text_atomic(self.fold_dir / "history.csv", history_csv(state["history"]))
        if self.on_epoch:
            self.on_epoch(seconds)


def random_state(model):
    """The model's random-generator states (e.g. LSH hash rotations) by variable path, as lists."""
    return {v.path: np.asarray(v).tolist() for v in model.variables if "seed_generator_state" in v.path}


def restore_random_state(model, saved):
    """Inverse of `random_state`: `.keras` files do not hold seed-generator states."""
    for v in model.variables:
        if v.path in saved:
            v.assign(np.asarray(saved[v.path], dtype=v.dtype))


def history_csv(history):
    """CSV text of the per-epoch logs (one row per epoch)."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def load_state(fold_dir):
    """The fold's `checkpoint/state.json`, or None when no epoch has finished yet."""
    path = fold_dir / "checkpoint" / "state.json"
    return read_json(path) if path.exists() else None


def train_fold(cfg, slices, split, variant, fold, fold_dir, strategy, progress=None, verbose=1):
    """Trains `variant` on one fold (or resumes it) and evaluates `best.keras` on the test fold.

    Args:
        cfg: the `TrainingConfig`.
        slices: the whole data set (`SliceSet`).
        split: this fold's dict from `splits.json` ("train", "val", "test" index lists).
        variant: a name from `tf_resattn.VARIANTS`.
        fold: fold number (seeds the epochs).
        fold_dir: `pathlib.Path` of `<run>/<variant>/fold_<k>`.
        strategy: the `tf.distribute.Strategy`; how its replicas are fed is `tf_resattn.training.feed`'s rule.
        progress: a `Progress` for time estimates, or None.
        verbose: Keras verbosity (1 = progress bars).

    Returns:
        The dict written to `metrics.json` (with the `segmentation_report` under "report").
    """
    fold_dir = pathlib.Path(fold_dir)
    if (fold_dir / "metrics.json").exists():
        return read_json(fold_dir / "metrics.json")
    fold_dir.mkdir(parents=True, exist_ok=True)
    train, val = slices.subset(split["train"]), slices.subset(split["val"])
    feed = make_feed(
        cfg,
        (train.images, train.masks),
        (val.images, val.masks),
        strategy.num_replicas_in_sync,
        fold,
        scanner_sources=source_slices(train),
    )
    write_json_atomic(fold_dir / "preprocessing.json", slices.preprocessing.to_config())
    state = load_state(fold_dir)
    with strategy.scope():
        if state:
            model = keras.models.load_model(fold_dir / "checkpoint" / state["checkpoint"])
            restore_random_state(model, state.get("rng", {}))
        else:
            model = build_compiled_model(cfg, variant, slices.images.shape[1:])
    start_epoch = state["epoch"] if state else 0
    if progress and start_epoch:
        progress.fold_skipped(variant, start_epoch)
    log = (lambda seconds: print(progress.epoch_done(variant, seconds), flush=True)) if progress else None
    callbacks = [FoldCheckpoint(fold_dir, state, on_epoch=log)]
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(fold_dir / "logs"), write_graph=False))
    fit_epochs(model, feed, start_epoch, cfg.epochs, callbacks=callbacks, verbose=verbose)
    state = load_state(fold_dir)
    copy_atomic(fold_dir / "checkpoint" / state["best_checkpoint"], fold_dir / "best.keras")
    return evaluate_fold(cfg, slices, split, feed, fold_dir, variant, fold, state)


def predict_probabilities(model, images, batch_size):
    """Softmax probabilities float32 `[N, H, W, C]` for images `[N, H, W, 1]`, called eagerly in batches."""
    batches = [model(images[i : i + batch_size], training=False) for i in range(0, len(images), batch_size)]
    return np.concatenate([keras.ops.convert_to_numpy(b) for b in batches])


def source_resolution_labels(probabilities, test):
    """Label maps at each slice's stored size: probabilities `[N, H, W, C]` of the `SliceSet` `test` put back as
    prediction puts them (pasted into the lung crop or resized; the lung constraint), then the argmax."""
    regions = test.regions or [SliceRegion(mask.shape) for mask in test.source_masks]
    restored = source_probabilities(probabilities, test.preprocessing, regions)
    return [np.argmax(p, axis=-1).astype(np.uint8) for p in restored]


def training_summary(split, feed, variant, fold, state):
    """What `metrics.json` says of the training itself: variant, fold, best epoch, time, slice counts."""
    return {
        "variant": variant,
        "fold": fold,
        "best_epoch": state["best_epoch"],
        f"best_{MONITOR}": state["best"],
        "epochs": state["epoch"],
        "train_seconds": state["train_seconds"],
        "n_train": len(split["train"]),
        "n_train_after_augmentation": len(feed.train_images),
        "n_val": len(split["val"]),
        "n_test": len(split["test"]),
    }


def evaluate_fold(cfg, slices, split, feed, fold_dir, variant, fold, state):
    """Predicts the test fold with `best.keras`, saves `predictions.npz`, then `metrics.json` (last).

    A split without test slices (`--train-all`) writes `metrics.json` with the training summary only.
    """
    if not split["test"]:
        result = training_summary(split, feed, variant, fold, state)
        write_json_atomic(fold_dir / "metrics.json", result)
        return result
    test = slices.subset(split["test"])
    best = keras.models.load_model(fold_dir / "best.keras", compile=False)
    probabilities = predict_probabilities(best, test.images, feed.batch_size)
    y_pred = np.argmax(probabilities, axis=-1).astype(np.uint8)
    y_true = test.masks.astype(np.uint8)
    report = metrics.segmentation_report(y_true, y_pred, cfg.num_classes)
    if test.source_masks is None:  # slices made at the training size: that is their own resolution
        source_report = report
    else:
        source_labels = source_resolution_labels(probabilities, test)
        source_report = metrics.segmentation_report_by_slice(test.source_masks, source_labels, cfg.num_classes)
    save_npz_atomic(
        fold_dir / "predictions.npz",
        indices=np.asarray(split["test"], dtype=np.int64),
        names=np.asarray(test.names),
        y_true=y_true,
        y_pred=y_pred,
        images=np.round(test.images[..., 0] * 255).astype(np.uint8),
    )
    result = {
        **training_summary(split, feed, variant, fold, state),
        "report_source_resolution": source_report,
        "report": report,
    }
    write_json_atomic(fold_dir / "metrics.json", result)
    return result
