"""`SegmentationHyperModel`: a `keras_tuner.HyperModel` over the network and its training choices.

`build(hp)` declares the space (`tf_resattn.tuning.space`), turns the sampled values into a
`TrainingConfig` and builds + compiles the model exactly as cross-validation does
(`tf_resattn.training.trainer.build_compiled_model`). `fit(hp, model, ...)` feeds and trains it
exactly as cross-validation trains that fold (`tf_resattn.training.feed`: augmentation, the sampled
batch size per replica, seeds per epoch); the tuner reads `val_mean_fg_dice` from the logs.
"""

import numpy as np

from tf_resattn import optional
from tf_resattn.training.config import config_from_dict
from tf_resattn.training.feed import fit_epochs, make_feed
from tf_resattn.training.trainer import build_compiled_model

keras_tuner = optional.require("keras_tuner", "tune")


def declare(space, hp):
    """Declares every entry of `space` on the `keras_tuner.HyperParameters` `hp`; returns the values.

    Choices become `hp.Choice`, ranges `hp.Float` / `hp.Int`, bare values `hp.Fixed`.
    """
    values = {}
    for name, entry in space.items():
        if not isinstance(entry, dict):
            values[name] = hp.Fixed(name, entry)
        elif "values" in entry:
            choices = entry["values"]
            if any(isinstance(v, float) for v in choices):
                choices = [float(v) for v in choices]
            values[name] = hp.Choice(name, choices, ordered=not isinstance(choices[0], str))
        elif any(isinstance(entry[k], float) for k in ("min", "max")):
            values[name] = hp.Float(
                name, float(entry["min"]), float(entry["max"]), sampling=entry.get("sampling", "linear")
            )
        else:
            values[name] = hp.Int(
                name, entry["min"], entry["max"], step=entry.get("step"), sampling=entry.get("sampling", "linear")
            )
    return values


def config_for(base_cfg, values):
    """`base_cfg` with the tuned `values` ({hparams key: value}) applied, as a `TrainingConfig`."""
    return config_from_dict(base_cfg.to_dict() | values)


class SegmentationHyperModel(keras_tuner.HyperModel):
    """Builds, compiles and fits one variant for each sampled point of a search space.

    Args:
        space: a validated space dict (`tf_resattn.tuning.space.load_space`).
        base_cfg: the `TrainingConfig` the sampled values override (data, classes, seed, augment...).
        variant: a name from `tf_resattn.VARIANTS`.
        image_shape: `(H, W, C)` of the training images.
        fold: the outer fold tuned on (seeds the epochs as cross-validation's fold does).
        replicas: replicas of the tuner's distribution strategy; the global batch is the sampled
            `batch_size` times this.
        scanner_sources: per training slice that `fit` receives, `(grey, labels)` at its stored size
            (`tf_resattn.training.feed.source_slices`), that other-scanner views are drawn from, as
            cross-validation draws them; None: from the training slices themselves.

    Example:
        hypermodel = SegmentationHyperModel(load_space(None), cfg, "resattn", (64, 64, 1), fold=0)
        tuner = keras_tuner.RandomSearch(hypermodel, objective=..., max_trials=3)
        tuner.search(train_images, train_masks, validation_data=(val_images, val_masks), epochs=2)
    """

    def __init__(self, space, base_cfg, variant, image_shape, fold, replicas=1, scanner_sources=None):
        super().__init__(name=f"{variant}_hypermodel")
        self.space = space
        self.base_cfg = base_cfg
        self.variant = variant
        self.image_shape = tuple(image_shape)
        self.fold = fold
        self.replicas = replicas
        self.scanner_sources = scanner_sources

    def build(self, hp):
        """The compiled model for the values `hp` samples (the space is declared on first use)."""
        cfg = config_for(self.base_cfg, declare(self.space, hp))
        return build_compiled_model(cfg, self.variant, self.image_shape)

    def fit(self, hp, model, images, masks, validation_data, epochs=1, initial_epoch=0, callbacks=(), verbose=1):
        """Trains on `images` float32 `[N, H, W, 1]` / `masks` `[N, H, W]`, validates on `validation_data`.

        Args:
            hp: the trial's hyperparameters (`batch_size` and `augment` come from them or the base config).
            model: the model `build` returned.
            images, masks: the training slices (offline augmentation, when configured, happens here).
            validation_data: `(images, masks)` of the inner validation split (never augmented).
            epochs: the epoch to stop after.
            initial_epoch: epochs already trained (Hyperband continues a trial from an earlier one).
            callbacks: the tuner's Keras callbacks.
            verbose: Keras verbosity.

        Returns:
            The `History` of the epochs trained.
        """
        cfg = config_for(self.base_cfg, tuned_values(hp.values, self.space))
        feed = make_feed(cfg, (images, masks), validation_data, self.replicas, self.fold, self.scanner_sources)
        return fit_epochs(model, feed, initial_epoch, epochs, callbacks=callbacks, verbose=verbose)


def tuned_values(hp_values, space):
    """The values of a trial that belong to the space (drops the tuner's own `tuner/...` entries)."""
    return {name: _plain(hp_values[name]) for name in space if name in hp_values}


def _plain(value):
    """NumPy scalars -> Python numbers (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value
