"""The one feeding rule: cross-validation's trainer and the tuning hypermodel hand `fit` the same batches."""

import dataclasses
import json
import pathlib
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tf_resattn.training.config import resolve_config
from tf_resattn.training.feed import epoch_seed, make_feed, oversample_order, training_batches, validation_batches
from tf_resattn.training.schedule import learning_rate_at

REPO = pathlib.Path(__file__).resolve().parents[1]
EPOCHS = 2
FOLD = 1
SETTINGS = {
    "synthetic_slices": 18,
    "batch_size": 2,
    "augment": "online",
    "acquisition_augment": True,
    "epochs": EPOCHS,
    "loss": "ce",
    "variants": ["unet"],
    "lr_schedule": "cosine",
}
"""Smoke data whose training fold (7 slices) leaves a last batch of 1 (one replica), and one slice out with two replicas."""

SCRIPT = textwrap.dedent(
    """
    import json
    import pickle
    import sys

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_tuner

    from tf_resattn.training import trainer
    from tf_resattn.training.config import resolve_config
    from tf_resattn.training.folds import make_splits
    from tf_resattn.training.run_data import load_data
    from tf_resattn.training.strategy import choose_strategy
    from tf_resattn.tuning.hypermodel import SegmentationHyperModel
    from tf_resattn.tuning.search import inner_split

    out, settings, fold = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    recorded = []
    original_fit = keras.Model.fit

    def arrays(dataset):
        return [(images.numpy(), masks.numpy()) for images, masks in dataset]

    def recording_fit(self, x, validation_data=None, **kwargs):
        recorded.append({"train": arrays(x), "val": arrays(validation_data), "epochs": (kwargs["initial_epoch"], kwargs["epochs"]),
                         "learning_rate": float(self.optimizer.learning_rate.numpy())})
        return original_fit(self, x, validation_data=validation_data, **kwargs)

    keras.Model.fit = recording_fit
    cfg = resolve_config("smoke", overrides=settings)
    slices = load_data(cfg)
    split = make_splits(slices.names, cfg.n_folds, val_fraction=cfg.val_fraction, seed=cfg.seed)["folds"][fold]
    results = {"split": split}
    for replicas, name in ((1, "default"), (2, "mirrored")):
        strategy = choose_strategy(name)
        assert strategy.num_replicas_in_sync == replicas
        recorded.clear()
        trainer.train_fold(cfg, slices, split, "unet", fold, f"{out}/cv_{replicas}", strategy, verbose=0)
        results[("trainer", replicas)] = list(recorded)

        recorded.clear()
        hypermodel = SegmentationHyperModel({"batch_size": cfg.batch_size}, cfg, "unet", slices.images.shape[1:], fold, replicas)
        hp = keras_tuner.HyperParameters()
        with strategy.scope():
            model = hypermodel.build(hp)
        (images, masks), validation = inner_split(slices, split)
        hypermodel.fit(hp, model, images, masks, validation_data=validation, epochs=cfg.epochs, verbose=0)
        results[("hypermodel", replicas)] = list(recorded)
    with open(f"{out}/batches.pkl", "wb") as f:
        pickle.dump(results, f)
    """
)


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """What `fit` got, per epoch, from the trainer and the hypermodel with one and with two replicas."""
    out = tmp_path_factory.mktemp("feed")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), json.dumps(SETTINGS), str(FOLD)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "batches.pkl", "rb") as f:
        return pickle.load(f)


def expected_batch_sizes(n, global_batch, replicas):
    """Whole global batches of the slices cut to a multiple of the replicas, then the rest (`feed.training_batches`)."""
    n -= n % replicas
    rest = n % global_batch
    return [global_batch] * (n // global_batch) + ([rest] if rest else [])


SLOW_FEED = (
    pytest.mark.slow
)  # the recording trains four times in a fresh process with two logical CPU devices (about 60 s)


@SLOW_FEED
@pytest.mark.parametrize("replicas", [1, 2])
def test_trainer_and_hypermodel_fit_the_same_batches(fed, replicas):
    trainer_fits, tuning_fits = fed[("trainer", replicas)], fed[("hypermodel", replicas)]
    assert (
        [f["epochs"] for f in trainer_fits] == [f["epochs"] for f in tuning_fits] == [(e, e + 1) for e in range(EPOCHS)]
    )
    global_batch = SETTINGS["batch_size"] * replicas
    n_train = len(fed["split"]["train"])
    for ours, theirs in zip(trainer_fits, tuning_fits):
        for part in ("train", "val"):
            assert [b[0].shape[0] for b in ours[part]] == [b[0].shape[0] for b in theirs[part]]
            for (images, masks), (other_images, other_masks) in zip(ours[part], theirs[part]):
                np.testing.assert_array_equal(images, other_images)
                np.testing.assert_array_equal(masks, other_masks)
        assert [len(b[0]) for b in ours["train"]] == expected_batch_sizes(n_train, global_batch, replicas)
        assert sum(len(b[0]) for b in ours["val"]) == replicas * len(fed["split"]["val"])
    first, second = (np.concatenate([b[0] for b in f["train"]]) for f in trainer_fits)
    assert not np.array_equal(first, second)  # each epoch its own shuffle and transforms


@SLOW_FEED
@pytest.mark.parametrize("source", ["trainer", "hypermodel"])
def test_every_epoch_trains_at_its_scheduled_rate(fed, source):
    cfg = resolve_config("smoke", overrides=SETTINGS)
    expected = [learning_rate_at(cfg, epoch) for epoch in range(EPOCHS)]
    assert expected[1] < expected[0]  # the cosine has moved: a constant rate would fail
    for replicas in (1, 2):
        np.testing.assert_allclose([f["learning_rate"] for f in fed[(source, replicas)]], expected, rtol=1e-6)


@SLOW_FEED
def test_the_training_fold_exercises_both_last_batch_rules(fed):
    n_train = len(fed["split"]["train"])
    assert (
        n_train % 2 == 1 and n_train % 4 == 3
    )  # one replica keeps a batch of 1; two leave one slice out, keep one of 2


def test_offline_set_is_built_once_and_epoch_seeds_differ():
    cfg = resolve_config("smoke", overrides={"augment": "offline", "batch_size": 3})
    images = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    masks = np.zeros((5, 8, 8), np.uint8)
    feed = make_feed(cfg, (images, masks), (images[:2], masks[:2]), replicas=2, fold=0)
    assert len(feed.train_images) == 30 and feed.batch_size == 6
    assert [len(b[0]) for b in training_batches(feed, epoch=0)] == [6] * 5
    assert sum(len(b[0]) for b in validation_batches(feed)) == 4
    assert len({epoch_seed(cfg.seed, fold, epoch) for fold in range(3) for epoch in range(5)}) == 15


def test_oversampling_repeats_the_slices_of_a_class_with_their_masks():
    rng = np.random.default_rng(1)
    masks = np.zeros((5, 6, 6), np.uint8)
    masks[1, 0, 0] = masks[3, 2, 2] = 3
    masks[2, 1, 1] = 1
    images = rng.random((5, 6, 6, 1), dtype=np.float32)
    images[..., 0] += masks  # each image carries its mask, so a misaligned pair would show
    order = oversample_order(masks, label=3, times=4)
    out_images, out_masks = images[order], masks[order]
    assert len(out_masks) == 5 + 2 * 3
    np.testing.assert_array_equal(out_masks[:5], masks)
    np.testing.assert_array_equal(np.floor(out_images[..., 0]), out_masks)
    assert [int((out_masks == 3).any(axis=(1, 2)).sum()), int((out_masks == 1).any(axis=(1, 2)).sum())] == [8, 1]


def test_oversampling_comes_before_the_offline_set_and_leaves_validation_alone():
    cfg = resolve_config("smoke", overrides={"augment": "offline", "oversample": [2, 3]})
    images = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, :2, :2] = 2
    feed = make_feed(cfg, (images, masks), (images, masks), replicas=1, fold=0)
    assert len(feed.train_images) == 6 * (4 + 2) and len(feed.val_images) == 4


@pytest.mark.parametrize("augment", ["online", "upright", "offline", "none"])
def test_the_feed_hands_the_random_transform_mode_to_the_batches(augment, monkeypatch):
    from tf_resattn.training import feed as feed_module

    cfg = resolve_config("smoke", overrides={"augment": augment, "batch_size": 2})
    images = np.zeros((3, 8, 8, 1), np.float32)
    masks = np.zeros((3, 8, 8), np.uint8)
    seen = {}
    monkeypatch.setattr(feed_module, "make_batches", lambda *args, **kwargs: seen.update(kwargs) or [])
    training_batches(make_feed(cfg, (images, masks), (images, masks), replicas=1, fold=0), epoch=0)
    assert seen["augment"] == (augment if augment in ("online", "upright") else "none")
    assert seen["equalized_share"] == 0.0
    equalising = resolve_config("smoke", overrides={"augment": augment, "batch_size": 2, "equalized_share": "0.25"})
    training_batches(make_feed(equalising, (images, masks), (images, masks), replicas=1, fold=0), epoch=0)
    assert seen["equalized_share"] == 0.25
    assert seen["scanner_clahe"] == "narrow"
    wide = dataclasses.replace(equalising, scanner_clahe="wide")
    training_batches(make_feed(wide, (images, masks), (images, masks), replicas=1, fold=0), epoch=0)
    assert seen["scanner_clahe"] == "wide"


def test_scanner_sources_follow_the_training_slices_through_oversampling_and_the_offline_set():
    cfg = resolve_config(
        "smoke",
        overrides={"augment": "offline", "oversample": [2, 3], "scanner_share": 0.5, "scanner_views_from": "source"},
    )
    images = np.zeros((4, 8, 8, 1), np.float32)
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[1, :2, :2] = 2
    sources = [(np.full((20, 20), i, np.uint8), np.zeros((20, 20), np.uint8)) for i in range(4)]
    feed = make_feed(cfg, (images, masks), (images, masks), replicas=1, fold=0, scanner_sources=sources)
    assert len(feed.scanner_sources) == len(feed.train_images) == 6 * (4 + 2)
    order = [0, 1, 2, 3, 1, 1]  # slice 1 holds class 2: two more copies
    assert [int(grey[0, 0]) for grey, _ in feed.scanner_sources] == order * 6
    for plain_cfg in (
        dataclasses.replace(cfg, scanner_share=0.0),
        dataclasses.replace(cfg, scanner_views_from="model"),
    ):
        assert (
            make_feed(plain_cfg, (images, masks), (images, masks), 1, 0, scanner_sources=sources).scanner_sources
            is None
        )
    made_here = make_feed(cfg, (images + 0.5, masks), (images, masks), 1, 0)  # slices made at the training size
    assert [int(grey[0, 0]) for grey, _ in made_here.scanner_sources] == [128] * len(made_here.train_images)
