"""MirroredStrategy on two logical CPU devices against a single-device run of the same global batch."""

import csv
import json
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tf_resattn.data import synthetic_slices
from tf_resattn.training.config import PRESETS

REPO = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tf_resattn.training.config import resolve_config
    from tf_resattn.training.cross_validation import cross_validate

    out = sys.argv[1]
    # Plain CE at Adam's default rate: a few steps that do not amplify summation-order differences.
    common = {"variants": ["unet"], "epochs": 1, "loss": "ce", "learning_rate": 1e-3}
    for name, strategy, batch_size in (("mirrored", "mirrored", 2), ("single", "default", 4)):
        cfg = resolve_config("smoke", overrides={**common, "strategy": strategy, "batch_size": batch_size})
        cross_validate(cfg, out + "/" + name, folds=[0], verbose=2)
    """
)


@pytest.mark.slow  # two training runs in a fresh process with two logical CPU devices (about 20 s)
def test_two_replicas_match_one_device(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 replicas: global batch 4" in done.stdout

    def history(name):
        with open(tmp_path / name / "unet" / "fold_0" / "history.csv") as f:
            return list(csv.DictReader(f))

    mirrored, single = history("mirrored"), history("single")
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose([float(r[key]) for r in mirrored], [float(r[key]) for r in single], rtol=0.05)

    # Same global batch and data order; replicas sum their gradients in another order, so the two
    # trained models are close, not identical: compare their class probabilities on the test fold.
    a, b = (np.load(tmp_path / name / "unet" / "fold_0" / "predictions.npz") for name in ("mirrored", "single"))
    np.testing.assert_array_equal(a["indices"], b["indices"])
    smoke = PRESETS["smoke"]
    images = synthetic_slices(n=smoke["synthetic_slices"], image_size=smoke["image_size"], seed=0).images[a["indices"]]
    pa, pb = (
        keras.models.load_model(tmp_path / n / "unet" / "fold_0" / "best.keras", compile=False)(images).numpy()
        for n in ("mirrored", "single")
    )
    assert np.mean(np.abs(pa - pb)) < 0.04
    ra, rb = (
        json.loads((tmp_path / n / "unet" / "fold_0" / "metrics.json").read_text())["report"]
        for n in ("mirrored", "single")
    )
    assert abs(ra["pixel_accuracy"] - rb["pixel_accuracy"]) < 0.05
