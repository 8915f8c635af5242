"""python -m tf_resattn.kernel_check: the compiled kernels against the pure path, through the layers."""

import shlex
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from tf_resattn import kernel_check
from tf_resattn.ops import loader
from tf_resattn_process.quiet_start import NO_DRIVER_NOISE, NOISE

CI_PHASE = 'phase "compiled op check" '

LIBRARY, LIBRARY_REASON = loader.load_library()


@pytest.mark.skipif(LIBRARY is None, reason=f"compiled op library unavailable: {LIBRARY_REASON}")
def test_check_command_passes_when_library_loads(capsys):
    assert kernel_check.main() == 0
    assert "compiled op library OK" in capsys.readouterr().out


def test_check_command_fails_without_library(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(loader, "LIBRARY_PATH", tmp_path / "_lsh_sort_ops.so")
    monkeypatch.setattr(loader, "_loaded", None)
    assert kernel_check.main() == 1
    assert "compiled op library unusable: _lsh_sort_ops.so is not built" in capsys.readouterr().err


def test_ci_runs_the_check_without_tensorflow_start_up_notices():
    """The phase of `.ci/run` starts the process as the command lines do, so only the check's own lines are printed."""
    (line,) = [line for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines() if line.startswith(CI_PHASE)]
    command = shlex.split(line.removeprefix(CI_PHASE))
    assert command[0] == "python"
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == (0 if LIBRARY is not None else 1), done.stderr[-2000:]
    assert ("compiled op library OK" in done.stdout) == (LIBRARY is not None)
    noise = [line for line in done.stderr.splitlines() if any(p.search(line) for p in (*NOISE, NO_DRIVER_NOISE))]
    assert not noise, noise
