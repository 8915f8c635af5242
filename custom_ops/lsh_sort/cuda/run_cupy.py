"""Runs the CUDA kernels (bucket_sort_kernels.cuh, permute_gather_kernels.cuh) from CuPy against NumPy (no TensorFlow needed).

    python custom_ops/lsh_sort/cuda/run_cupy.py

Compiles the kernel source with NVRTC, runs the bucket sort (three kernels, as
the op library launches them) and the permute gather for edge cases and real
sizes (`REAL_CASES`: 4 x 16384 and 4 x 65536 tokens with many ties, one bucket,
and every token its own bucket), checks them against `np.argsort(kind="stable")` and NumPy fancy
indexing, and prints median kernel times. Exits 1 on a mismatch.
"""

import pathlib
import sys

import cupy as cp
import numpy as np

HERE = pathlib.Path(__file__).parent
SOURCE = (HERE / "bucket_sort_kernels.cuh").read_text() + (HERE / "permute_gather_kernels.cuh").read_text()
WARPS = 8
BLOCK = WARPS * 32
CASES = (
    # name, rows, length, depth, num_buckets, distinct ids (0: own bucket each)
    ("many ties", 4, 1000, 8, 5, 3),
    ("one bucket", 3, 777, 4, 1, 1),
    ("own bucket each", 2, 513, 4, 513, 0),
    ("L = 1", 5, 1, 3, 2, 2),
    ("odd L", 7, 12345, 16, 97, 97),
    ("more buckets than tokens", 2, 100, 8, 5000, 5000),
    ("real 4 x 16384", 4, 16384, 64, 257, 257),
    ("real 4 x 65536", 4, 65536, 64, 1025, 1025),
    ("layer-like 64 x 4096", 64, 4096, 32, 65, 65),
)
REAL_CASES = tuple(
    (f"{name} 4 x {length}", 4, length, 64, buckets, distinct)
    for length in (16384, 65536)
    for name, buckets, distinct in (
        ("many ties", length // 64 + 1, 3),
        ("one bucket", 1, 1),
        ("own bucket each", length, 0),
    )
)
"""The sizes of the model's full-resolution attention, with the bucket patterns that stress the sort."""


def load_kernels():
    module = cp.RawModule(
        code=SOURCE,
        options=("-std=c++17",),
        name_expressions=("lsh_permute_gather<float>", "lsh_permute_gather<unsigned short>"),
    )
    return {
        "histogram": module.get_function("lsh_bucket_histogram"),
        "offsets": module.get_function("lsh_bucket_offsets"),
        "scatter": module.get_function("lsh_bucket_scatter"),
        "gather_f32": module.get_function("lsh_permute_gather<float>"),
        "gather_u16": module.get_function("lsh_permute_gather<unsigned short>"),
    }


def bucket_sort(kernels, ids, num_buckets):
    rows, length = ids.shape
    counts = cp.zeros((rows, WARPS, num_buckets), cp.int32)
    permutation = cp.empty_like(ids)
    inverse = cp.empty_like(ids)
    kernels["histogram"]((rows,), (BLOCK,), (ids, np.int64(length), np.int32(num_buckets), counts))
    kernels["offsets"]((rows,), (BLOCK,), (counts, np.int32(WARPS), np.int32(num_buckets)), shared_mem=BLOCK * 4)
    kernels["scatter"]((rows,), (BLOCK,), (ids, np.int64(length), np.int32(num_buckets), counts, permutation, inverse))
    return permutation, inverse


def permute_gather(kernel, x, permutation):
    rows, length, depth = x.shape
    y = cp.empty_like(x)
    total = x.size
    grid = min((total + 255) // 256, 65535 * 32)
    kernel((grid,), (256,), (x, permutation, np.int64(rows), np.int64(length), np.int64(depth), y))
    return y


def median_ms(function, repeats=21):
    function()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        function()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def run_case(kernels, rng, name, rows, length, depth, num_buckets, distinct):
    """Runs one case; returns a dict with `name`, `shape`, `buckets`, `ok`, `sort_ms`, `gather_ms`."""
    if distinct == 0:
        ids = np.tile((length - 1 - np.arange(length)) % num_buckets, (rows, 1)).astype(np.int32)
    else:
        ids = rng.integers(0, distinct, size=(rows, length), dtype=np.int32)
    want_perm = np.argsort(ids, axis=1, kind="stable").astype(np.int32)
    want_inv = np.argsort(want_perm, axis=1, kind="stable").astype(np.int32)
    x = rng.standard_normal((rows, length, depth)).astype(np.float32)
    x16 = x.astype(np.float16).view(np.uint16)
    want_y = np.take_along_axis(x, want_perm[..., None], axis=1)

    d_ids, d_x, d_x16 = cp.asarray(ids), cp.asarray(x), cp.asarray(x16)
    permutation, inverse = bucket_sort(kernels, d_ids, num_buckets)
    y = permute_gather(kernels["gather_f32"], d_x, permutation)
    y16 = permute_gather(kernels["gather_u16"], d_x16, permutation)
    ok = (
        np.array_equal(cp.asnumpy(permutation), want_perm)
        and np.array_equal(cp.asnumpy(inverse), want_inv)
        and np.array_equal(cp.asnumpy(y), want_y)
        and np.array_equal(cp.asnumpy(y16), np.take_along_axis(x16, want_perm[..., None], axis=1))
    )
    sort_ms = median_ms(lambda: bucket_sort(kernels, d_ids, num_buckets)) if ok else float("nan")
    gather_ms = median_ms(lambda: permute_gather(kernels["gather_f32"], d_x, permutation)) if ok else float("nan")
    return {
        "name": name,
        "shape": f"{rows} x {length} x {depth}",
        "buckets": num_buckets,
        "ok": bool(ok),
        "sort_ms": sort_ms,
        "gather_ms": gather_ms,
    }


def run_cases(cases=CASES + REAL_CASES, seed=0):
    """Compiles the kernels and runs `cases`; returns one `run_case` dict per case."""
    kernels = load_kernels()
    rng = np.random.default_rng(seed)
    return [run_case(kernels, rng, *case) for case in cases]


def main():
    results = run_cases()
    for r in results:
        print(
            f"{r['name']:<28} {r['shape']:<18} buckets={r['buckets']:<6} {'OK' if r['ok'] else 'MISMATCH':<8} "
            f"sort {r['sort_ms']:8.3f} ms  gather f32 {r['gather_ms']:8.3f} ms"
        )
    ok = all(r["ok"] for r in results)
    print("all cases match NumPy" if ok else "MISMATCHES found")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
