"""The command lines' set-up starts TensorFlow without its start-up notices and keeps everything else.

A fresh process's start, configured and not, is checked in `test_onednn_default.py` (its `fresh_processes`).
"""

from tf_resattn_process import quiet_start

START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796120616.933281    2555 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796120616.997958    2555 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    "I0000 00:00:1796158327.822419   22024 port.cc:153] oneDNN custom operations are on. You may see slightly different "
    "numerical results due to floating-point round-off errors from different computation orders.",
]
CUINIT = "E0000 00:00:1796120629.044190    2561 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)"
REAL = ["E0000 00:00:1796120629.1    2561 some_kernel.cc:10] a real error", "W1201 a real warning"]


def test_notices_are_dropped_and_real_lines_kept():
    text = "\n".join([*START_UP, REAL[0], CUINIT, REAL[1]])
    assert quiet_start.kept_lines(text, has_nvidia_driver=False) == REAL


def test_cuinit_failure_is_kept_where_a_driver_is_installed():
    assert quiet_start.kept_lines("\n".join([*START_UP, CUINIT]), has_nvidia_driver=True) == [CUINIT]


def test_other_backends_leave_tensorflow_alone(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert not quiet_start.keras_backend_is_tensorflow()
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert quiet_start.keras_backend_is_tensorflow()
