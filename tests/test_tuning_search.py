"""`tf_resattn.tune` on tiny synthetic data: nested inside the outer fold, results usable by cv_train, resumable."""

import hashlib
import json

import pytest
from tuning_helpers import TINY_SPACE, tiny_config

import tf_resattn
from tf_resattn.training.config import ConfigError, config_from_dict, resolve_config
from tf_resattn.training.cross_validation import cross_validate
from tf_resattn.training.folds import make_splits
from tf_resattn.training.run_data import load_data
from tf_resattn.tuning.hypermodel import SegmentationHyperModel
from tf_resattn.tuning.tune import tune


def tiny_search(out, **kwargs):
    """`tune` of unet over `TINY_SPACE` on `tiny_config()`, silent, with `kwargs`."""
    return tune(tiny_config(), out, variant="unet", space=TINY_SPACE, verbose=0, **kwargs)


def slice_hashes(images):
    """One SHA-1 per slice of `images` `[N, H, W, C]`."""
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


def trial_statuses(out):
    """{trial id: status} from keras-tuner's trial files."""
    return {
        p.parent.name: json.loads(p.read_text())["status"]
        for p in (out / "keras_tuner" / "search").glob("trial_*/trial.json")
    }


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
    result = tiny_search(out, fold=1)  # Hyperband (the default), one epoch: one trial
    check_only_inner_split_seen(calls, out, fold=1)
    assert list(trial_statuses(out).values()) == ["COMPLETED"]
    assert tf_resattn.tune is tune

    best = json.loads((out / "best_hparams.json").read_text())
    assert result.best_hparams == best and not result.worker and len(result.trials) == 1
    assert result.best_trial == result.trials[0]["trial"] and result.best_score == result.trials[0]["val_mean_fg_dice"]
    assert best["loss"] == calls[0]["hp"]["loss"] and best["base_filters"] == 4
    assert not any(k.startswith("tuner/") for k in best)
    # read exactly as `cv_train.py --preset cpu --hparams best_hparams.json` reads it
    cfg = resolve_config("cpu", hparams_file=str(out / "best_hparams.json"))
    assert {k: cfg.settings()[k] for k in best} == best
    assert "| COMPLETED | tuner0 | 4 | 2 |" in (out / "trials.md").read_text()

    # a search folder whose tuning.json holds the flat configuration of older versions resumes (no trial is redone)
    settings = json.loads((out / "tuning.json").read_text())
    model = settings["config"].pop("model")
    del model["norm"], model["max_buckets"]
    (out / "tuning.json").write_text(json.dumps({**settings, "config": {**settings["config"], **model}}))
    calls.clear()
    assert tiny_search(out, fold=1).best_hparams == best and calls == []


@pytest.mark.slow
def test_hyperband_brackets_then_cv_train_runs_with_the_result(tmp_path, recorded_fits):
    calls, _ = recorded_fits
    out = tmp_path / "search"
    tune(tiny_config(epochs=2), out, variant="unet", space=TINY_SPACE, verbose=0, fold=1, factor=2)
    assert len(calls) >= 3  # two brackets; one trial continues from an earlier one's weights
    splits = check_only_inner_split_seen(calls, out, fold=1)
    assert set(trial_statuses(out).values()) == {"COMPLETED"}
    best = json.loads((out / "best_hparams.json").read_text())
    cv_out = tmp_path / "cv"
    cfg = resolve_config(
        "smoke",
        hparams_file=str(out / "best_hparams.json"),
        overrides={"synthetic_slices": 12, "image_size": 32, "augment": "none", "variants": ["unet"], "figures": False},
    )
    cross_validate(cfg, cv_out, folds=[1], verbose=0)
    used = config_from_dict(json.loads((cv_out / "config.json").read_text())).settings()
    assert {k: used[k] for k in best} == best
    assert json.loads((cv_out / "splits.json").read_text()) == splits


@pytest.mark.slow  # two searches and a resumed one: about 20 s on 2 cores
def test_interrupted_search_resumes_and_overwrite_starts_afresh(tmp_path, recorded_fits):
    calls, fit = recorded_fits
    out = tmp_path / "search"
    settings = dict(tuner="bayesian", max_trials=2)
    fit.interrupt_at = 2
    with pytest.raises(KeyboardInterrupt):
        tiny_search(out, **settings)
    assert sorted(trial_statuses(out).values()) == ["COMPLETED", "RUNNING"]
    assert not (out / "best_hparams.json").exists()
    interrupted = calls[-1]["hp"]

    calls.clear()
    fit.interrupt_at = None
    assert len(tiny_search(out, **settings).trials) == 2
    assert [c["hp"] for c in calls] == [interrupted]  # the finished trial is not redone
    assert sorted(trial_statuses(out).values()) == ["COMPLETED", "COMPLETED"]
    table = (out / "trials.md").read_text()

    calls.clear()
    tiny_search(out, **settings)
    assert calls == [] and (out / "trials.md").read_text() == table

    with pytest.raises(ConfigError, match=r"other settings \(fold\)"):
        tiny_search(out, fold=1, **settings)

    calls.clear()
    fit.interrupt_at = 1  # a fresh start: the first trial of the new search is trial 0 again
    with pytest.raises(KeyboardInterrupt):
        tiny_search(out, overwrite=True, **settings)
    assert trial_statuses(out) == {"trial_0": "RUNNING"} and not (out / "trials.md").exists()
