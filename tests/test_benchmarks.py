"""The benchmarks' code (`tools/benchmarks/`): fair interleaved timing, the sort/gather implementations it compares,
the latency table, the FLOP count (against a count by hand) and the throughput table."""

import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT

from tf_resattn.ops import pure

sys.path.insert(0, str(REPO_ROOT))  # tools/: beside the package, outside the wheel
from tools.benchmarks import flops, inference_latency, sort_gather, timing, volume  # noqa: E402


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


def test_the_volume_is_written_in_hu_with_its_slices_along_the_last_axis(tmp_path):
    import nibabel

    path = volume.write_volume(tmp_path / "v.nii.gz", slices=5, size=48, distinct=2)
    data = np.asarray(nibabel.load(path).dataobj)
    assert data.shape == (48, 48, 5) and data.dtype == np.int16 and data.min() < -900 and data.max() > 0
    np.testing.assert_array_equal(data[..., 2], data[..., 0])  # `distinct` slices, repeated


def test_the_volume_table_gives_each_row_against_its_own_reference():
    results = {
        "bare model.predict": {"median_s": 10.0, "peak_memory_mb": []},
        "bare model.predict, tta": {"median_s": 60.0, "peak_memory_mb": []},
        "predict.py keras": {"median_s": 15.0, "peak_memory_mb": [1500.4, 1600.0, None]},
        "predict.py keras, tta": {"median_s": 90.0, "peak_memory_mb": [1900.0]},
    }
    assert volume.format_volume_results(results, slices=300).splitlines()[2:] == [
        "| bare model.predict | 10.0 | 30.0 | 1.00 | - |",
        "| bare model.predict, tta | 60.0 | 5.0 | 1.00 | - |",
        "| predict.py keras | 15.0 | 20.0 | 1.50 | 1600 |",
        "| predict.py keras, tta | 90.0 | 3.3 | 1.50 | 1900 |",
    ]


def test_a_failing_run_says_which_and_why():
    with pytest.raises(RuntimeError, match=r"failed \(3\):\nboom"):
        volume.timed([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])


def plain_unet_forward_flops(size, channels=1, num_classes=4, base_filters=4, depth=2):
    """FLOPs of `plain_unet`'s convolutions on one `size` x `size` image, by hand: 2*H*W*Cin*Cout*k*k each."""

    def conv(pixels, c_in, c_out, k):
        return 2 * pixels * c_in * c_out * k * k

    total, c_in, skips = 0, channels, []
    for level in range(depth + 1):  # the encoder's levels, then the bridge
        pixels, filters = (size // 2**level) ** 2, base_filters * 2**level
        total += conv(pixels, c_in, filters, 3) + conv(pixels, filters, filters, 3)
        skips.append(filters)
        c_in = filters
    for level in reversed(range(depth)):
        pixels, filters = (size // 2**level) ** 2, base_filters * 2**level
        total += conv(pixels // 4, c_in, filters, 2)  # stride 2: one 2x2 kernel per input pixel
        total += conv(pixels, filters + skips[level], filters, 3) + conv(pixels, filters, filters, 3)
        c_in = filters
    return total + conv(size * size, c_in, num_classes, 1)


TINY = {"input_shape": [32, 32, 1], "base_filters": 4, "depth": 2}
TINY_COUNTED = {"plain": {"model": "plain", **TINY}, "broken": {"model": "no_such_variant", **TINY}}
TINY_RESATTN = {"model": "resattn", **TINY, "num_heads": 1, "key_dim": 8, "bucket_size": 16, "n_hashes": 2}


@pytest.fixture(scope="module")
def tiny_counts():
    # Used by `slow` tests only: the JAX process takes about 15 s.
    """One JAX process counts a training step of the tiny models, batch 2 (about 20 s on 2 cores)."""
    if not flops.jax_installed():
        pytest.skip("JAX is not installed (pip install jax to run the FLOP-count checks)")
    return flops.count_flops(TINY_COUNTED, batch_size=2)


@pytest.mark.slow
def test_the_training_step_count_agrees_with_the_count_by_hand(tiny_counts):
    count = tiny_counts["plain"]
    assert count.error is None, count.error
    # Backward: a convolution's input gradient and its kernel gradient, each as dear as the forward pass.
    by_hand = 3 * plain_unet_forward_flops(32, base_filters=4, depth=2)
    assert 0.75 * by_hand <= count.flops_per_image <= 1.25 * by_hand, (count.flops_per_image, by_hand)


@pytest.mark.slow
def test_the_count_is_of_the_same_model_as_under_tensorflow(tiny_counts):
    expected = flops.build(**TINY_COUNTED["plain"]).count_params()
    assert tiny_counts["plain"].params == expected


@pytest.mark.slow  # a second JAX process compiles a resattn training step (about 15 s on 2 cores)
def test_the_attention_model_is_counted_as_built_under_tensorflow():
    if not flops.jax_installed():
        pytest.skip("JAX is not installed (pip install jax to run the FLOP-count checks)")
    without = {**TINY_RESATTN, "model": "no_attention"}
    counts = flops.count_flops({"resattn": TINY_RESATTN, "no_attention": without}, batch_size=2)
    count = counts["resattn"]
    assert count.error is None, count.error
    assert count.params == flops.build(**TINY_RESATTN).count_params()
    # The chunk products of the top decoder alone (1024 tokens), by hand: each query against its chunk and
    # the one before (2b keys), logits and weighted values, per round; forward and backward, 3x. Kernels
    # hidden in custom calls would leave little more than the projections.
    tokens, keys, depth = 32 * 32, 2 * TINY_RESATTN["bucket_size"], TINY_RESATTN["key_dim"]
    rounds = TINY_RESATTN["n_hashes"]
    chunk_products = 3 * rounds * 2 * (2 * tokens * keys * depth)
    assert count.flops_per_image - counts["no_attention"].flops_per_image >= chunk_products


@pytest.mark.slow
def test_a_model_that_cannot_be_counted_says_why_and_leaves_the_others(tiny_counts):
    assert tiny_counts["broken"].flops_per_image is None
    assert "no_such_variant" in tiny_counts["broken"].error
    assert list(tiny_counts) == list(TINY_COUNTED)


def test_without_jax_every_model_is_uncounted_with_the_reason(monkeypatch):
    monkeypatch.setattr(flops, "jax_installed", lambda: False)
    counts = flops.count_flops({"plain": {"model": "plain"}}, batch_size=1)
    assert counts == {"plain": flops.Count(error="JAX is not installed (pip install jax)")}


def test_the_throughput_table_splits_the_gap_into_arithmetic_and_rate():
    rows = [
        {"variant": "plain", "model": "plain", "params": 7_760_000, "images_per_s": 4.0},
        {"variant": "resattn", "model": "resattn", "params": 7_120_000, "images_per_s": 2.0},
        {"variant": "resattn (XLA)", "model": "resattn", "params": 7_120_000, "images_per_s": 1.0},
        {"variant": "unet", "model": "unet", "params": 7_760_000, "images_per_s": 5.0},
        {"variant": "no_resnext", "model": "no_resnext", "params": 8_020_000, "images_per_s": 3.0},
    ]
    counts = {
        "plain": flops.Count(10e9, 7_760_000),
        "resattn": flops.Count(15e9, 7_120_000),
        "unet": flops.Count(error="ValueError: no"),
        "no_resnext": flops.Count(12e9, 1),  # another model than the one timed
    }
    flops.with_arithmetic(rows, counts)
    assert [row["gflop_per_s"] for row in rows] == [40.0, 30.0, 15.0, None, None]
    assert rows[4]["flops_error"] == "the JAX build has 1 parameters, not 8020000"
    assert flops.format_throughput_table(rows).splitlines()[2:] == [
        "| plain | 7.76M | 4.00 | 1.00x | 10.0 | 1.00x | 40.0 | 1.00x |",
        "| resattn | 7.12M | 2.00 | 0.50x | 15.0 | 1.50x | 30.0 | 0.75x |",
        "| resattn (XLA) | 7.12M | 1.00 | 0.25x | 15.0 | 1.50x | 15.0 | 0.38x |",
        "| unet | 7.76M | 5.00 | 1.25x | n/a | n/a | n/a | n/a |",
        "| no_resnext | 8.02M | 3.00 | 0.75x | n/a | n/a | n/a | n/a |",
    ]
