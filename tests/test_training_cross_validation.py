"""`tf_resattn.cross_validate` end to end on the smoke preset: run folder, leakage, report, reruns, bad input."""

import dataclasses
import inspect
import json
import math
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

import tf_resattn
from tf_resattn.data import DataError, augment_offline, synthetic_slices
from tf_resattn.metrics import segmentation_report
from tf_resattn.training import feed
from tf_resattn.training.config import ConfigError, resolve_config
from tf_resattn.training.cross_validation import cross_validate, report_run


def smoke(**overrides):
    """The smoke preset for unet alone, 2 epochs, with `overrides`."""
    return resolve_config("smoke", overrides={"variants": ["unet"], "epochs": 2, **overrides})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run (unet, 2 folds, 2 epochs), recording every array handed to the input pipeline."""
    out = tmp_path_factory.mktemp("cv") / "run"
    calls = []
    original = feed.make_batches

    def recording_make_batches(images, masks, batch_size, **kwargs):
        calls.append((np.array(images), np.array(masks), kwargs))
        return original(images, masks, batch_size, **kwargs)

    cfg = smoke()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feed, "make_batches", recording_make_batches)
        run = cross_validate(cfg, out)
    keras.backend.clear_session()
    slices = synthetic_slices(n=cfg.synthetic_slices, image_size=cfg.image_size, seed=cfg.seed)
    return {"out": out, "run": run, "calls": calls, "cfg": cfg, "slices": slices}


def test_cross_validate_and_tune_are_typed_and_imported_on_first_use():
    script = (
        "import sys, tf_resattn\n"
        "print([m for m in sys.modules if m.startswith(('tf_resattn.training', 'tf_resattn.tuning', 'keras_tuner'))])\n"
        "tf_resattn.tune\n"
        "print('tf_resattn.tuning.tune' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "True"]
    assert tf_resattn.cross_validate is cross_validate
    for function in (tf_resattn.cross_validate, tf_resattn.tune):
        signature = inspect.signature(function)
        assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values()), function
        assert signature.return_annotation is not inspect.Signature.empty


def test_run_folder_holds_every_artifact(smoke_run):
    out, run = smoke_run["out"], smoke_run["run"]
    assert run.out == out and run.config == smoke_run["cfg"] and run.n_slices == 12
    assert run.results == json.loads((out / "results.json").read_text())
    assert json.loads((out / "config.json").read_text()) == smoke_run["cfg"].to_dict()
    for k in range(2):
        fold = out / "unet" / f"fold_{k}"
        for name in ("best.keras", "history.csv", "metrics.json", "predictions.npz", "preprocessing.json"):
            assert (fold / name).is_file(), name
        state = json.loads((fold / "checkpoint" / "state.json").read_text())
        assert state["epoch"] == 2 and state["checkpoint"] == "epoch_0002.keras"
        assert {p.name for p in (fold / "checkpoint").glob("*.keras")} == {"epoch_0002.keras", state["best_checkpoint"]}
        assert state["best_checkpoint"] == f"best_epoch_{state['best_epoch']:04d}.keras"
        assert state["best"] == max(float(r["val_mean_fg_dice"]) for r in state["history"])
        assert json.loads((fold / "preprocessing.json").read_text())["image_size"] == [32, 32]
        assert (fold / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
    for name in ("results.json", "results.md", "learning_curves.png", "dice_per_fold.png", "overlay.png"):
        assert (out / name).is_file(), name
    markdown = (out / "results.md").read_text()
    assert "Paper-style DSC" in markdown and "Dice consolidation" in markdown
    assert "slices of one patient may lie on both sides" in markdown


def _hashes(images):
    return {np.ascontiguousarray(im, dtype=np.float32).tobytes() for im in images}


def test_no_augmented_copy_of_a_test_or_validation_slice_reaches_training(smoke_run):
    slices = smoke_run["slices"]
    splits = json.loads((smoke_run["out"] / "splits.json").read_text())
    training_calls = [c for c in smoke_run["calls"] if c[2].get("shuffle")]
    assert len(training_calls) == 2 * 2  # 2 folds x 2 epochs
    for images, _masks, kwargs in training_calls:
        assert kwargs["augment"] == "none"  # the offline set was built before, from training slices only
        seen = _hashes(images)
        owners = [k for k, f in enumerate(splits["folds"]) if _hashes(slices.images[f["train"]]) <= seen]
        assert len(owners) == 1
        fold = splits["folds"][owners[0]]
        expected, _ = augment_offline(slices.images[fold["train"]], slices.masks[fold["train"]])
        assert len(images) == 6 * len(fold["train"]) and seen == _hashes(expected)  # the 6x set is there
        for part in ("test", "val"):
            held_out, _ = augment_offline(slices.images[fold[part]], slices.masks[fold[part]])
            assert not seen & _hashes(held_out), f"an augmented {part} slice reached training"


def test_report_numbers_are_recomputed_from_saved_predictions(smoke_run):
    out, slices = smoke_run["out"], smoke_run["slices"]
    results = json.loads((out / "results.json").read_text())
    per_fold = []
    for k in range(2):
        saved = np.load(out / "unet" / f"fold_{k}" / "predictions.npz")
        np.testing.assert_array_equal(saved["y_true"], slices.masks[saved["indices"]])
        report = segmentation_report(saved["y_true"], saved["y_pred"], 4)
        _assert_same_numbers(report, results["variants"]["unet"]["folds"][str(k)])
        per_fold.append(report["mean_foreground_dice"])
        best = keras.models.load_model(out / "unet" / f"fold_{k}" / "best.keras", compile=False)
        np.testing.assert_array_equal(
            np.argmax(best.predict(slices.images[saved["indices"]], verbose=0), -1), saved["y_pred"]
        )
    summary = results["variants"]["unet"]["summary"]["mean_foreground_dice"]
    defined = [v for v in per_fold if not math.isnan(v)]
    assert summary["n"] == len(defined)
    assert summary["mean"] == pytest.approx(np.mean(defined))


def _assert_same_numbers(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _assert_same_numbers(a[key], b[key])
        else:
            assert a[key] == pytest.approx(b[key], nan_ok=True), key


def test_rerun_skips_finished_folds_and_report_run_merges(smoke_run, capsys):
    out = smoke_run["out"]
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("unet/fold_*/*")}
    assert cross_validate(smoke(), out).results["variants"] == smoke_run["run"].results["variants"]
    assert "finished, skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("unet/fold_*/*")} == stamps
    assert report_run(out)["variants"] == smoke_run["run"].results["variants"]
    with pytest.raises(ConfigError, match="is not a run folder"):
        report_run(out / "unet")


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"epochs": 3}, "epochs 2 -> 3"),
        ({"norm": "batch"}, "norm 'group' -> 'batch'"),
    ],
)
def test_rerun_with_other_settings_is_refused(smoke_run, setting, message):
    config = (smoke_run["out"] / "config.json").read_text()
    with pytest.raises(ConfigError, match=message):
        cross_validate(smoke(**setting), smoke_run["out"])
    assert (smoke_run["out"] / "config.json").read_text() == config


def test_a_run_folder_of_flat_configuration_resumes(smoke_run, tmp_path):
    """A `config.json` written before the configuration had its `model` mapping (all settings flat)."""
    out = tmp_path / "flat"
    saved = smoke_run["cfg"].to_dict()
    flat = {**{k: v for k, v in saved.items() if k != "model"}, **saved["model"]}
    del flat["norm"], flat["max_buckets"]  # the settings the flat form never had
    shutil.copytree(smoke_run["out"] / "unet", out / "unet")
    (out / "config.json").write_text(json.dumps(flat))
    (out / "splits.json").write_text((smoke_run["out"] / "splits.json").read_text())
    run = cross_validate(smoke_run["cfg"], out)
    assert run.config == smoke_run["cfg"] and run.results["variants"] == smoke_run["run"].results["variants"]
    assert json.loads((out / "config.json").read_text())["model"] == saved["model"]


def _png_folder(root, n=4, image_shape=(40, 40), mask_shape=(40, 40), top_label=3, masks=True):
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"img_{i:04d}.png"), rng.integers(0, 256, image_shape, dtype=np.uint8))
        if masks:
            mask = np.zeros(mask_shape, np.uint8)
            mask[:4, :4] = top_label
            cv2.imwrite(str(root / "masks" / f"mask_{i:04d}.png"), mask)
    return root


BAD_INPUTS = {
    "missing path": (lambda t: {"data": str(t / "nowhere")}, DataError, "does not exist"),
    "images without masks": (lambda t: {"data": str(_png_folder(t / "d", masks=False))}, DataError, "mask"),
    "size mismatch": (
        lambda t: {"data": str(_png_folder(t / "d", mask_shape=(32, 32)))},
        DataError,
        "img_0000.png is 40x40 but its mask",
    ),
    "label out of range": (lambda t: {"data": str(_png_folder(t / "d", top_label=7))}, DataError, "7"),
    "fewer slices than folds": (
        lambda t: {"data": str(_png_folder(t / "d", n=3)), "n_folds": 5},
        ConfigError,
        "3 slices cannot make 5 folds",
    ),
    "empty folder": (lambda t: {"data": str((t / "d").mkdir() or t / "d")}, DataError, "empty"),
    "impossible model": (
        lambda t: {"variants": ["resattn"], "attention_levels": "7"},
        ConfigError,
        "cannot build resattn: .*name decoder level 7",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_one_line_and_writes_nothing(case, tmp_path):
    make_overrides, error, fragment = BAD_INPUTS[case]
    out = tmp_path / "run"
    with pytest.raises(error, match=fragment) as raised:
        cross_validate(resolve_config("smoke", overrides=make_overrides(tmp_path)), out)
    assert "\n" not in str(raised.value)
    assert not out.exists()


def test_an_unvalidated_configuration_is_refused(tmp_path):
    cfg = dataclasses.replace(resolve_config("smoke"), model={**resolve_config("smoke").model, "depth": 0})
    with pytest.raises(ConfigError, match="`depth` must be a positive integer, got 0"):
        cross_validate(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_train_all_writes_what_a_fold_writes_without_a_test_fold(smoke_run, tmp_path, capsys):
    out = tmp_path / "all"
    run = cross_validate(smoke(), out, train_all=True)
    assert run.results is None and run.n_slices == len(smoke_run["slices"])
    fold, cv_fold = out / "unet" / "fold_all", smoke_run["out"] / "unet" / "fold_0"
    assert {p.name for p in fold.iterdir()} == {p.name for p in cv_fold.iterdir()} - {"predictions.npz"}
    assert (fold / "preprocessing.json").read_text() == (cv_fold / "preprocessing.json").read_text()
    splits = json.loads((out / "splits.json").read_text())
    (part,) = splits["folds"]
    assert splits["train_all"] and part["test"] == []
    assert sorted(part["train"] + part["val"]) == list(range(len(smoke_run["slices"]))) and part["val"]
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["n_test"] == 0 and "report" not in metrics
    assert metrics["n_train"] + metrics["n_val"] == len(smoke_run["slices"])
    capsys.readouterr()
    cross_validate(smoke(), out, train_all=True)  # a rerun finds the model finished
    assert "finished, skipped" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="give one of them"):
        cross_validate(smoke(), tmp_path / "b", train_all=True, splits=out / "splits.json")
