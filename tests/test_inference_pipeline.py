"""The prefetching pipeline of prediction and its batch size: same results as one step after another, in order."""

import threading

import numpy as np
import pytest

from tf_resattn.inference.memory import MAX_BATCH, auto_batch_size, free_memory, peak_memory_mb
from tf_resattn.inference.pipeline import pipelined


def test_pipelined_gives_the_sequential_results_in_order_with_the_framing_off_the_model_thread():
    threads = {"prepare": set(), "run": set(), "finish": set()}

    def prepare(batch):
        threads["prepare"].add(threading.current_thread().name)
        return np.arange(batch, batch + 3)

    def run(prepared):
        threads["run"].add(threading.current_thread().name)
        return prepared * 10

    def finish(prepared, outputs):
        threads["finish"].add(threading.current_thread().name)
        return int(outputs.sum() - prepared.sum())

    batches = list(range(0, 40, 3))
    expected = [finish(prepare(b), run(prepare(b))) for b in batches]
    for seen in threads.values():
        seen.clear()
    assert pipelined(batches, prepare, run, finish) == expected
    assert threads["run"] == {threading.main_thread().name}
    assert threading.main_thread().name not in threads["prepare"] | threads["finish"]
    assert pipelined([], prepare, run, finish) == []


@pytest.mark.parametrize("failing", ["prepare", "run", "finish"])
def test_an_error_in_any_step_is_raised(failing):
    def step(name, value):
        if name == failing:
            raise ValueError(f"{name} failed")
        return value

    with pytest.raises(ValueError, match=f"{failing} failed"):
        pipelined(
            [1, 2, 3],
            lambda b: step("prepare", b),
            lambda p: step("run", p),
            lambda p, o: step("finish", o),
        )


def test_batch_size_grows_with_free_memory_within_its_bounds():
    sizes = [auto_batch_size((128, 128), (512, 512), 4, free_bytes=2**20 * mb) for mb in (1, 64, 256, 1024, 65536)]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == MAX_BATCH
    assert auto_batch_size((128, 128), (512, 512), 4, tta=True, free_bytes=2**36) == 1  # eight views per slice
    bigger = auto_batch_size((512, 512), (512, 512), 4, free_bytes=2**29)
    assert bigger < auto_batch_size((128, 128), (512, 512), 4, free_bytes=2**29)
    assert auto_batch_size(None, (512, 512), 4, free_bytes=2**29) == bigger  # a model of any size takes the frame


def test_the_system_reports_free_and_peak_memory():
    free = free_memory()
    assert free is None or free > 0
    peak = peak_memory_mb()
    assert peak is None or 10 < peak < 2**20


def test_a_process_reports_its_own_peak_not_its_parents():
    """`ru_maxrss` carries the parent's peak through fork and exec; benchmarks start predictions from large parents."""
    import subprocess
    import sys

    from tf_resattn.inference import memory

    held = np.ones(300 * 2**20, np.uint8)  # 300 MB resident in this process
    load = f"import importlib.util as u; s = u.spec_from_file_location('m', {memory.__file__!r}); "
    child = load + "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.peak_memory_mb())"
    reported = float(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
    assert peak_memory_mb() > 300 and held.all()
    assert reported < 150  # a bare Python with NumPy
