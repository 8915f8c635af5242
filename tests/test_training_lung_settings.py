"""The lung crop, the lung constraint and the scanner views as training settings: flags, files, checks, the saved preprocessing."""

import json

import numpy as np
import pytest

from tf_resattn.training.config import ConfigError, resolve_config


def test_margins_read_from_flags_and_files_and_none_switches_off():
    cfg = resolve_config(
        "smoke", overrides={"data": "somewhere", "lung_crop": "0.05", "lung_constraint": "none", "scanner_share": 0.5}
    )
    assert cfg.lung_crop == 0.05 and cfg.lung_constraint is None and cfg.scanner_share == 0.5
    assert json.loads(json.dumps(cfg.to_dict()))["lung_crop"] == 0.05


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data": "x", "lung_crop": 1.5}, r"lung_crop must be a margin in \[0, 1\].*got 1.5"),
        ({"data": "x", "lung_constraint": "wide"}, "lung_constraint must be a number"),
        ({"scanner_share": 2}, r"scanner_share is a probability in \[0, 1\]"),
    ],
)
def test_impossible_lung_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("smoke", overrides=overrides)


def test_a_run_saves_the_lung_settings_with_its_model(tmp_path):
    from data_helpers import write_png_set
    from test_data_thorax import chest

    from tf_resattn.training import cli

    hu, fluid, _ = chest(size=96)
    grey = np.clip((hu + 1350.0) / 1500.0 * 255.0, 0, 255).round().astype(np.uint8)
    data = write_png_set(tmp_path / "data", [grey] * 6, [fluid.astype(np.uint8) * 3] * 6)
    out = tmp_path / "run"
    status = cli.main(
        [
            "--preset",
            "smoke",
            "--data",
            str(data),
            "--variants",
            "unet",
            "--lung-crop",
            "0.05",
            "--lung-constraint",
            "0.02",
            "--scanner-share",
            "0.5",
            "--augment",
            "online",
            "--no-figures",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    saved = json.loads((out / "unet" / "fold_0" / "preprocessing.json").read_text())
    assert saved["lung_crop"] == 0.05 and saved["lung_constraint"] == 0.02


def test_synthetic_slices_are_framed_like_files():
    from tf_resattn.training.run_data import load_data

    plain = load_data(resolve_config("smoke"))
    cropped = load_data(resolve_config("smoke", overrides={"lung_crop": 0.1}))
    assert cropped.images.shape == plain.images.shape and cropped.preprocessing.lung_crop == 0.1
    assert len(cropped.regions) == len(plain) and all(r.box is not None for r in cropped.regions)
    assert [m.shape for m in cropped.source_masks] == [m.shape for m in plain.masks]
    assert not np.array_equal(cropped.images, plain.images)
