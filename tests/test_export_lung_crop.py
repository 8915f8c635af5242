"""One `preprocessing.json` with the lung crop and constraint: the same labels through `.keras`, SavedModel and TFLite."""

import json
import shutil

import numpy as np
import pytest
from export_helpers import IMAGE_SIZE, cached, trained_model

from tf_resattn.data import Preprocessing


@pytest.fixture
def cropped_export(tmp_path_factory, medseg100_dir):
    """The tiny trained model with a lung-crop preprocessing for 8-bit slices, exported (parity on real slices)."""
    from tf_resattn.export import export_model

    def build(folder):
        run = folder / "fold_0"
        run.mkdir()
        shutil.copy(trained_model(tmp_path_factory), run / "best.keras")
        prep = Preprocessing("uint8", image_size=IMAGE_SIZE, lung_crop=0.05, lung_constraint=0.02)
        (run / "preprocessing.json").write_text(json.dumps(prep.to_config()))
        export_model(run / "best.keras", folder / "out", parity_count=3, data_dir=medseg100_dir, log=lambda _: None)

    return cached(tmp_path_factory, "lung_crop_export", build)


def test_keras_saved_model_and_tflite_give_the_same_labels_on_real_slices(cropped_export, medseg100_dir):
    from tf_resattn.inference.predict import segment
    from tf_resattn.inference.predictors import load_predictor
    from tf_resattn.io import read_scans

    raw = np.concatenate([read_scans(medseg100_dir / "images" / f"img_{k:04d}.png")[0].slices for k in (3, 40, 77)])
    keras_labels = segment(load_predictor(cropped_export / "fold_0" / "best.keras"), raw, 8)
    saved = load_predictor(cropped_export / "out" / "saved_model")
    tflite = load_predictor(cropped_export / "out" / "model_fp32.tflite")
    assert saved.preprocessing.lung_crop == 0.05 and saved.preprocessing.lung_constraint == 0.02
    assert tflite.preprocessing.lung_crop == 0.05
    for predictor in (saved, tflite):
        agreement = np.mean(segment(predictor, raw, 8) == keras_labels)
        assert agreement >= 0.9999
    parity = json.loads((cropped_export / "out" / "parity.json").read_text())
    assert (
        parity["saved_model"]["pixel_agreement_percent"] >= 99.9 and parity["fp32"]["pixel_agreement_percent"] >= 99.9
    )
    assert "3 real slices" in parity["slices"]
