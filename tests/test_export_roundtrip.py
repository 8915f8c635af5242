"""Train (tiny) -> export -> SavedModel in a process without tf_resattn, and TFLite parity."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from export_helpers import exported, run_in_litert, trained_model

from tf_resattn.export.parity import TARGETS_PERCENT


@pytest.fixture
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory)


@pytest.fixture
def raw_hu_slices():
    """Raw HU slices of a size other than the training size (96x80), as a client would send them."""
    from tf_resattn.data import synthetic_hu_slices

    hu, _ = synthetic_hu_slices(n=3, image_size=(96, 80), seed=5)
    return hu


def keras_pipeline_probabilities(model_path, raw):
    """Reference: `Preprocessing.apply`, the Keras model, probabilities resized back with OpenCV."""
    import cv2
    import keras

    import tf_resattn  # noqa: F401
    from tf_resattn.data import Preprocessing

    model = keras.models.load_model(model_path, compile=False)
    prep = Preprocessing.from_config(json.loads((model_path.parent / "preprocessing.json").read_text()))
    probabilities = model.predict(np.stack([prep.apply(r) for r in raw]), verbose=0)
    size = raw.shape[1:3]
    return np.stack([cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for p in probabilities])


def test_export_writes_every_file(export_dir):
    names = {p.name for p in export_dir.iterdir()}
    assert {"saved_model", "model_fp32.tflite", "model_fp16.tflite", "model_int8.tflite", "parity.json"} <= names
    assert not list(export_dir.parent.glob(".*partial"))


def test_saved_model_runs_without_tf_resattn_and_matches_keras(export_dir, tmp_path, tmp_path_factory, raw_hu_slices):
    np.save(tmp_path / "raw.npy", raw_hu_slices)
    script = textwrap.dedent(
        f"""
        import sys, json
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(export_dir / "saved_model")!r})
        serve = loaded.signatures["serving_default"]
        raw = np.load({str(tmp_path / "raw.npy")!r})
        out = serve(images=tf.constant(raw[..., None]))
        np.save({str(tmp_path / "labels.npy")!r}, out["labels"].numpy())
        np.save({str(tmp_path / "probabilities.npy")!r}, out["probabilities"].numpy())
        kind = loaded.signatures["metadata"]()["input_kind"].numpy().decode()
        print(json.dumps({{
            "imported": "tf_resattn" in sys.modules or any(m.startswith("tf_resattn.") for m in sys.modules),
            "inputs": sorted(serve.structured_input_signature[1]),
            "outputs": sorted(serve.structured_outputs),
            "input_kind": kind,
        }}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info == {"imported": False, "inputs": ["images"], "outputs": ["labels", "probabilities"], "input_kind": "hu"}

    labels = np.load(tmp_path / "labels.npy")
    probabilities = np.load(tmp_path / "probabilities.npy")
    assert labels.shape == raw_hu_slices.shape
    reference = keras_pipeline_probabilities(trained_model(tmp_path_factory), raw_hu_slices)
    np.testing.assert_allclose(probabilities, reference, atol=1e-4)
    assert np.mean(labels == reference.argmax(-1)) >= 0.9999


def test_tflite_parity_meets_targets(export_dir):
    report = json.loads((export_dir / "parity.json").read_text())
    for quantization, target in TARGETS_PERCENT.items():
        assert report[quantization]["pixel_agreement_percent"] >= target, (quantization, report[quantization])
        assert report[quantization]["file_size_bytes"] == (export_dir / f"model_{quantization}.tflite").stat().st_size
    assert report["fp16"]["file_size_bytes"] < report["fp32"]["file_size_bytes"]
    assert report["int8"]["file_size_bytes"] < report["fp16"]["file_size_bytes"]


def test_tflite_fp32_matches_keras_in_plain_interpreter(export_dir, tmp_path_factory):
    """Independent of the package's runner: the litert interpreter (builtin ops only) against Keras."""
    import keras

    import tf_resattn  # noqa: F401
    from tf_resattn.data import synthetic_slices

    images = synthetic_slices(n=2, image_size=64, seed=9).images
    probabilities = run_in_litert(export_dir / "model_fp32.tflite", images)
    reference = keras.models.load_model(trained_model(tmp_path_factory), compile=False).predict(images, verbose=0)
    assert probabilities.shape == reference.shape
    assert np.mean(probabilities.argmax(-1) == reference.argmax(-1)) >= 0.9999


def test_tflite_files_run_slice_by_slice_for_the_runner_and_a_plain_interpreter_alike(export_dir):
    """The runner's `slice` signature (static shapes) and the batch-free loop a plain interpreter runs agree."""
    from tf_resattn.data import synthetic_slices
    from tf_resattn.inference.tflite_runner import TFLiteRunner

    images = synthetic_slices(n=3, image_size=64, seed=9).images
    for quantization in TARGETS_PERCENT:
        path = export_dir / f"model_{quantization}.tflite"
        runner = TFLiteRunner(path)
        assert runner._slice is not None, quantization
        np.testing.assert_array_equal(runner(images), run_in_litert(path, images))


def test_missed_targets_are_the_tflite_files_below_their_target(tmp_path):
    from tf_resattn.export import ExportedFiles

    parity = {quantization: {"meets_target": quantization != "fp16"} for quantization in TARGETS_PERCENT}
    assert ExportedFiles(tmp_path, tmp_path / "saved_model", {}, parity).missed_targets == ["fp16"]
    parity["fp16"]["meets_target"] = True
    assert ExportedFiles(tmp_path, tmp_path / "saved_model", {}, parity).missed_targets == []


def test_export_cli_refuses_existing_output(export_dir, tmp_path_factory, capsys):
    from tf_resattn.export.export_cli import main

    assert main([str(trained_model(tmp_path_factory)), "--out", str(export_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--overwrite" in error


def test_export_cli_reports_missing_model(tmp_path, capsys):
    from tf_resattn.export.export_cli import main

    assert main([str(tmp_path / "absent.keras"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*partial"))
