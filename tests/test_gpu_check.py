"""`scripts/gpu_check.py` (`tools/gpu_check/`): seeded weights, the reference round trip, the harness parser, the table,
the dry run without TensorFlow.

The dry run needs JAX (it runs the check on Keras's JAX backend) and skips where it is absent.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT as REPO

from tf_resattn import build_model
from tf_resattn.data import synthetic_slices

sys.path.insert(0, str(REPO))  # tools/: beside the package, outside the wheel
from tools.gpu_check import kernels, reference, table  # noqa: E402
from tools.gpu_check.cli import parse_args, tasks  # noqa: E402
from tools.gpu_check.sizes import dry_run_sizes, paper_sizes  # noqa: E402
from tools.gpu_check.weights import assign_seeded_weights, weight_checksums  # noqa: E402

NO_JAX = importlib.util.find_spec("jax") is None
BLOCK_TENSORFLOW = '''
import sys

class _NoTensorFlow:
    """Makes `import tensorflow` fail in this process, as in an environment without it."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is blocked in this test")

sys.meta_path.insert(0, _NoTensorFlow())
'''


def _tiny_model():
    return build_model(input_shape=(24, 24, 1), **dry_run_sizes().model)


def test_seeded_weights_are_reproducible_and_replace_the_initialisers():
    first, second = _tiny_model(), _tiny_model()
    initial = [np.array(v.numpy()) for v in second.weights]
    assign_seeded_weights(first)
    assign_seeded_weights(second)
    assert weight_checksums(first) == weight_checksums(second)
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(initial, second.weights) if "float" in str(v.dtype)]
    assert all(changed)
    for v in second.weights:
        if len(v.shape) == 2 and "float" in str(v.dtype):
            bound = np.sqrt(3.0 / v.shape[0])
            assert np.abs(v.numpy()).max() <= bound and np.abs(v.numpy()).max() > 0.5 * bound


@pytest.fixture(scope="module")
def dry_reference(tmp_path_factory):
    return reference.make_reference(tmp_path_factory.mktemp("reference"), dry_run_sizes())


def test_reference_round_trip_on_tensorflow(dry_reference):
    meta, arrays = reference.load_reference(dry_reference)
    sizes = dry_run_sizes()
    assert set(meta["variants"]) == {"resattn", "unet"} and meta["sizes"] == sizes.to_dict()
    assert arrays["images"].shape == (sizes.parity_batch, 24, 24, 1)
    probabilities = arrays["resattn_probabilities"]
    assert probabilities.shape == (sizes.parity_batch, 24, 24, 4)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    rows = reference.compare_reference(dry_reference)
    assert [r["variant"] for r in rows] == ["resattn", "unet"]
    for row in rows:
        assert row["ok"], row
        assert row["prob_max_abs"] < 1e-5 and row["grad_norm_rel_max"] < 1e-5


def test_a_different_result_fails_the_comparison(dry_reference, tmp_path):
    meta, arrays = reference.load_reference(dry_reference)
    arrays["unet_probabilities"] = arrays["unet_probabilities"] + 1e-3
    meta["variants"]["unet"]["gradients"][0]["norm"] *= 1.01
    np.savez(tmp_path / "reference.npz", **arrays)
    (tmp_path / "reference.json").write_text(json.dumps(meta))
    rows = {r["variant"]: r for r in reference.compare_reference(tmp_path)}
    assert rows["resattn"]["ok"]
    assert not rows["unet"]["ok"] and {"prob_mean_abs", "grad_norm_rel_max"} <= set(rows["unet"]["failed"])


def test_other_weights_are_refused(dry_reference, tmp_path):
    meta, arrays = reference.load_reference(dry_reference)
    meta["variants"]["unet"]["weights"][0]["sum"] += 1.0
    np.savez(tmp_path / "reference.npz", **arrays)
    (tmp_path / "reference.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="differs from the reference"):
        reference.compare_reference(tmp_path)


def test_the_parser_reads_the_harness_output_format():
    source = (REPO / "custom_ops" / "lsh_sort" / "cuda" / "harness.cu").read_text()
    printf = re.search(r'std::printf\("(%-28s rows=.*?)\\n"', source).group(1).replace("ll", "")
    line = printf % ("own bucket each 4 x 65536", 4, 65536, 64, 65536, "OK      ", 0.125, 1.5)
    row = kernels._harness_row(kernels.HARNESS_LINE.match(line))
    assert row == {
        "name": "own bucket each 4 x 65536",
        "shape": "4 x 65536 x 64",
        "buckets": 65536,
        "ok": True,
        "sort_ms": 0.125,
        "gather_ms": 1.5,
    }
    for length in (16384, 65536):
        for pattern in ("many ties", "one bucket", "own bucket each"):
            assert f'"{pattern} 4 x {length}"' in source


def _results(kernel_ok=True, parity_ok=True, error=None, loss=(1.0, 0.5)):
    kernel_row = {
        "name": "one bucket 4 x 16384",
        "shape": "4 x 16384 x 64",
        "buckets": 1,
        "ok": kernel_ok,
        "sort_ms": 0.1,
        "gather_ms": 0.2,
    }
    parity_row = {
        "variant": "unet",
        "parameters": 10,
        "prob_max_abs": 1e-6,
        "prob_mean_abs": 1e-7,
        "label_agreement": 1.0,
        "loss_rel": 0.0,
        "d_images_rel_l2": 1e-6,
        "grad_norm_rel_max": 1e-6,
        "grad_probe_rel_max": 1e-6,
        "ok": parity_ok,
        "failed": [] if parity_ok else ["prob_mean_abs"],
    }
    training = {
        "variant": "resattn",
        "steps": 300,
        "batch": 4,
        "seconds": 60.0,
        "epochs": 4,
        "loss_first_epoch": loss[0],
        "loss_last_epoch": loss[1],
        "mean_fg_dice_before": 0.01,
        "mean_fg_dice": 0.3,
        "dice": {"ground_glass": 0.4, "consolidation": 0.2, "pleural_effusion": float("nan")},
    }
    entry = {"result": None, "error": None, "skipped": None, "seconds": 1.0}
    return {
        "dry_run": False,
        "device": "jax: gpu",
        "sizes": dry_run_sizes().to_dict(),
        "seconds": 9.0,
        "sections": [
            {
                **entry,
                "section": "kernels",
                "label": "CUDA kernels",
                "result": {
                    "cupy": [kernel_row],
                    "cupy_skipped": None,
                    "nvcc": None,
                    "nvcc_skipped": "nvcc is not on PATH",
                },
            },
            {**entry, "section": "parity", "label": "parity", "result": [parity_row]},
            {**entry, "section": "throughput", "label": "throughput unet float32", "error": error},
            {**entry, "section": "training", "label": "training run", "result": training},
        ],
    }


def test_the_table_shows_every_section_and_the_verdict_follows_the_figures():
    results = _results()
    assert table.all_ok(results)
    text = table.render(results)
    for expected in (
        "one bucket 4 x 16384",
        "nvcc: skipped: nvcc is not on PATH",
        "| unet | 10 |",
        "1.000 -> 0.500",
        "all checks passed",
    ):
        assert expected in text
    assert not table.all_ok(_results(kernel_ok=False))
    assert not table.all_ok(_results(parity_ok=False))
    assert not table.all_ok(_results(error="timed out after 150 s"))
    assert not table.all_ok(_results(loss=(1.0, 1.2)))
    assert "FAILED: timed out" in table.render(_results(error="timed out after 150 s"))


def test_bad_arguments_exit_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--sections", "kernels,gpu"])
    assert exit_info.value.code == 2
    assert "unknown section(s) gpu" in capsys.readouterr().err


def test_sections_without_their_inputs_are_skipped_with_the_reason(dry_reference, tmp_path):
    def skipped(argv, sizes):
        return {label: reason for _, label, _, reason in tasks(parse_args(argv), sizes)}

    reasons = skipped(["--data", str(tmp_path / "absent")], dry_run_sizes())
    assert "no --reference given" in reasons["parity"]
    assert "not found" in reasons["training run"] and str(tmp_path / "absent") in reasons["training run"]
    assert reasons["CUDA kernels"] is None and reasons["throughput resattn bfloat16"] is None
    assert skipped(["--reference", str(dry_reference)], dry_run_sizes())["parity"] is None
    assert (
        "made at 24x24, this run is at 369x369" in skipped(["--reference", str(dry_reference)], paper_sizes())["parity"]
    )
    labels = list(skipped(["--sections", "throughput,training"], dry_run_sizes()))
    assert labels == [
        "throughput resattn float32",
        "throughput unet float32",
        "training run",
        "throughput resattn bfloat16",
        "throughput unet bfloat16",
    ]


def _tensorflow_blocked_env(tmp_path):
    site = tmp_path / "no_tensorflow"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_TENSORFLOW)
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


@pytest.mark.skipif(NO_JAX, reason="JAX is not installed (pip install jax to run the JAX-backend check)")
def test_the_package_imports_without_tensorflow(tmp_path):
    """Building and training on JAX are the dry run's (slow) and `test_jax_backend.py`'s part."""
    code = (
        "import sys, tf_resattn, tf_resattn.data, tf_resattn.data.batches, tf_resattn.training.trainer\n"
        "import tools.gpu_check.cli, tools.gpu_check.worker, tools.gpu_check.training_run\n"
        "import tools.gpu_check.throughput, tools.gpu_check.reference, tools.gpu_check.kernels\n"
        "assert not [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_tensorflow_blocked_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 2 minutes on 2 cores: XLA compiles seven programs
@pytest.mark.skipif(NO_JAX, reason="JAX is not installed (pip install jax to run the JAX-backend check)")
def test_dry_run_without_tensorflow(dry_reference, tmp_path):
    from tests.data_helpers import write_png_set

    slices = synthetic_slices(n=8, image_size=64, seed=2)
    data = write_png_set(tmp_path / "slices", np.round(slices.images[..., 0] * 255).astype(np.uint8), slices.masks)
    (data / "splits").mkdir()
    (data / "splits" / "infnet-50-48.json").write_text(
        json.dumps({"train": [f"{i:04d}" for i in range(6)], "test": ["0006", "0007"]})
    )
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "gpu_check.py"),
            "--dry-run",
            "--reference",
            str(dry_reference),
            "--data",
            str(data),
            "--json",
            str(out),
            "--budget-s",
            "1200",
        ],
        env=_tensorflow_blocked_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    sections = {e["label"]: e for e in results["sections"]}
    assert not [e for e in sections.values() if e["error"]]
    kernel = sections["CUDA kernels"]["result"]
    assert kernel["cupy"] is None and kernel["cupy_skipped"]
    assert all(r["ok"] for r in sections["parity"]["result"])
    for variant in ("resattn", "unet"):
        for precision in ("float32", "bfloat16"):
            assert sections[f"throughput {variant} {precision}"]["result"]["images_per_s"] > 0
    training = sections["training run"]["result"]
    assert (training["n_train"], training["n_train_augmented"], training["n_test"]) == (6, 36, 2)
    assert "3. Short training run" in done.stdout
