"""The benchmarks' code (`tools/benchmarks/`): fair interleaved timing, the sort/gather implementations it compares,
the latency table."""

import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT

from tf_resattn.ops import pure

sys.path.insert(0, str(REPO_ROOT))  # tools/: beside the package, outside the wheel
from tools.benchmarks import inference_latency, sort_gather, timing  # noqa: E402


def test_interleaved_medians_alternate_the_functions_and_take_medians(monkeypatch):
    clock, calls = [0.0], []

    def costing(name, seconds):
        """A function that takes `seconds[k]` of the fake clock on its k-th call."""

        def function():
            clock[0] += seconds[sum(call == name for call in calls)]
            calls.append(name)

        return function

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    functions = {"steady": costing("steady", [3.0] * 4), "uneven": costing("uneven", [50.0, 9.0, 1.0, 2.0])}
    assert timing.interleaved_medians(functions, repeats=3, warmup=1) == {"steady": 3.0, "uneven": 2.0}
    assert calls == ["steady", "uneven"] * 4  # the warm-up, then three rounds


def test_the_composite_baseline_sorts_and_gathers_as_the_pure_path():
    rng = np.random.default_rng(0)
    buckets = tf.constant(rng.integers(0, 5, size=(2, 37)), tf.int32)
    x = tf.constant(rng.standard_normal((2, 37, 3)), tf.float32)
    permutation, inverse = sort_gather.composite_bucket_sort(buckets, 5)
    expected_permutation, expected_inverse = pure.bucket_sort(buckets, 5)
    np.testing.assert_array_equal(permutation, expected_permutation)
    np.testing.assert_array_equal(inverse, expected_inverse)
    np.testing.assert_array_equal(
        sort_gather.composite_gather(x, permutation, inverse),
        pure.permute_gather(x, expected_permutation, expected_inverse),
    )


@pytest.mark.parametrize("name", ["pure", "composite"])
def test_the_timed_step_is_a_round_trip_whose_gradient_is_the_upstream_one(name):
    rng = np.random.default_rng(1)
    buckets = tf.constant(rng.integers(0, 4, size=(2, 16)), tf.int32)
    x, dy = (tf.constant(rng.standard_normal((2, 16, 3)), tf.float32) for _ in range(2))
    restored, gradient = sort_gather.sort_gather_unsort_step(*sort_gather.IMPLEMENTATIONS[name], 4)(buckets, x, dy)
    np.testing.assert_allclose(restored, x)
    np.testing.assert_allclose(gradient, dy)


def test_time_sort_gather_unsort_times_the_named_implementations():
    seconds = sort_gather.time_sort_gather_unsort(1, 32, 4, 4, repeats=1, names=("pure", "composite"))
    assert set(seconds) == {"pure", "composite"} and all(value > 0 for value in seconds.values())


def test_each_format_runs_from_its_own_file():
    export_dir, keras_path = pathlib.Path("export"), pathlib.Path("run/best.keras")
    paths = {name: inference_latency.model_path(export_dir, keras_path, name) for name in inference_latency.FORMATS}
    assert paths == {
        "keras": keras_path,
        "saved_model": export_dir / "saved_model",
        "fp32": export_dir / "model_fp32.tflite",
        "fp16": export_dir / "model_fp16.tflite",
        "int8": export_dir / "model_int8.tflite",
    }


def test_seconds_per_slice_divides_the_median_by_the_batch(monkeypatch):
    clock, calls = [0.0], []

    def predictor(batch):
        calls.append(len(batch))
        clock[0] += [4.0, 4.0, 2.0, 8.0, 6.0][len(calls) - 1]
        return np.zeros((len(batch), 2, 2, 3))

    monkeypatch.setattr(inference_latency.time, "perf_counter", lambda: clock[0])
    assert inference_latency.seconds_per_slice(predictor, np.zeros((2, 8, 8)), repeats=3, warmup=2) == 3.0
    assert calls == [2] * 5


def test_the_latency_table_has_a_row_per_format_and_dashes_for_missing_batches():
    results = {
        "baseline": {"peak_rss_mib": 512.4},
        "keras": {"batch_1_ms_per_slice": 143.26, "batch_8_ms_per_slice": 91.1, "peak_rss_mib": 923.0},
    }
    assert inference_latency.format_results(results).splitlines() == [
        "| format | batch 1: ms/slice | batch 8: ms/slice | peak RSS (MiB) |",
        "| --- | --- | --- | --- |",
        "| baseline | - | - | 512 |",
        "| keras | 143.3 | 91.1 | 923 |",
    ]
