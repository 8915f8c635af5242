"""A whole CT volume through `predict.py`, end to end, beside the bare `model.predict` of its preprocessed slices.

Every row is a fresh process timed from its start to its exit, as a user meets it: Python and
TensorFlow start-up, reading the NIfTI, the lung field, the model, pasting back, the burden, writing
labels, overlays and the report. The reference (`bare model.predict`) is a fresh process too: start-up,
loading the `.keras` model, `model.predict(batch_size=8)` of the same slices already preprocessed (cropped,
scaled, resized to the model's size) and saved beside the volume. Rows are run in turn, `repeats` rounds,
and the median is given; `ratio` is a row's median over the reference's (the TTA rows over the TTA
reference). Peak memory is each `predict.py` process's own (`speed.peak_memory_mb` of its report).
"""

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from tools.benchmarks.inference_latency import FORMATS, model_path

REPO = pathlib.Path(__file__).resolve().parents[2]
BARE_PREDICT = """
import sys, numpy as np
import tf_resattn_process
tf_resattn_process.configure_process()
from tf_resattn.inference.model_files import load_averaged_model
model, _ = load_averaged_model(sys.argv[1], tta=sys.argv[3] == "tta")
model.predict(np.load(sys.argv[2]), batch_size=8, verbose=0)
"""


def write_volume(path, slices=300, size=512, distinct=30, seed=3):
    """A synthetic HU chest volume `[size, size, slices]` as int16 NIfTI at `path`, `distinct` slices repeated."""
    import nibabel

    from tf_resattn.data.synthetic import synthetic_hu_slices

    hu, _ = synthetic_hu_slices(n=distinct, image_size=size, seed=seed, version=2)
    volume = np.resize(hu, (slices, size, size))
    nibabel.save(nibabel.Nifti1Image(volume.transpose(2, 1, 0).astype(np.int16), np.diag([0.7, 0.7, 1.0, 1.0])), path)
    return path


def preprocessed_slices(volume_path, keras_path, out_path):
    """The model inputs float32 `[N, h, w, 1]` that `predict.py` makes of the volume, saved as `.npy` at `out_path`."""
    from tf_resattn.data.framing import model_inputs, slice_regions
    from tf_resattn.inference.model_files import read_preprocessing
    from tf_resattn.inference.predict import match_input_kind
    from tf_resattn.io import read_scans

    prep = read_preprocessing(keras_path)
    (scan,), _ = match_input_kind(read_scans(volume_path), prep, keras_path)
    np.save(out_path, model_inputs(scan.slices, prep, slice_regions(scan.slices, prep)))
    return out_path


def timed(command):
    """Seconds `command` (a list) takes to run to its exit; raises on failure with its last output lines."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-5:])
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{tail}")
    return seconds


def run_volume_benchmark(volume_path, keras_path, export_dir, *, formats=FORMATS, tta=True, repeats=3, log=print):
    """Times each row `repeats` times in turn.

    Args:
        volume_path: a NIfTI volume in HU (`write_volume`).
        keras_path: the `.keras` model with its `preprocessing.json`.
        export_dir: its export (`export_model`), for the SavedModel and TFLite rows.
        formats: the rows without TTA (`FORMATS`).
        tta: add the Keras row with TTA and its reference.
        repeats: rounds.
        log: where progress lines go.

    Returns:
        `{row: {"seconds": [..], "median_s": float, "peak_memory_mb": [..]}}`; reference rows are
        `bare model.predict` and `bare model.predict, tta`.
    """
    rows = [(name, False) for name in formats] + ([("keras", True)] if tta else [])
    references = [False, True] if tta else [False]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        inputs = preprocessed_slices(volume_path, keras_path, scratch / "inputs.npy")
        for round_ in range(repeats):
            for with_tta in references:
                name = "bare model.predict" + (", tta" if with_tta else "")
                log(f"round {round_ + 1}/{repeats}: {name}")
                command = [sys.executable, "-c", BARE_PREDICT, str(keras_path), str(inputs), "tta" if with_tta else "-"]
                results.setdefault(name, {"seconds": [], "peak_memory_mb": []})["seconds"].append(timed(command))
            for name, with_tta in rows:
                row = name + (", tta" if with_tta else "")
                log(f"round {round_ + 1}/{repeats}: predict.py {row}")
                out = scratch / f"out-{len(results)}-{round_}-{row.replace(', ', '-')}"
                command = [
                    sys.executable,
                    str(REPO / "scripts" / "predict.py"),
                    "--model",
                    str(model_path(export_dir, keras_path, name)),
                    "--input",
                    str(volume_path),
                    "--out",
                    str(out),
                    "--quiet",
                ] + (["--tta"] if with_tta else [])
                entry = results.setdefault(f"predict.py {row}", {"seconds": [], "peak_memory_mb": []})
                entry["seconds"].append(timed(command))
                entry["peak_memory_mb"].append(json.loads((out / "report.json").read_text())["speed"]["peak_memory_mb"])
    for entry in results.values():
        entry["median_s"] = statistics.median(entry["seconds"])
    return results


def format_volume_results(results, slices):
    """A Markdown table of `run_volume_benchmark`'s results for a volume of `slices` slices."""
    lines = [
        "| run | median s | slices/s | ratio to bare `model.predict` | peak memory (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, entry in results.items():
        reference = results["bare model.predict, tta" if row.endswith("tta") else "bare model.predict"]["median_s"]
        memory = [m for m in entry["peak_memory_mb"] if m is not None]
        peak = f"{max(memory):.0f}" if memory else "-"
        lines.append(
            f"| {row} | {entry['median_s']:.1f} | {slices / entry['median_s']:.1f} | "
            f"{entry['median_s'] / reference:.2f} | {peak} |"
        )
    return "\n".join(lines)
