"""Forward+backward time and peak memory of LSH attention against full attention and reformer-pytorch.

    python scripts/bench_attention.py --lengths 4096 16384 65536 --json OUT

Every measurement runs in a fresh process: batch 1, model dimension 64, one
head of 64 dimensions, 4 hash rounds, buckets of 64 tokens (the bucket count
follows the sequence, `L / 64`, as in Reformer). Time is the median of
`--repeats` forward+backward passes after a warm-up; memory is the peak
resident set size above the process's own baseline (taken after the
framework and the layer are set up, before the first pass).

- `tf_resattn`: `tf_resattn.layers.LSHSelfAttention` (compiled op when
  available; the `path` column says which path ran) with Reformer's bucket
  count `L / 64`; `tf_resattn (256 buckets)`: the layer's default cap of 256
  buckets, whose hashing cost grows linearly instead of as `L**2 / 64`.
- `keras MHA`: `keras.layers.MultiHeadAttention` (exact full attention), run
  where its `L x L` scores fit (`--full-max`).
- `reformer-pytorch`: its `LSHSelfAttention` with the same projections, heads
  and settings, when the optional `bench` extra is installed.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

DIM, HEADS, N_HASHES, BUCKET = 64, 1, 4, 64


def _rss_mib():
    """Current resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib():
    from tf_resattn.inference.memory import peak_memory_mb

    return peak_memory_mb()


def _time_tensorflow(layer, length, repeats):
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(1, length, DIM)).astype(np.float32))
    layer(x)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, [x] + layer.trainable_weights)

    step.get_concrete_function()
    baseline = _rss_mib()
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), _peak_mib() - baseline


def measure_tf_resattn(length, repeats, max_buckets=None):
    import tf_resattn_process

    tf_resattn_process.configure_process()  # the package's command-line settings; keras MHA runs on TensorFlow's
    import tf_resattn
    from tf_resattn.layers import LSHSelfAttention

    max_buckets = max_buckets or max(2, length // BUCKET)
    layer = LSHSelfAttention(HEADS, DIM, bucket_size=BUCKET, n_hashes=N_HASHES, max_buckets=max_buckets, seed=0)
    seconds, memory = _time_tensorflow(layer, length, repeats)
    in_use, _ = tf_resattn.ops.compiled_kernels()
    return seconds, memory, "compiled" if in_use else "pure TF"


def measure_keras_mha(length, repeats):
    import keras

    class SelfAttention(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.mha = keras.layers.MultiHeadAttention(HEADS, DIM)

        def call(self, x):
            return self.mha(x, x)

    seconds, memory = _time_tensorflow(SelfAttention(), length, repeats)
    return seconds, memory, "-"


def measure_reformer_pytorch(length, repeats):
    import torch
    from reformer_pytorch import LSHSelfAttention as TorchLSH

    torch.manual_seed(0)
    layer = TorchLSH(dim=DIM, heads=HEADS, dim_head=DIM, bucket_size=BUCKET, n_hashes=N_HASHES, causal=False)
    x = torch.randn(1, length, DIM, requires_grad=True)
    baseline = _rss_mib()
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        layer(x).sum().backward()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times), _peak_mib() - baseline, "-"


IMPLEMENTATIONS = {
    "tf_resattn": measure_tf_resattn,
    "tf_resattn (256 buckets)": lambda length, repeats: measure_tf_resattn(length, repeats, max_buckets=256),
    "keras MHA": measure_keras_mha,
    "reformer-pytorch": measure_reformer_pytorch,
}


def run_in_subprocess(name, length, repeats):
    """Runs one measurement in a fresh process; returns a result dict or an error string."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent)!r})\n"
        "import bench_attention as b\n"
        f"print(json.dumps(b.IMPLEMENTATIONS[{name!r}]({length}, {repeats})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:120]}
    seconds, memory, path = json.loads(result.stdout.strip().splitlines()[-1])
    return {"ms": seconds * 1000, "peak_mib": memory, "path": path}


def reformer_pytorch_installed():
    try:
        import reformer_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per measurement (median)")
    parser.add_argument("--full-max", type=int, default=16384, help="longest sequence for full attention")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--only", nargs="+", choices=list(IMPLEMENTATIONS), help="measure only these")
    args = parser.parse_args(argv)

    names = ["tf_resattn", "tf_resattn (256 buckets)", "keras MHA"]
    names += ["reformer-pytorch"] if reformer_pytorch_installed() else []
    names = [name for name in names if not args.only or name in args.only]
    rows = []
    for length in args.lengths:
        for name in names:
            if name == "keras MHA" and length > args.full_max:
                rows.append({"impl": name, "length": length, "error": f"L x L scores do not fit (> {args.full_max})"})
                continue
            rows.append({"impl": name, "length": length, **run_in_subprocess(name, length, args.repeats)})
            print(json.dumps(rows[-1]), flush=True)

    print(
        f"\nForward+backward, batch 1, dim {DIM}, {HEADS} head, {N_HASHES} hashes, bucket {BUCKET} "
        f"(median of {args.repeats}; peak RSS above baseline)"
    )
    print("| implementation | tokens | ms | peak MiB | path |\n|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['impl']} | {row['length']} | - | - | {row['error']} |")
        else:
            print(f"| {row['impl']} | {row['length']} | {row['ms']:.0f} | {row['peak_mib']:.0f} | {row['path']} |")
    if not reformer_pytorch_installed():
        print("reformer-pytorch not installed: pip install -e '.[bench]' adds it")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"dim": DIM, "heads": HEADS, "n_hashes": N_HASHES, "bucket_size": BUCKET, "results": rows}, f, indent=2
            )


if __name__ == "__main__":
    main()
