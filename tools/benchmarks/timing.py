"""Timing several functions fairly on a shared machine: interleaved rounds, medians."""

import statistics
import time


def interleaved_medians(functions, repeats, warmup=2):
    """Median wall seconds of each of `functions` (dict name -> callable), timed in interleaved rounds.

    Each round calls every function once, so load from other processes on a
    shared machine spreads over all of them alike. Every callable must block
    until its work is done (e.g. by reading a value with `.numpy()`).
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
