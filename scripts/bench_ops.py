"""Benchmarks the compiled LSH sort/gather op against pure TensorFlow.

    python scripts/bench_ops.py --json bench_out/ops.json

1. Sort + gather + un-sort, forward and backward, at 4 x 16384 and 4 x 65536
   tokens of 64 dims: the compiled op, the pure path (tf.argsort + tf.gather,
   gradient = gather by the inverse) and the composite (tf.argsort + tf.gather
   with TensorFlow's scatter-add gradient); medians of `--repeats` runs.
2. The LSHSelfAttention layer (forward + backward) and one `resattn` training
   step at 128x128, timed interleaved in four ways: with the op (a graph
   `tf.function`), without it (pure path), and compiled by XLA on the pure
   path and with the kernels as XLA custom calls.
"""

import argparse
import contextlib
import json
import os
import pathlib
import platform
import sys

import tf_resattn_process

tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/: beside the package, outside the wheel

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_resattn  # noqa: E402
from tf_resattn import ops  # noqa: E402
from tools.benchmarks.sort_gather import time_sort_gather_unsort  # noqa: E402
from tools.benchmarks.timing import interleaved_medians  # noqa: E402


def _parse_sizes(text):
    sizes = []
    for item in text.split(","):
        rows, _, length = item.partition("x")
        if not (rows.isdigit() and length.isdigit()):
            raise ValueError(f"--sizes: expected ROWSxLENGTH items like 4x16384, got {item!r}")
        sizes.append((int(rows), int(length)))
    return sizes


def bench_sort_gather(sizes, depth, num_buckets, repeats):
    rows = []
    for n, length in sizes:
        seconds = time_sort_gather_unsort(n, length, depth, num_buckets, repeats)
        rows.append(
            {
                "tokens": f"{n} x {length}",
                "depth": depth,
                **{f"{name}_ms": 1000 * value for name, value in seconds.items()},
                "speedup_vs_composite": seconds["composite"] / seconds["compiled"],
                "speedup_vs_pure": seconds["pure"] / seconds["compiled"],
            }
        )
    return rows


def _modes():
    """(name, jit_compile, scope factory) of the four ways the model runs."""
    return (
        ("with op", False, contextlib.nullcontext),
        ("without op (pure TF)", False, ops.pure_path),
        ("XLA pure", True, ops.pure_path),
        ("XLA + kernels", True, contextlib.nullcontext),
    )


def _in_scope(scope, function):
    """`function` run inside a fresh `scope()` on every call (the pure path must cover tracing)."""

    def run():
        with scope():
            return function()

    return run


def bench_layer(batch, length, channels, repeats):
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.standard_normal((batch, length, channels)), tf.float32)
    functions = {}
    for name, jit_compile, scope in _modes():
        layer = tf_resattn.layers.LSHSelfAttention(num_heads=2, key_dim=32, bucket_size=64, n_hashes=4, seed=0)
        layer(inputs[:, :8])

        @tf.function(jit_compile=jit_compile)
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x) ** 2)
            return loss, tape.gradient(loss, [x, *layer.trainable_weights])

        functions[name] = _in_scope(scope, lambda step=step: step(inputs)[0].numpy())
    return {name: 1000 * seconds for name, seconds in interleaved_medians(functions, repeats).items()}


def bench_train_step(image_size, batch, repeats):
    rng = np.random.default_rng(0)
    images = rng.random((batch, image_size, image_size, 1)).astype("float32")
    masks = rng.integers(0, 4, size=(batch, image_size, image_size)).astype("int32")
    functions = {}
    for name, jit_compile, scope in _modes():
        model = tf_resattn.build_model("resattn", input_shape=(image_size, image_size, 1))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
        functions[name] = _in_scope(scope, lambda model=model: model.train_on_batch(images, masks))
    return {name: 1000 * seconds for name, seconds in interleaved_medians(functions, repeats).items()}


def _table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).rjust(width) for cell, width in zip(line, widths)) for line in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, help="write the results to this JSON file")
    parser.add_argument("--sizes", default="4x16384,4x65536", help="ROWSxLENGTH list (default: 4x16384,4x65536)")
    parser.add_argument("--depth", type=int, default=64, help="row width D (default 64)")
    parser.add_argument("--num-buckets", type=int, default=257, help="bucket ids in [0, N) (default 257)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per median (default 7)")
    parser.add_argument("--model-repeats", type=int, default=3, help="timed training steps per mode (default 3)")
    parser.add_argument("--skip-model", action="store_true", help="only the sort/gather benchmark")
    args = parser.parse_args(argv)
    try:
        sizes = _parse_sizes(args.sizes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    available, reason = ops.compiled_kernels()
    if not available:
        print(f"error: the compiled op library is needed for this benchmark: {reason}", file=sys.stderr)
        return 2

    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "tensorflow": tf.__version__,
        "library": reason,
        "sort_gather_unsort": bench_sort_gather(sizes, args.depth, args.num_buckets, args.repeats),
    }
    print(f"Sort + gather + un-sort, forward and backward, median of {args.repeats} (ms)")
    print(
        _table(
            [f"tokens x {args.depth}", "compiled op", "pure TF", "argsort+gather", "speed-up vs argsort+gather"],
            [
                [
                    row["tokens"],
                    f"{row['compiled_ms']:.2f}",
                    f"{row['pure_ms']:.2f}",
                    f"{row['composite_ms']:.2f}",
                    f"{row['speedup_vs_composite']:.1f}x",
                ]
                for row in results["sort_gather_unsort"]
            ],
        )
    )
    if not args.skip_model:
        results["layer_16384_tokens_ms"] = bench_layer(1, 16384, 32, args.repeats)
        results["resattn_train_step_128_ms"] = bench_train_step(128, 2, args.model_repeats)
        print("\nLSHSelfAttention (1 x 16384 tokens x 32 channels, forward + backward) and one resattn training")
        print(f"step (batch 2, 128x128, default model); medians of {args.repeats} and {args.model_repeats} (ms)")
        print(
            _table(
                ["", *results["layer_16384_tokens_ms"]],
                [
                    ["LSHSelfAttention", *(f"{v:.1f}" for v in results["layer_16384_tokens_ms"].values())],
                    ["resattn train step", *(f"{v:.1f}" for v in results["resattn_train_step_128_ms"].values())],
                ],
            )
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(results, indent=2))
        os.replace(partial, args.json)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
