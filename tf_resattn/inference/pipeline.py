"""A prefetching pipeline: the model runs on one batch while a worker thread frames the next and finishes the last.

`pipelined(batches, prepare, run, finish)` returns `[finish(prepare(b), run(prepare(b))) for b in batches]`
in order, with `prepare` of batch k+1 and `finish` of batch k done in one worker thread while the calling
thread runs the model on batch k+1; at most two finished batches wait for the worker, so the model's outputs
do not pile up when finishing is the slower step. The framing (lung field, crop, resizing, pasting back, the burden's
lung field) is NumPy, OpenCV and SciPy code that releases the interpreter lock for its array work, so it
overlaps the model's own threads instead of waiting for them. An exception in any step is raised here.
"""

from concurrent.futures import ThreadPoolExecutor


def pipelined(batches, prepare, run, finish):
    """`[finish(prepared, run(prepared)) for prepared in map(prepare, batches)]`, prepare and finish overlapping run.

    Args:
        batches: a sequence of whatever `prepare` takes.
        prepare: batch -> prepared batch (in the worker thread).
        run: prepared batch -> outputs (in the calling thread: the model).
        finish: (prepared batch, outputs) -> result (in the worker thread).

    Returns:
        The results, in the order of `batches`.
    """
    if not batches:
        return []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tf_resattn-framing") as worker:
        next_prepared = worker.submit(prepare, batches[0])
        finished = []
        for k in range(len(batches)):
            prepared = next_prepared.result()
            if k + 1 < len(batches):
                next_prepared = worker.submit(prepare, batches[k + 1])
            outputs = run(prepared)
            if k >= 2:
                finished[k - 2].result()
            finished.append(worker.submit(finish, prepared, outputs))
            del prepared, outputs
        return [future.result() for future in finished]
