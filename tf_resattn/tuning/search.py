"""The search: tuner construction, the inner split, distributed roles, and the result files.

Nested inside cross-validation: the search for outer fold `k` sees only that fold's training
slices (`splits.json` "train") and tunes on its validation slices ("val", carved from the training
folds by `tf_resattn.training.folds`). The fold's test slices are never cut out of the data set here.

Search folder (`--out DIR`):

- `splits.json`: the same seeded folds as `cv_train.py` makes for the same data and settings;
- `tuning.json`: the settings of the search; a rerun must match them (else: a new folder or `--overwrite`);
- `keras_tuner/search/`: keras-tuner's own state (`oracle.json`, one `trial_NN/` per trial, with
  `worker.txt` naming the tuner that ran it); rerunning the same command resumes from it;
- `best_hparams.json`: the best trial's values, a flat dict that `cv_train.py --hparams` accepts;
- `trials.md`: the trial table, best first.

Distributed search uses keras-tuner's chief/worker mode: `KERASTUNER_TUNER_ID` ("chief" or
"tuner0", "tuner1", ...), `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`. The chief only serves
trials and writes the result files at the end; the workers train.
"""

import math
import os
import pathlib
import socket
import time

from tf_resattn import optional
from tf_resattn.training.config import ConfigError
from tf_resattn.training.files import write_json_atomic, write_text_atomic
from tf_resattn.training.trainer import MONITOR
from tf_resattn.tuning.hypermodel import tuned_values

keras_tuner = optional.require("keras_tuner", "tune")

OBJECTIVE = keras_tuner.Objective(MONITOR, direction="max")
"""Validation mean foreground Dice on the inner validation split, maximised; a trial scores its best epoch."""

PROJECT = "search"


def _recording(tuner_class):
    """`tuner_class` that writes the id of the tuner running a trial to `trial_NN/worker.txt`."""

    class Recording(tuner_class):
        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            write_text_atomic(pathlib.Path(self.get_trial_dir(trial.trial_id)) / "worker.txt", self.tuner_id + "\n")

    Recording.__name__ = tuner_class.__name__
    return Recording


TUNERS = {
    "hyperband": _recording(keras_tuner.Hyperband),
    "bayesian": _recording(keras_tuner.BayesianOptimization),
    "random": _recording(keras_tuner.RandomSearch),
}
"""Tuner names for `--tuner`; Hyperband is the default."""


def distributed_role():
    """`"chief"`, `"worker"` or None (one process), from the `KERASTUNER_*` environment variables.

    Raises:
        ConfigError: `KERASTUNER_ORACLE_IP` is set without a port or a tuner id.
    """
    ip = os.environ.get("KERASTUNER_ORACLE_IP")
    if not ip:
        return None
    missing = [k for k in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} not; set all three for a distributed search, or none"
        )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def wait_for_chief(timeout_s):
    """Waits until the chief's port accepts connections (it may still be starting).

    Raises:
        ConfigError: the chief did not answer within `timeout_s` seconds.
    """
    ip, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((ip, int(port)), timeout=max(0.1, min(2.0, deadline - time.monotonic()))).close()
            return
        except (OSError, ValueError) as error:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"cannot reach the tuning chief at {ip}:{port} within {timeout_s:g} s ({error}); start the chief "
                    "first (KERASTUNER_TUNER_ID=chief), check KERASTUNER_ORACLE_IP/PORT, or raise --chief-timeout"
                ) from None
        time.sleep(0.5)


def make_tuner(kind, hypermodel, out, *, epochs, max_trials, factor, seed, overwrite, strategy=None):
    """The keras-tuner tuner `kind` over `hypermodel`, keeping its state in `out/keras_tuner/search`.

    Args:
        kind: a key of `TUNERS`.
        hypermodel: the `SegmentationHyperModel`.
        out: the search folder (`pathlib.Path`).
        epochs: epochs per trial (Hyperband: the most epochs a trial gets).
        max_trials: trials of random search and Bayesian optimisation (Hyperband derives its own).
        factor: Hyperband's reduction factor.
        seed: the tuner's random seed.
        overwrite: start afresh instead of resuming.
        strategy: a `tf.distribute.Strategy` with several replicas, or None.
    """
    common = dict(
        objective=OBJECTIVE,
        seed=seed,
        directory=str(out / "keras_tuner"),
        project_name=PROJECT,
        overwrite=overwrite,
        distribution_strategy=strategy,
    )
    if kind == "hyperband":
        return TUNERS[kind](hypermodel, max_epochs=epochs, factor=factor, **common)
    return TUNERS[kind](hypermodel, max_trials=max_trials, **common)


def inner_split(slices, split):
    """`((train images, masks), (val images, masks))` of one outer fold; its test slices are left out.

    Args:
        slices: the whole `SliceSet`.
        split: one fold of `splits.json` (only "train" and "val" are read).
    """
    train, val = slices.subset(split["train"]), slices.subset(split["val"])
    return (train.images, train.masks), (val.images, val.masks)


def run_search(tuner, slices, split, epochs, verbose=1):
    """Runs (or resumes) the search on the inner split of `split`; returns when no trial is left."""
    (images, masks), validation = inner_split(slices, split)
    tuner.search(images, masks, validation_data=validation, epochs=epochs, verbose=verbose)


def trial_rows(tuner, space, out, epochs):
    """One dict per trial (trial, status, score, epochs trained, worker, tuned values), best first."""
    rows = []
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        worker = pathlib.Path(out, "keras_tuner", PROJECT, f"trial_{trial.trial_id}", "worker.txt")
        rows.append(
            {
                "trial": trial.trial_id,
                "status": trial.status,
                MONITOR: trial.score,
                "epochs": values.get("tuner/epochs", epochs),
                "worker": worker.read_text().strip() if worker.exists() else "",
                **tuned_values(values, space),
            }
        )
    return sorted(rows, key=lambda r: (r[MONITOR] is None or math.isnan(r[MONITOR]), -(r[MONITOR] or 0.0), r["trial"]))


def trials_markdown(rows, space, title):
    """The trial table as markdown: rank, trial, score, epochs, worker, then one column per hyperparameter."""
    columns = ["trial", MONITOR, "epochs", "status", "worker", *space]
    lines = [f"# {title}", "", "| rank | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    for rank, row in enumerate(rows, 1):
        lines.append(f"| {rank} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}" if value else "0"
    return str(value)


def best_hparams(tuner, space):
    """The best trial's values, a flat dict for `cv_train.py --hparams`, and its trial id and score.

    Raises:
        ConfigError: no trial finished with a score.
    """
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        errors = [t.message.strip().splitlines()[-1] for t in tuner.oracle.trials.values() if t.message]
        detail = f" (last error: {errors[-1][:300]})" if errors else ""
        raise ConfigError(f"no trial finished with a score{detail}; see keras_tuner/search/trial_*/trial.json")
    return tuned_values(best[0].hyperparameters.values, space), best[0].trial_id, best[0].score


def write_results(out, tuner, space, epochs, title):
    """Writes `best_hparams.json` and `trials.md` (atomically); returns (rows, best values, best trial, score)."""
    values, trial_id, score = best_hparams(tuner, space)
    rows = trial_rows(tuner, space, out, epochs)
    write_json_atomic(out / "best_hparams.json", values)
    write_text_atomic(out / "trials.md", trials_markdown(rows, space, title))
    return rows, values, trial_id, score
