"""Distributed search: a chief and two workers on localhost; a search under MirroredStrategy (2 CPU replicas)."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from tuning_helpers import free_port, tiny_args

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 900


def read_trials(out):
    """{trial id: (status, worker)} from keras-tuner's trial folders."""
    trials = {}
    for path in (out / "keras_tuner" / "search").glob("trial_*/trial.json"):
        worker = path.parent / "worker.txt"
        trials[path.parent.name] = (
            json.loads(path.read_text())["status"],
            worker.read_text().strip() if worker.exists() else None,
        )
    return trials


@pytest.mark.slow
def test_chief_and_two_workers_share_out_every_trial(tmp_path):
    out = tmp_path / "search"
    args = [
        sys.executable,
        str(REPO / "scripts" / "tune.py"),
        *tiny_args(tmp_path, out, "--tuner", "random", "--max-trials", "3", "--chief-timeout", "300"),
    ]
    port = str(free_port())
    processes = {}
    # Workers first: they wait for the chief, so both are ready when it starts handing out trials.
    for role in ("tuner0", "tuner1", "chief"):
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": role,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": port,
        }
        log = open(tmp_path / f"{role}.log", "w")
        processes[role] = (subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    try:
        for process, _ in processes.values():
            process.wait(timeout=TIMEOUT_S)
    finally:
        for process, log in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = {role: (tmp_path / f"{role}.log").read_text() for role in processes}
    for role, (process, _) in processes.items():
        assert process.returncode == 0, f"{role}:\n{logs[role][-3000:]}"

    trials = read_trials(out)
    assert len(trials) == 3  # none lost, none extra
    assert {status for status, _ in trials.values()} == {"COMPLETED"}
    assert {worker for _, worker in trials.values()} == {"tuner0", "tuner1"}  # each worker ran at least one
    table = (out / "trials.md").read_text()
    assert table.count("| COMPLETED |") == 3 and "| tuner0 |" in table and "| tuner1 |" in table
    assert json.loads((out / "best_hparams.json").read_text())["base_filters"] == 4
    assert "no trials left" in logs["tuner0"] and "no trials left" in logs["tuner1"]


MIRRORED = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, "tests")
    from tf_resattn.tuning.tune import tune
    from tuning_helpers import TINY_SPACE, tiny_config

    tune(tiny_config(strategy="mirrored"), sys.argv[1], variant="unet", space=TINY_SPACE, tuner="random", max_trials=1, verbose=0)
    """
)


@pytest.mark.slow
def test_search_under_mirrored_strategy_on_two_cpu_replicas(tmp_path):
    out = tmp_path / "search"
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(out)], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 replicas: global batch = batch_size x 2" in done.stdout
    assert [status for status, _ in read_trials(out).values()] == ["COMPLETED"]
    assert json.loads((out / "best_hparams.json").read_text())["batch_size"] == 4
