"""The package builds as pip builds it: the wheel carries the compiled op library and the released models, a failed build only warns."""

import os
import subprocess
import sys
import zipfile

import pytest
import tensorflow as tf
from conftest import REPO_ROOT

LIBRARY = "tf_resattn/ops/_lsh_sort_ops.so"
BUILD_ERROR = "tf_resattn/ops/_lsh_sort_ops.build-error.txt"


def _build_wheel(out_dir, *, isolated=True, **env):
    """Runs `pip wheel . --no-deps` into `out_dir`; returns (completed process, members of the wheel or None)."""
    command = [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-w", str(out_dir), "-q"]
    if not isolated:
        command.append("--no-build-isolation")
    # The caller's environment minus TF_RESATTN_REQUIRE_OPS (CI sets it): each test says whether a failure is fatal.
    inherited = {name: value for name, value in os.environ.items() if name != "TF_RESATTN_REQUIRE_OPS"}
    result = subprocess.run(command, capture_output=True, text=True, env={**inherited, **env}, check=False)
    wheels = list(out_dir.glob("tf_resattn-*.whl"))
    members = zipfile.ZipFile(wheels[0]).namelist() if wheels else None
    return result, members


@pytest.mark.slow
@pytest.mark.timeout(900)  # pip builds the library in an isolated environment that installs TensorFlow
def test_wheel_built_in_isolation_carries_a_loadable_library(tmp_path):
    """pip's isolated build gets TensorFlow from `[build-system] requires`; the library lands in the wheel."""
    result, members = _build_wheel(tmp_path, TF_RESATTN_REQUIRE_OPS="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert LIBRARY in members and BUILD_ERROR not in members
    # The package alone: the development tools of tools/ (GPU check, benchmarks) stay in the repository.
    assert {member.split("/")[0] for member in members if ".dist-info/" not in member} == {
        "tf_resattn",
        "tf_resattn_process",
    }
    # The released models install inside the package (tf_resattn.from_pretrained reads them there).
    assert "tf_resattn/saved_models/resattn_medseg100/model.keras" in members
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as wheel:
        wheel.extract(LIBRARY, tmp_path / "unpacked")
    # A fresh process: loading a second copy of the ops here would register their kernels twice.
    load = (
        f"import tensorflow as tf; print(tf.load_op_library({str(tmp_path / 'unpacked' / LIBRARY)!r})"
        ".tf_resattn_library_info().numpy().decode())"
    )
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    info = dict(item.split("=", 1) for item in loaded.stdout.strip().splitlines()[-1].split(";"))
    assert info["tf_version"] == tf.__version__


@pytest.mark.slow
def test_build_without_compiler_installs_and_names_the_reason(tmp_path):
    result, members = _build_wheel(tmp_path, isolated=False, CXX="no-such-compiler")
    assert result.returncode == 0, result.stderr[-2000:]
    assert LIBRARY not in members and BUILD_ERROR in members
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as wheel:
        reason = wheel.read(BUILD_ERROR).decode()
    assert "'no-such-compiler' not found" in reason and "set CXX" in reason


@pytest.mark.slow
def test_required_ops_make_a_failed_build_fatal(tmp_path):
    result, members = _build_wheel(tmp_path, isolated=False, CXX="no-such-compiler", TF_RESATTN_REQUIRE_OPS="1")
    assert result.returncode != 0 and members is None
    assert "'no-such-compiler' not found" in result.stderr + result.stdout
