"""Inference latency and peak memory of the Keras model, the SavedModel and the three TFLite files.

Each format runs in a process of its own (so peak memory is its own), end to
end on raw 512x512 slices: preprocessing, the model, probabilities resized
back to 512x512 and the argmax, which is what `predict` does. Every format gets
the same slices. Latency is the median over `repeats` calls after `warmup`
calls, divided by the batch size (seconds per slice); the fastest call is kept
too (`..._min_ms_per_slice`), the better estimate on a machine that other work
slows down now and then. Peak memory is the process's peak resident set size,
which includes the Python/TensorFlow runtime; the `baseline` row is a process
that imports the same modules and runs nothing.

By default the formats are timed in interleaved rounds (`interleave=True`):
all the processes start and warm up first, then each round times one call of
every format in turn, so that load from other work on a shared machine falls
on all of them alike. With `interleave=False` each format runs alone, one
after the other.
"""

import multiprocessing
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


def timed_call(predictor, batch):
    """Wall seconds of `predictor(batch)` plus the argmax."""
    start = time.perf_counter()
    np.argmax(predictor(batch), axis=-1)
    return time.perf_counter() - start


def seconds_per_slice(predictor, batch, repeats, warmup):
    """Median seconds per slice of `predictor(batch)` plus the argmax."""
    for _ in range(warmup):
        timed_call(predictor, batch)
    return statistics.median(timed_call(predictor, batch) for _ in range(repeats)) / len(batch)


def _predictor(name, path, threads):
    """The predictor of format `name`, None for the baseline, with TensorFlow and TFLite on `threads` threads."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from tf_resattn.inference import predictors

    if name == "baseline":
        return None
    if name in ("fp32", "fp16", "int8"):
        return predictors.TFLitePredictor(path, num_threads=threads)
    return predictors.PREDICTORS[name](path)


def raw_batches(predictor, batch_sizes, size):
    """`{batch_size: raw slices float32 [b, size, size]}`, the same for every format of one input kind."""
    rng = np.random.default_rng(0)
    low, high = (-1000, 400) if predictor.preprocessing.input_kind == "hu" else (0, 255)
    return {b: rng.uniform(low, high, size=(b, size, size)).astype(np.float32) for b in batch_sizes}


def per_slice_entries(batch_size, times):
    """`{"batch_<b>_ms_per_slice": median, "batch_<b>_min_ms_per_slice": fastest}` of call times in seconds."""
    return {
        f"batch_{batch_size}_ms_per_slice": 1000 * statistics.median(times) / batch_size,
        f"batch_{batch_size}_min_ms_per_slice": 1000 * min(times) / batch_size,
    }


def peak_rss_mib():
    """This process's own peak resident set size in MiB (not its parent's: `memory.peak_memory_mb`)."""
    from tf_resattn.inference.memory import peak_memory_mb

    return peak_memory_mb()


def _measure(name, path, batch_sizes, repeats, warmup, threads, size, queue):
    """Child process of a sequential run: one format's latencies and peak memory, put on `queue`."""
    predictor = _predictor(name, path, threads)
    result = {}
    if predictor is not None:
        for batch_size, batch in raw_batches(predictor, batch_sizes, size).items():
            for _ in range(warmup):
                timed_call(predictor, batch)
            result.update(per_slice_entries(batch_size, [timed_call(predictor, batch) for _ in range(repeats)]))
    result["peak_rss_mib"] = peak_rss_mib()
    queue.put(result)


def _serve(name, path, batch_sizes, warmup, threads, size, connection):
    """Child process of an interleaved run: warms up, says "ready", then times one call per batch size asked."""
    predictor = _predictor(name, path, threads)
    batches = {} if predictor is None else raw_batches(predictor, batch_sizes, size)
    for batch in batches.values():
        for _ in range(warmup):
            timed_call(predictor, batch)
    connection.send("ready")
    while (batch_size := connection.recv()) is not None:
        connection.send(None if predictor is None else timed_call(predictor, batches[batch_size]))
    connection.send(peak_rss_mib())


def _interleaved(names, paths, batch_sizes, repeats, warmup, threads, size, log):
    """Every format in its own process, all alive at once, timed one call each per round."""
    context = multiprocessing.get_context("spawn")
    processes, connections = {}, {}
    for name in names:
        log(f"{name}: starting ...")
        parent, child = context.Pipe()
        processes[name] = context.Process(
            target=_serve, args=(name, paths[name], batch_sizes, warmup, threads, size, child)
        )
        processes[name].start()
        connections[name] = parent
        if parent.recv() != "ready":  # one at a time, so that start-up work does not overlap
            raise RuntimeError(f"{name} did not start")
    times = {name: {b: [] for b in batch_sizes} for name in names if name != "baseline"}
    for batch_size in batch_sizes:
        log(f"batch {batch_size}: {repeats} rounds ...")
        for _ in range(repeats):
            for name in times:
                connections[name].send(batch_size)
                times[name][batch_size].append(connections[name].recv())
    results = {}
    for name in names:
        connections[name].send(None)
        results[name] = {}
        for batch_size, values in times.get(name, {}).items():
            results[name].update(per_slice_entries(batch_size, values))
        results[name]["peak_rss_mib"] = connections[name].recv()
        processes[name].join()
    return results


def run_benchmark(
    export_dir,
    keras_path,
    *,
    batch_sizes=(1, 8),
    repeats=10,
    warmup=2,
    threads=None,
    size=512,
    interleave=True,
    log=print,
):
    """Measures every format, each in its own process.

    Args:
        export_dir: folder from `export_model` (or the same layout).
        keras_path: the `.keras` model it came from (`preprocessing.json` beside it).
        batch_sizes: batch sizes to time.
        repeats, warmup: timed and untimed calls per batch size.
        threads: CPU threads for TensorFlow and TFLite (None: all cores).
        size: raw slice height and width.
        interleave: time the formats in interleaved rounds (all processes alive at once); False runs them
            one after the other.
        log: where progress lines go.

    Returns:
        `{format: {"batch_<b>_ms_per_slice": median, "batch_<b>_min_ms_per_slice": fastest, ...,
        "peak_rss_mib": float}}`, plus `"baseline"`.
    """
    import os

    threads = threads or os.cpu_count()
    names = ("baseline",) + FORMATS
    paths = {name: None if name == "baseline" else str(model_path(export_dir, keras_path, name)) for name in names}
    if interleave:
        return _interleaved(names, paths, batch_sizes, repeats, warmup, threads, size, log)
    context = multiprocessing.get_context("spawn")
    results = {}
    for name in names:
        log(f"{name} ...")
        queue = context.Queue()
        process = context.Process(
            target=_measure, args=(name, paths[name], batch_sizes, repeats, warmup, threads, size, queue)
        )
        process.start()
        results[name] = queue.get()
        process.join()
    return results


def format_results(results, batch_sizes=(1, 8)):
    """A Markdown table of `run_benchmark`'s results (medians; the fastest call in brackets where known)."""
    header = "| format | " + " | ".join(f"batch {b}: ms/slice" for b in batch_sizes) + " | peak RSS (MiB) |"
    lines = [header, "|" + " --- |" * (len(batch_sizes) + 2)]
    for name, entry in results.items():
        cells = []
        for b in batch_sizes:
            median, fastest = entry.get(f"batch_{b}_ms_per_slice"), entry.get(f"batch_{b}_min_ms_per_slice")
            cell = "-" if median is None else f"{median:.1f}"
            cells.append(cell if fastest is None else f"{cell} ({fastest:.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {entry['peak_rss_mib']:.0f} |")
    return "\n".join(lines)
