"""`cv_train.py` end to end on the smoke preset: run folder, leakage, report, reruns, bad input."""

import json
import math

import cv2
import keras
import numpy as np
import pytest

from tf_resattn.data import augment_offline, synthetic_slices
from tf_resattn.metrics import segmentation_report
from tf_resattn.training import cli, feed
from tf_resattn.training.config import resolve_config

SMOKE = ["--preset", "smoke", "--variants", "unet", "--epochs", "2"]


def run_cli(argv):
    """`cli.main(argv)` as a command line would see it: argparse errors become status 2 too."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run (unet, 2 folds, 2 epochs), recording every array handed to the input pipeline."""
    out = tmp_path_factory.mktemp("cv") / "run"
    calls = []
    original = feed.make_batches

    def recording_make_batches(images, masks, batch_size, **kwargs):
        calls.append((np.array(images), np.array(masks), kwargs))
        return original(images, masks, batch_size, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feed, "make_batches", recording_make_batches)
        status = run_cli(SMOKE + ["--out", str(out)])
    keras.backend.clear_session()
    cfg = resolve_config("smoke", overrides={"variants": ["unet"], "epochs": 2})
    slices = synthetic_slices(n=cfg.synthetic_slices, image_size=cfg.image_size, seed=cfg.seed)
    return {"out": out, "status": status, "calls": calls, "cfg": cfg, "slices": slices}


def test_run_folder_holds_every_artifact(smoke_run):
    out = smoke_run["out"]
    assert smoke_run["status"] == 0
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
    for images, masks, kwargs in training_calls:
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
        np.testing.assert_array_equal(np.argmax(best.predict(slices.images[saved["indices"]], verbose=0), -1), saved["y_pred"])
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


def test_rerun_skips_finished_folds_and_report_only_merges(smoke_run, capsys):
    out = smoke_run["out"]
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("unet/fold_*/*")}
    assert run_cli(SMOKE + ["--out", str(out)]) == 0
    assert "finished, skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("unet/fold_*/*")} == stamps
    before = json.loads((out / "results.json").read_text())
    assert run_cli(["--report-only", "--out", str(out)]) == 0
    assert "| Mean foreground Dice" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["variants"] == before["variants"]


def test_rerun_with_other_settings_is_refused(smoke_run, capsys):
    config = (smoke_run["out"] / "config.json").read_text()
    assert run_cli(SMOKE[:-2] + ["--epochs", "3", "--out", str(smoke_run["out"])]) == 2
    assert "epochs 2 -> 3" in capsys.readouterr().err
    assert (smoke_run["out"] / "config.json").read_text() == config


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


def _write(path, text):
    path.write_text(text)
    return path


BAD_INPUTS = {
    "missing path": (lambda t: ["--data", str(t / "nowhere")], "does not exist"),
    "images without masks": (lambda t: ["--data", str(_png_folder(t / "d", masks=False))], "mask"),
    "size mismatch": (lambda t: ["--data", str(_png_folder(t / "d", mask_shape=(32, 32)))], "img_0000.png is 40x40 but its mask"),
    "label out of range": (lambda t: ["--data", str(_png_folder(t / "d", top_label=7))], "7"),
    "fewer slices than folds": (lambda t: ["--data", str(_png_folder(t / "d", n=3)), "--n-folds", "5"], "3 slices cannot make 5 folds"),
    "empty folder": (lambda t: ["--data", str((t / "d").mkdir() or t / "d")], "empty"),
    "unknown variant": (lambda t: ["--variants", "unet", "transformer"], "unknown variant 'transformer'"),
    "bad preset": (lambda t: ["--preset", "huge"], "invalid choice: 'huge'"),
    "unknown config key": (lambda t: ["--config", str(_write(t / "c.json", '{"epoch": 3}'))], "unknown setting(s) epoch"),
    "broken config": (lambda t: ["--config", str(_write(t / "c.yaml", "epochs: [1"))], "cannot parse config file"),
    "missing hparams": (lambda t: ["--hparams", str(t / "best_hparams.json")], "hparams file not found"),
    "impossible model": (lambda t: ["--attention-levels", "7"], "cannot build"),
    "report of nothing": (lambda t: ["--report-only"], "--report-only needs --out"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    make_args, fragment = BAD_INPUTS[case]
    out = tmp_path / "run"
    status = run_cli(["--preset", "smoke"] + make_args(tmp_path) + ["--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_train_all_writes_what_a_fold_writes_without_a_test_fold(smoke_run, tmp_path, capsys):
    out = tmp_path / "all"
    assert run_cli(SMOKE + ["--train-all", "--out", str(out)]) == 0
    assert "no test fold" in capsys.readouterr().out
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
    assert run_cli(SMOKE + ["--train-all", "--out", str(out)]) == 0  # a rerun finds the model finished
    assert "finished, skipped" in capsys.readouterr().out
    assert run_cli(SMOKE + ["--train-all", "--splits", str(out / "splits.json"), "--out", str(tmp_path / "b")]) == 2
    assert "give one of them" in capsys.readouterr().err
