"""The learning rate per epoch: constant, or a linear warm-up then cosine decay (checked against Keras' CosineDecay)."""

import keras
import numpy as np
import pytest

from tf_resattn.training.config import resolve_config
from tf_resattn.training.schedule import learning_rate_at


def config(**overrides):
    return resolve_config("demo", overrides={"epochs": 10, "learning_rate": 2e-3, **overrides})


def test_constant_schedule_keeps_the_learning_rate():
    cfg = config()
    assert [learning_rate_at(cfg, epoch) for epoch in range(cfg.epochs)] == [2e-3] * cfg.epochs


@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_cosine_after_warmup_follows_keras_cosine_decay(warmup):
    cfg = config(lr_schedule="cosine", warmup_epochs=warmup)
    reference = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=cfg.epochs - warmup)
    ours = [learning_rate_at(cfg, epoch) for epoch in range(warmup, cfg.epochs)]
    theirs = [float(reference(step)) for step in range(cfg.epochs - warmup)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_warmup_rises_linearly_to_the_peak_and_the_rate_then_only_falls():
    cfg = config(lr_schedule="cosine", warmup_epochs=4)
    rates = [learning_rate_at(cfg, epoch) for epoch in range(cfg.epochs)]
    np.testing.assert_allclose(rates[:5], [0.5e-3, 1e-3, 1.5e-3, 2e-3, 2e-3])
    assert all(later < earlier for earlier, later in zip(rates[4:], rates[5:])) and rates[-1] > 0
