"""Shared fixtures: the real MedSeg slices and a quiet, seeded Keras."""

import gc
import pathlib

import tf_resattn_process

tf_resattn_process.configure_process()  # first: TensorFlow starts without its start-up notices, as in the commands

import keras  # noqa: E402
import pytest  # noqa: E402

import tf_resattn  # noqa: E402, F401

# TensorFlow, Keras and the package leave a large heap of long-lived objects after import. Frozen, they are
# skipped by every later garbage collection, which would otherwise walk them again and again (seconds per test).
gc.freeze()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MEDSEG100 = REPO_ROOT.parent / "shared" / "data" / "medseg100"


@pytest.fixture
def medseg100_dir():
    """Path of the real MedSeg 100-slice set; skips the test when it is absent."""
    if not (MEDSEG100 / "images").is_dir():
        pytest.skip(f"real data set not found at {MEDSEG100} (it lives in ../shared/data/medseg100)")
    return MEDSEG100


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state and a fresh Keras session."""
    keras.utils.set_random_seed(0)
    yield
    # Without Python's full collection (`free_memory`): resetting Keras's state is what isolates tests, and a
    # full collection after each of hundreds of tests costs more than the rest of the suite.
    keras.backend.clear_session(free_memory=False)
