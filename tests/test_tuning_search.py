"""The search on tiny synthetic data: nested inside the outer fold, results usable by cv_train, resumable."""

import hashlib
import json

import pytest

from tf_resattn.training.run_data import load_data
from tf_resattn.training.cli import main as cv_main
from tf_resattn.training.config import resolve_config
from tf_resattn.training.folds import make_splits
from tf_resattn.tuning.cli import main
from tf_resattn.tuning.hypermodel import SegmentationHyperModel
from tuning_helpers import tiny_args


def slice_hashes(images):
    """One SHA-1 per slice of `images` `[N, H, W, C]`."""
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


def trial_statuses(out):
    """{trial id: status} from keras-tuner's trial files."""
    return {p.parent.name: json.loads(p.read_text())["status"] for p in (out / "keras_tuner" / "search").glob("trial_*/trial.json")}


@pytest.fixture
def recorded_fits(monkeypatch):
    """Records the arguments of every `SegmentationHyperModel.fit`; `interrupt_at` makes call N raise Ctrl-C."""
    calls = []
    original = SegmentationHyperModel.fit

    def fit(self, hp, model, images, masks, validation_data, **kwargs):
        calls.append({"hp": dict(hp.values), "train": slice_hashes(images), "val": slice_hashes(validation_data[0])})
        if len(calls) == fit.interrupt_at:
            raise KeyboardInterrupt
        return original(self, hp, model, images, masks, validation_data, **kwargs)

    fit.interrupt_at = None
    monkeypatch.setattr(SegmentationHyperModel, "fit", fit)
    return calls, fit


def check_only_inner_split_seen(calls, out, fold):
    """Every fit got exactly the fold's training and validation slices, none of its test slices."""
    cfg = resolve_config("smoke", overrides={"synthetic_slices": 12, "image_size": 32})
    slices = load_data(cfg)
    splits = json.loads((out / "splits.json").read_text())
    assert splits == make_splits(slices.names, cfg.n_folds, val_fraction=cfg.val_fraction, seed=cfg.seed)
    hashes = slice_hashes(slices.images)
    assert len(set(hashes)) == len(hashes)
    split = splits["folds"][fold]
    test = {hashes[i] for i in split["test"]}
    assert calls
    for call in calls:
        assert sorted(call["train"]) == sorted(hashes[i] for i in split["train"])
        assert sorted(call["val"]) == sorted(hashes[i] for i in split["val"])
        assert not test & (set(call["train"]) | set(call["val"]))
    return splits


def test_search_sees_only_the_inner_split_and_writes_hparams_for_cv_train(tmp_path, recorded_fits):
    calls, _ = recorded_fits
    out = tmp_path / "search"
    assert main(tiny_args(tmp_path, out, "--fold", "1")) == 0  # Hyperband (the default), one epoch: one trial
    check_only_inner_split_seen(calls, out, fold=1)
    assert list(trial_statuses(out).values()) == ["COMPLETED"]

    best = json.loads((out / "best_hparams.json").read_text())
    assert best["loss"] == calls[0]["hp"]["loss"] and best["base_filters"] == 4
    assert not any(k.startswith("tuner/") for k in best)
    # read exactly as `cv_train.py --preset cpu --hparams best_hparams.json` reads it
    cfg = resolve_config("cpu", hparams_file=str(out / "best_hparams.json"))
    assert {k: getattr(cfg, k) for k in best} == best
    assert "| COMPLETED | tuner0 | 4 | 2 |" in (out / "trials.md").read_text()


@pytest.mark.slow
def test_hyperband_brackets_then_cv_train_runs_with_the_result(tmp_path, recorded_fits):
    calls, _ = recorded_fits
    out = tmp_path / "search"
    assert main(tiny_args(tmp_path, out, "--fold", "1", "--epochs", "2", "--factor", "2")) == 0
    assert len(calls) >= 3  # two brackets; one trial continues from an earlier one's weights
    splits = check_only_inner_split_seen(calls, out, fold=1)
    assert set(trial_statuses(out).values()) == {"COMPLETED"}
    best = json.loads((out / "best_hparams.json").read_text())
    cv_out = tmp_path / "cv"
    assert cv_main(["--preset", "smoke", "--synthetic-slices", "12", "--image-size", "32", "--augment", "none",
                    "--hparams", str(out / "best_hparams.json"), "--variants", "unet", "--folds", "1",
                    "--no-figures", "--no-tensorboard", "--verbose", "0", "--out", str(cv_out)]) == 0
    used = json.loads((cv_out / "config.json").read_text())
    assert {k: used[k] for k in best} == best
    assert json.loads((cv_out / "splits.json").read_text()) == splits


def test_interrupted_search_resumes_and_overwrite_starts_afresh(tmp_path, recorded_fits, capsys):
    calls, fit = recorded_fits
    out = tmp_path / "search"
    args = tiny_args(tmp_path, out, "--tuner", "bayesian", "--max-trials", "2")
    fit.interrupt_at = 2
    assert main(args) == 130
    assert "run the same command" in capsys.readouterr().err
    assert sorted(trial_statuses(out).values()) == ["COMPLETED", "RUNNING"]
    assert not (out / "best_hparams.json").exists()
    interrupted = calls[-1]["hp"]

    calls.clear()
    fit.interrupt_at = None
    assert main(args) == 0
    assert [c["hp"] for c in calls] == [interrupted]  # the finished trial is not redone
    assert sorted(trial_statuses(out).values()) == ["COMPLETED", "COMPLETED"]
    table = (out / "trials.md").read_text()

    calls.clear()
    assert main(args) == 0
    assert calls == [] and (out / "trials.md").read_text() == table

    assert main(args + ["--fold", "1"]) == 2
    assert "other settings (fold)" in capsys.readouterr().err

    calls.clear()
    fit.interrupt_at = 1  # a fresh start: the first trial of the new search is trial 0 again
    assert main(args + ["--overwrite"]) == 130
    assert trial_statuses(out) == {"trial_0": "RUNNING"} and not (out / "trials.md").exists()
