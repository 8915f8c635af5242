"""python -m tf_resattn.kernel_check: the compiled kernels against the pure path, through the layers."""

import pytest

from tf_resattn import kernel_check
from tf_resattn.ops import loader

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
