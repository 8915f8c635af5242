"""What makes the TFLite files fast: one slice at a time with static shapes, both ways in (the runner's `slice`
signature and a plain interpreter's batch-free loop), the weights stored once, every core, and the same outputs."""

import pathlib
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from export_helpers import run_in_litert

import tf_resattn
from tf_resattn.export import tflite
from tf_resattn.inference import tflite_runner
from tf_resattn.inference.tflite_runner import SLICE_SIGNATURE, TFLiteRunner

sys.path.insert(0, str(REPO_ROOT))  # tools/: beside the package, outside the wheel
from tools.benchmarks import inference_latency  # noqa: E402

SIZE = 32


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny untrained `resattn` (LSH attention at 1024 tokens, two rounds), its frozen function and its files."""
    model = tf_resattn.build_model(
        "resattn",
        input_shape=(SIZE, SIZE, 1),
        base_filters=4,
        depth=2,
        cardinality=2,
        bottleneck_width=2,
        num_heads=1,
        key_dim=4,
        bucket_size=16,
        n_hashes=2,
        seed=3,
    )
    frozen = tflite.frozen_inference_function(model, (SIZE, SIZE))
    folder = tmp_path_factory.mktemp("tflite")
    files = {
        "fp32": tflite.convert(frozen, "fp32"),
        "int8": tflite.convert(frozen, "int8"),
        "batch_free": tflite.convert(frozen, "fp32", slice_loop=False),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(content)
    images = np.random.default_rng(2).uniform(0, 1, (3, SIZE, SIZE, 1)).astype(np.float32)
    return model, frozen, paths, images


def read(path):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(pathlib.Path(path).read_bytes()))


def operator_names(model, subgraph):
    from tensorflow.lite.tools import flatbuffer_utils

    return [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in model.subgraphs[subgraph].operators]


def signatures(model):
    return {s.signatureKey.decode(): s.subgraphIndex for s in model.signatureDefs}


def test_the_file_holds_a_batch_free_loop_and_a_static_slice_signature(converted):
    _, _, paths, _ = converted
    model = read(paths["fp32"])
    assert signatures(model) == {"serving_default": 0, SLICE_SIGNATURE: len(model.subgraphs) - 1}
    assert "WHILE" in operator_names(model, 0)
    slice_input = model.subgraphs[-1].tensors[model.subgraphs[-1].inputs[0]]
    static = slice_input.shapeSignature is None  # a signature is stored only where a dimension is free
    assert list(slice_input.shape if static else slice_input.shapeSignature) == [1, SIZE, SIZE, 1]
    # The free batch axis leaves shape arithmetic and no-op broadcasts that the static slice graph has folded.
    batch_free = operator_names(read(paths["batch_free"]), 0)
    slice_ops = operator_names(model, len(model.subgraphs) - 1)
    assert {"SHAPE", "BROADCAST_TO"} <= set(batch_free)
    assert not {"SHAPE", "BROADCAST_TO"} & set(slice_ops)
    assert len(slice_ops) < len(batch_free)


def test_the_hash_takes_an_arg_max_and_only_the_sorts_a_top_k(converted):
    """TOPK_V2 runs outside XNNPACK on one thread: the hash's argmax as ARG_MAX took 17 % off the bench model."""
    _, _, paths, _ = converted
    model = read(paths["fp32"])
    slice_ops = operator_names(model, len(model.subgraphs) - 1)
    hash_rounds = slice_ops.count("ARG_MAX")  # one per hash round (2) of each LSH attention layer
    assert hash_rounds >= 2
    assert slice_ops.count("TOPK_V2") == hash_rounds  # each layer's two argsorts: the permutation, its inverse


def test_the_weights_are_stored_once(converted):
    _, _, paths, _ = converted
    model, batch_free = read(paths["fp32"]), read(paths["batch_free"])

    def constant_bytes(m):
        return sum(len(b.data) for b in m.buffers if b.data is not None)

    kernel = next(b for b in batch_free.buffers if b.data is not None and len(b.data) > 1000)  # a weight
    assert sum(b.data is not None and bytes(b.data) == bytes(kernel.data) for b in model.buffers) == 1
    assert constant_bytes(model) < 1.2 * constant_bytes(batch_free)


def test_every_way_in_gives_the_keras_probabilities(converted):
    model, _, paths, images = converted
    reference = np.asarray(model(images, training=False))
    runner = TFLiteRunner(paths["fp32"])
    assert runner._slice is not None  # the runner takes the one-slice signature
    through_slices = runner(images)
    np.testing.assert_allclose(through_slices, reference, atol=1e-5)
    np.testing.assert_array_equal(run_in_litert(paths["fp32"], images), through_slices)  # the WHILE loop
    np.testing.assert_allclose(TFLiteRunner(paths["batch_free"])(images), reference, atol=1e-5)  # earlier files


def test_a_slice_comes_out_the_same_whatever_batch_it_is_in(converted):
    """Dynamic-range int8 quantizes activations per call: per slice, a slice's labels no longer depend on its batch."""
    _, _, paths, images = converted
    runner = TFLiteRunner(paths["int8"])
    alone = np.concatenate([runner(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_array_equal(runner(images), alone)
    np.testing.assert_array_equal(run_in_litert(paths["int8"], images), alone)


def test_an_empty_batch_gives_no_probabilities(converted):
    _, _, paths, _ = converted
    for name in ("fp32", "batch_free"):
        assert TFLiteRunner(paths[name])(np.zeros((0, SIZE, SIZE, 1), np.float32)).shape == (0, SIZE, SIZE, 4)


def test_the_interpreter_gets_every_core_unless_told(converted, monkeypatch):
    """`ai_edge_litert` runs one thread when `num_threads` is None; the runner asks for the cores it may use."""
    _, _, paths, _ = converted
    from ai_edge_litert import interpreter

    asked = []
    original = interpreter.Interpreter

    def recording(*args, **kwargs):
        asked.append(kwargs.get("num_threads"))
        return original(*args, **kwargs)

    monkeypatch.setattr(interpreter, "Interpreter", recording)
    monkeypatch.setattr(tflite_runner, "default_threads", lambda: 3)
    assert TFLiteRunner(paths["fp32"]).num_threads == 3
    assert TFLiteRunner(paths["fp32"], num_threads=1).num_threads == 1
    assert asked == [3, 1]


def test_default_threads_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(tflite_runner.os, "sched_getaffinity", lambda pid: {0, 5}, raising=False)
    assert tflite_runner.default_threads() == 2
    monkeypatch.delattr(tflite_runner.os, "sched_getaffinity")
    monkeypatch.setattr(tflite_runner.os, "cpu_count", lambda: None)
    assert tflite_runner.default_threads() == 1


def test_with_signatures_takes_a_single_subgraph_only(converted):
    _, _, paths, _ = converted
    loop = paths["fp32"].read_bytes()
    with pytest.raises(ValueError, match="has 4 subgraphs, not 1"):
        tflite.with_signatures(loop, loop)


def test_the_latency_entries_keep_the_median_and_the_fastest_call():
    assert inference_latency.per_slice_entries(4, [0.4, 0.2, 0.8]) == {
        "batch_4_ms_per_slice": 100.0,
        "batch_4_min_ms_per_slice": 50.0,
    }
    results = {
        "baseline": {"peak_rss_mib": 700.2},
        "fp32": {**inference_latency.per_slice_entries(1, [0.1, 0.3, 0.2]), "peak_rss_mib": 1019.0},
    }
    assert inference_latency.format_results(results, batch_sizes=(1,)).splitlines()[2:] == [
        "| baseline | - | 700 |",
        "| fp32 | 200.0 (100.0) | 1019 |",
    ]
