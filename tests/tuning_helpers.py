"""Tiny search settings for the tuning tests (flags and a configuration): 32x32 synthetic slices, 4-filter depth-2 networks, 1 epoch."""

import json
import socket

from tf_resattn.training.config import resolve_config

TINY_SPACE = {
    "base_filters": 4,
    "depth": 2,
    "cardinality": 2,
    "bottleneck_width": 2,
    "attention_levels": "all",
    "num_heads": 1,
    "key_dim": 4,
    "bucket_size": 16,
    "n_hashes": 1,
    "weight_decay": 0.0,
    "batch_size": 4,
    "loss": {"values": ["ce", "dice", "ce_dice"]},
    "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
}
"""Everything fixed small except the loss and the learning rate (so trials differ)."""


def tiny_args(tmp_path, out, *extra, variant="unet"):
    """Command-line arguments of a tiny search into `out` (writes the space file into `tmp_path`)."""
    space = tmp_path / "tiny_space.json"
    space.write_text(json.dumps(TINY_SPACE))
    return [
        "--data",
        "synthetic",
        "--preset",
        "smoke",
        "--synthetic-slices",
        "12",
        "--image-size",
        "32",
        "--augment",
        "none",
        "--epochs",
        "1",
        "--variant",
        variant,
        "--space",
        str(space),
        "--out",
        str(out),
        "--verbose",
        "0",
        *extra,
    ]


def tiny_config(**overrides):
    """The configuration of `tiny_args`: the smoke preset on 12 synthetic 32x32 slices, no augmentation, 1 epoch."""
    return resolve_config(
        "smoke", overrides={"synthetic_slices": 12, "image_size": 32, "augment": "none", "epochs": 1, **overrides}
    )


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
