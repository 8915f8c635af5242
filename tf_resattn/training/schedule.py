"""The learning rate of each epoch: constant, or cosine decay after a linear warm-up.

Set per epoch by `fit_epochs` (`feed.py`), so a resumed fold or a Hyperband trial that continues
from `initial_epoch` gets the rate it would have had, whatever the optimizer file holds.

Example:
    >>> from tf_resattn.training.config import resolve_config
    >>> cfg = resolve_config("demo", overrides={"epochs": 6, "learning_rate": 1e-3, "lr_schedule": "cosine", "warmup_epochs": 2})
    >>> [round(learning_rate_at(cfg, epoch) * 1e4, 2) for epoch in range(6)]
    [5.0, 10.0, 10.0, 8.54, 5.0, 1.46]
"""

import math


def learning_rate_at(cfg, epoch):
    """The learning rate of `epoch` (0-based) under `cfg.lr_schedule`.

    `"constant"`: `cfg.learning_rate`. `"cosine"`: epochs `0 .. W-1` (`W = cfg.warmup_epochs`) rise
    linearly to the learning rate (`lr * (epoch + 1) / W`), then epoch `W + k` of the remaining
    `E - W` takes `lr * (1 + cos(pi * k / (E - W))) / 2`, from the full rate down towards 0.
    """
    peak = cfg.learning_rate
    if cfg.lr_schedule == "constant":
        return peak
    warmup = cfg.warmup_epochs
    if epoch < warmup:
        return peak * (epoch + 1) / warmup
    progress = (epoch - warmup) / (cfg.epochs - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
