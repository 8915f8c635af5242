"""Inference latency and peak memory of the Keras model, the SavedModel and the three TFLite files.

Each format runs in a fresh process of its own (so peak memory is its own),
end to end on raw 512x512 slices: preprocessing, the model, probabilities
resized back to 512x512 and the argmax, which is what `predict` does. Latency
is the median over `repeats` calls after `warmup` calls, divided by the batch
size (seconds per slice). Peak memory is the process's peak resident set size,
which includes the Python/TensorFlow runtime; the `baseline` row is a process
that imports the same modules and runs nothing.
"""

import multiprocessing
import resource
import statistics
import time

import numpy as np

FORMATS = ("keras", "saved_model", "fp32", "fp16", "int8")


def model_path(export_dir, keras_path, name):
    """The file or folder that format `name` runs from."""
    if name == "keras":
        return keras_path
    if name == "saved_model":
        return export_dir / "saved_model"
    return export_dir / f"model_{name}.tflite"


def seconds_per_slice(predictor, batch, repeats, warmup):
    """Median seconds per slice of `predictor(batch)` plus the argmax."""
    for _ in range(warmup):
        np.argmax(predictor(batch), axis=-1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.argmax(predictor(batch), axis=-1)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(batch)


def _measure(name, path, batch_sizes, repeats, warmup, threads, size, queue):
    """Child process: one format's latencies and peak memory, put on `queue`."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from tf_resattn.inference import predictors

    rng = np.random.default_rng(0)
    result = {}
    if name != "baseline":
        if name in ("fp32", "fp16", "int8"):
            predictor = predictors.TFLitePredictor(path, num_threads=threads)
        else:
            predictor = predictors.PREDICTORS[name](path)
        low, high = (-1000, 400) if predictor.preprocessing.input_kind == "hu" else (0, 255)
        for batch_size in batch_sizes:
            batch = rng.uniform(low, high, size=(batch_size, size, size)).astype(np.float32)
            result[f"batch_{batch_size}_ms_per_slice"] = 1000 * seconds_per_slice(predictor, batch, repeats, warmup)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def run_benchmark(
    export_dir, keras_path, *, batch_sizes=(1, 8), repeats=10, warmup=2, threads=None, size=512, log=print
):
    """Measures every format, each in its own process.

    Args:
        export_dir: folder from `export_model` (or the same layout).
        keras_path: the `.keras` model it came from (`preprocessing.json` beside it).
        batch_sizes: batch sizes to time.
        repeats, warmup: timed and untimed calls per batch size.
        threads: CPU threads for TensorFlow and TFLite (None: all cores).
        size: raw slice height and width.
        log: where progress lines go.

    Returns:
        `{format: {"batch_<b>_ms_per_slice": float, ..., "peak_rss_mib": float}}`, plus `"baseline"`.
    """
    import os

    threads = threads or os.cpu_count()
    context = multiprocessing.get_context("spawn")
    results = {}
    for name in ("baseline",) + FORMATS:
        log(f"{name} ...")
        queue = context.Queue()
        path = None if name == "baseline" else str(model_path(export_dir, keras_path, name))
        process = context.Process(
            target=_measure, args=(name, path, batch_sizes, repeats, warmup, threads, size, queue)
        )
        process.start()
        results[name] = queue.get()
        process.join()
    return results


def format_results(results, batch_sizes=(1, 8)):
    """A Markdown table of `run_benchmark`'s results."""
    header = "| format | " + " | ".join(f"batch {b}: ms/slice" for b in batch_sizes) + " | peak RSS (MiB) |"
    lines = [header, "|" + " --- |" * (len(batch_sizes) + 2)]
    for name, entry in results.items():
        cells = [
            f"{entry[f'batch_{b}_ms_per_slice']:.1f}" if f"batch_{b}_ms_per_slice" in entry else "-"
            for b in batch_sizes
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {entry['peak_rss_mib']:.0f} |")
    return "\n".join(lines)
