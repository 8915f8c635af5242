"""The core install builds the model; a missing optional dependency is one line naming the extra to install."""

import subprocess
import sys

import pytest

from tf_resattn import optional

BLOCKED = ("cv2", "keras_tuner", "highdicom")

WITHOUT_EXTRAS = f"""
import contextlib, io, sys

class Blocked:
    '''Refuses {BLOCKED}, as if they were not installed.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED}:
            raise ImportError(f"No module named {{name!r}}")

sys.meta_path.insert(0, Blocked())
import numpy as np
import tf_resattn
from tf_resattn.optional import MissingExtraError

print(tf_resattn.build_model(input_shape=(32, 32, 1), base_filters=4, depth=2).output_shape)
from tf_resattn.data import preprocessing
from tf_resattn.io import dicom_seg
for call in (lambda: preprocessing.resize_image(np.zeros((4, 4), np.float32), (2, 2)),
             lambda: dicom_seg.write_dicom_seg(None, np.zeros((1, 2, 2), np.uint8), "seg.dcm"),
             lambda: __import__("tf_resattn.tuning.search")):
    try:
        call()
    except MissingExtraError as error:
        print(error)
import tf_resattn_process.commands
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    status = tf_resattn_process.commands.tune(["--help"])
print(status, stderr.getvalue(), end="")
"""


@pytest.fixture(scope="module")
def without_extras():
    """The lines a fresh process prints with cv2, keras_tuner and highdicom refused (`WITHOUT_EXTRAS`)."""
    result = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_model_builds_without_the_extras(without_extras):
    assert without_extras[0] == "(None, 32, 32, 4)"


def test_each_missing_extra_is_one_line_naming_it(without_extras):
    assert without_extras[1:4] == [
        "opencv-python-headless cannot be imported (No module named 'cv2'): pip install 'tf_resattn[io]'",
        "highdicom cannot be imported (No module named 'highdicom'): pip install 'tf_resattn[io]'",
        "keras-tuner cannot be imported (No module named 'keras_tuner'): pip install 'tf_resattn[tune]'",
    ]


def test_command_line_turns_a_missing_extra_into_one_error_line(without_extras):
    assert without_extras[4:] == [
        "2 -c: error: keras-tuner cannot be imported (No module named 'keras_tuner'): pip install 'tf_resattn[tune]'"
    ]


def test_require_names_the_distribution_and_the_extra():
    expected = r"^scikit-learn cannot be imported .*: pip install 'tf_resattn\[train\]'$"
    with pytest.raises(optional.MissingExtraError, match=expected):
        optional.require("sklearn.no_such_module", "train")
    assert optional.require("json", "io").dumps([]) == "[]"


def test_stand_in_fails_on_first_use_only():
    stand_in = optional.module("no_such_module_of_tf_resattn", "io")
    with pytest.raises(optional.MissingExtraError, match=r"pip install 'tf_resattn\[io\]'"):
        stand_in.anything  # noqa: B018  (the attribute access is what fails)
    assert optional.module("json", "io").__name__ == "json"
