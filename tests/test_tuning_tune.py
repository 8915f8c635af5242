"""`tf_resattn.tune`'s refusals: one-line errors raised before anything is written."""

import pytest
from tuning_helpers import TINY_SPACE, free_port, tiny_config

from tf_resattn.data import DataError
from tf_resattn.training.config import ConfigError
from tf_resattn.tuning.tune import tune


def refused(tmp_path, error=ConfigError, config=None, **kwargs):
    """The one-line message of the `error` that `tune` raises for `kwargs`; checks nothing was written."""
    out = tmp_path / "search"
    with pytest.raises(error) as raised:
        tune(config or tiny_config(), out, **{"variant": "unet", "space": TINY_SPACE, "verbose": 0, **kwargs})
    assert "\n" not in str(raised.value) and not out.exists()
    return str(raised.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"tuner": "grid"}, "unknown tuner 'grid'; choose one of hyperband, bayesian, random"),
        ({"variant": "transformer"}, "unknown variant 'transformer'"),
        ({"tuner": "hyperband", "max_trials": 3}, "--max-trials is for --tuner random or bayesian"),
        ({"tuner": "random", "max_trials": 0}, "--max-trials must be >= 1"),
        ({"tuner": "random", "max_trials": True}, "--max-trials must be >= 1"),
        ({"factor": 1}, "--factor >= 2"),
        ({"space": {"depth": {"values": []}}}, "depth: empty search space"),
        ({"space": {"depth": {"values": [2, 3]}, "attention_levels": {"values": ["2"]}}}, "contradictory search space"),
        ({"space": {"learning_rate": {"min": 0.1, "max": 0.01}}}, "contradictory range"),
        ({"space": {"norm": {"values": ["group", "instance"]}}}, "norm must be one of group, batch, got 'instance'"),
        ({"fold": 5}, "--folds 5: fold numbers run from 0 to 1"),
    ],
)
def test_impossible_settings_are_refused(tmp_path, kwargs, words):
    assert words in refused(tmp_path, **kwargs)


def test_an_empty_space_file_and_missing_data_are_refused(tmp_path):
    (tmp_path / "space.json").write_text("{}")
    assert "is empty" in refused(tmp_path, space=tmp_path / "space.json")
    assert "/nonexistent/ct" in refused(tmp_path, DataError, config=tiny_config(data="/nonexistent/ct"))


def test_unreachable_chief_gives_up_after_the_timeout(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    assert f"cannot reach the tuning chief at 127.0.0.1:{port} within 1.5 s" in refused(tmp_path, chief_timeout=1.5)
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT")
    assert "KERASTUNER_ORACLE_PORT" in refused(tmp_path)


def test_splits_of_other_data_are_refused(tmp_path):
    other = tmp_path / "other_splits.json"
    other.write_text('{"n_folds": 2, "seed": 0, "grouped": false, "names": ["a", "b"], "folds": []}')
    assert "was made for other slices" in refused(tmp_path, splits=other)
    assert "--splits file not found" in refused(tmp_path, splits=tmp_path / "missing.json")
