"""The process set-up of the command lines (`tf_resattn_process.configure_process`), and `import tf_resattn` without it.

The set-up turns on TensorFlow's oneDNN kernels on x86-64, leaves a user's choice alone, changes no result, and
starts TensorFlow without its start-up notices; a plain `import tf_resattn` changes nothing outside the package.
"""

import json
import os
import platform
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT

import tf_resattn
from tf_resattn_process import onednn, quiet_start

ON_X86_64 = platform.machine().lower() in onednn.X86_64
REPORT_ONEDNN = "from tensorflow.python.util import _pywrap_util_port as port; print(port.IsMklEnabled())"


def test_unset_setting_is_turned_on_on_x86_64():
    environ = {}
    assert onednn.enable_onednn_by_default(environ, machine="x86_64") == "1"
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}


def test_users_setting_wins():
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert onednn.enable_onednn_by_default(environ, machine="AMD64") == "0"
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}


def test_other_architectures_are_left_alone():
    environ = {}
    assert onednn.enable_onednn_by_default(environ, machine="aarch64") is None
    assert environ == {}


TENSORFLOW_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")


def _fresh_python(*arguments, onednn=None):
    """Runs `python ARGUMENTS` in a fresh process, which must succeed; `onednn` sets TF_ENABLE_ONEDNN_OPTS there
    (None: unset). TF_CPP_MIN_LOG_LEVEL is unset there (this process's set-up gave it a value). Returns the finished
    process."""
    env = {key: value for key, value in os.environ.items() if key not in TENSORFLOW_SETTINGS}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    result = subprocess.run(
        [sys.executable, *map(str, arguments)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def _run(*arguments, onednn=None):
    """The lines `python ARGUMENTS` prints in a fresh process (see `_fresh_python`)."""
    return _fresh_python(*arguments, onednn=onednn).stdout.strip().splitlines()


VARIANTS = ("unet", "no_attention")
"""Convolutions, group norm and the ResNeXt encoder; with LSH attention a rounding-level change can move a token to
another bucket (docs/performance.md), so `resattn` is compared on a trained model (the slow test below)."""

FRESH = f"""
import json, os, sys, traceback
folder, setting = sys.argv[1:]
package_writes = []
def audit(event, args):
    if event in ("os.putenv", "os.unsetenv"):
        stack = traceback.extract_stack()[:-1]
        caller = [f.filename for f in stack if not f.filename.endswith(("os.py", "os>", "abc.py", "abc>"))][-1]
        if os.sep + "tf_resattn" + os.sep in caller:
            package_writes.append(os.fsdecode(args[0]))
sys.addaudithook(audit)
if setting == "unset":
    import tf_resattn_process
    tf_resattn_process.configure_process()
import numpy as np
import tf_resattn, keras
from tf_resattn.data.pipeline import make_dataset
from tensorflow.python.util import _pywrap_util_port as port
print(port.IsMklEnabled())
settings = {{name: os.environ.get(name) for name in {TENSORFLOW_SETTINGS}}}
set_up = "tf_resattn_process" in sys.modules
print(json.dumps({{"package_writes": package_writes, "settings": settings, "set_up": set_up}}))
images = np.load(os.path.join(folder, "images.npy"))
for variant in {VARIANTS}:
    model = keras.saving.load_model(os.path.join(folder, variant + ".keras"))
    np.save(os.path.join(folder, variant + "_" + setting + ".npy"), model.predict(images, verbose=0))
rng = np.random.default_rng(0)
slices, masks = rng.random((4, 16, 16, 1), dtype=np.float32), rng.integers(0, 4, (4, 16, 16)).astype(np.uint8)
for _, labels in make_dataset(slices, masks, 2, augment="online", shuffle=True, seed=0):
    assert set(np.unique(labels.numpy())) <= {{0, 1, 2, 3}}
print("augmented")
"""


@pytest.fixture(scope="module")
def fresh_processes(tmp_path_factory):
    """Two fresh processes that import the package, load and run the models of `VARIANTS` saved here, and run the
    online augmentation: with oneDNN left unset after `configure_process()`, and with it set to 0 after a plain
    `import tf_resattn`. Each prints oneDNN's state, then the environment variables that the package's code wrote
    (an audit hook) and TensorFlow's two settings. Returns ({setting: process}, folder)."""
    folder = tmp_path_factory.mktemp("onednn")
    for variant in VARIANTS:
        tf_resattn.build_model(variant, input_shape=(32, 32, 1), base_filters=8, depth=2).save(
            folder / f"{variant}.keras"
        )
    np.save(folder / "images.npy", np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32))
    return {
        setting: _fresh_python("-c", FRESH, folder, setting, onednn=onednn)
        for setting, onednn in (("unset", None), ("0", "0"))
    }, folder


def _environment(process):
    """What the fresh process reported about its environment."""
    return json.loads(process.stdout.splitlines()[1])


@pytest.mark.skipif(not ON_X86_64, reason="oneDNN is turned on on x86-64 only")
def test_set_up_turns_onednn_on_and_users_choice_wins(fresh_processes):
    processes, _ = fresh_processes
    assert processes["unset"].stdout.splitlines()[0] == "True"
    assert processes["0"].stdout.splitlines()[0] == "False"


def test_importing_the_package_changes_nothing_outside_it(fresh_processes):
    """The package writes no environment variable (TensorFlow sets its log level itself), and TensorFlow's own
    start-up lines pass through: no one held file descriptor 2."""
    plain = fresh_processes[0]["0"]
    settings = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "1"}
    assert _environment(plain) == {"package_writes": [], "settings": settings, "set_up": False}
    if not os.path.exists("/proc/driver/nvidia"):  # without a GPU, TensorFlow always notes the missing CUDA drivers
        assert quiet_start.kept_lines(plain.stderr, has_nvidia_driver=False) != plain.stderr.splitlines()


def test_set_up_quiets_tensorflows_start_up(fresh_processes):
    """`configure_process()` sets its defaults and drops the start-up notices, keeping every other line."""
    configured = fresh_processes[0]["unset"]
    settings = {"TF_ENABLE_ONEDNN_OPTS": "1" if ON_X86_64 else None, "TF_CPP_MIN_LOG_LEVEL": "1"}
    assert _environment(configured) == {"package_writes": [], "settings": settings, "set_up": True}
    lines = configured.stderr.splitlines()
    assert quiet_start.kept_lines(configured.stderr, has_nvidia_driver=os.path.exists("/proc/driver/nvidia")) == lines


@pytest.mark.skipif(not ON_X86_64, reason="oneDNN is turned on on x86-64 only")
@pytest.mark.parametrize("variant", VARIANTS)
def test_saved_model_predicts_the_same_with_and_without_onednn(fresh_processes, variant):
    _, folder = fresh_processes
    without, with_onednn = np.load(folder / f"{variant}_0.npy"), np.load(folder / f"{variant}_unset.npy")
    assert without.shape == (4, 32, 32, 4)
    np.testing.assert_allclose(with_onednn, without, atol=1e-5, rtol=0)


@pytest.mark.skipif(not ON_X86_64, reason="oneDNN is turned on on x86-64 only")
def test_online_augmentation_runs_without_onednn_errors(fresh_processes):
    """The masks' quarter turns are float transposes: oneDNN logs an error for each integer one on most CPUs."""
    processes, _ = fresh_processes
    assert processes["unset"].stdout.strip().endswith("augmented")
    assert "oneDNN supports" not in processes["unset"].stderr


RELEASED = REPO_ROOT / "saved_models" / "resattn_medseg100" / "model.keras"
PREDICT = """
import os, sys
import numpy as np
import tf_resattn, keras
model_file, folder = sys.argv[1:]
model = keras.saving.load_model(model_file)
outputs = model.predict(np.load(os.path.join(folder, "images.npy")), verbose=0)
np.save(os.path.join(folder, "out_" + os.environ["TF_ENABLE_ONEDNN_OPTS"] + ".npy"), outputs)
"""


def _predict_both_ways(model_file, images, folder):
    """`model_file`'s predictions of `images` in two fresh processes, oneDNN off then on."""
    np.save(folder / "images.npy", images)
    script = folder / "predict.py"
    script.write_text(PREDICT + REPORT_ONEDNN + "\n")
    assert _run(script, model_file, folder, onednn="0") == ["False"]
    assert _run(script, model_file, folder, onednn="1") == ["True"]
    return np.load(folder / "out_0.npy"), np.load(folder / "out_1.npy")


@pytest.mark.slow
@pytest.mark.skipif(not ON_X86_64, reason="oneDNN is turned on on x86-64 only")
def test_released_resattn_labels_the_same_pixels_with_and_without_onednn(tmp_path, medseg100_dir):
    """Probabilities may move at the few tokens whose LSH bucket flips; the labels of all but 1e-4 of pixels hold."""
    preprocessing = json.loads(RELEASED.with_name("preprocessing.json").read_text())
    height, width = preprocessing["image_size"]
    files = sorted((medseg100_dir / "images").glob("*.png"))[::6]
    images = np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (width, height)) for f in files])
    without, with_onednn = _predict_both_ways(RELEASED, (images[..., None] / 255.0).astype(np.float32), tmp_path)
    assert without.shape == (len(files), height, width, 4)
    assert np.mean(without.argmax(-1) == with_onednn.argmax(-1)) > 1 - 1e-4
    assert np.median(np.abs(with_onednn - without)) < 1e-5
