"""Training throughput (images/s) of the four variants, side by side.

    python scripts/bench_model.py --size 128 --json OUT

Each variant is trained on random images and labels (batch 8 by default) for
a few warm-up steps, then timed over several repeats; the median images per
second is reported with the parameter count. `--xla` adds a row per variant
with the training step compiled by XLA (`jit_compile=True`; the LSH layers
then take the pure-TensorFlow path).
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np

import tf_resattn


def train_throughput(variant, size, batch_size, steps, repeats, jit_compile):
    """Median images/s of `steps` training steps, over `repeats` timed runs."""
    model = tf_resattn.build_model(variant, input_shape=(size, size, 1))
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, size, size, 1), dtype=np.float32)
    labels = rng.integers(0, 4, (batch_size, size, size))
    for _ in range(2):
        model.train_on_batch(images, labels)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(images, labels)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    name = f"{variant} (XLA)" if jit_compile else variant
    return {"variant": name, "params": model.count_params(), "images_per_s": statistics.median(rates)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="image height and width (default 128)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(tf_resattn.VARIANTS), choices=tf_resattn.VARIANTS)
    parser.add_argument("--xla", action="store_true", help="also time every variant with jit_compile=True")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    modes = [False, True] if args.xla else [False]
    rows = [
        train_throughput(v, args.size, args.batch_size, args.steps, args.repeats, jit)
        for v in args.variants
        for jit in modes
    ]
    unet = next((row["images_per_s"] for row in rows if row["variant"] == "unet"), None)
    print(f"\nTraining throughput at {args.size}x{args.size}, batch {args.batch_size} (median of {args.repeats})")
    print(f"| variant | parameters | images/s | vs unet |\n|---|---|---|---|")
    for row in rows:
        ratio = f"{row['images_per_s'] / unet:.2f}x" if unet else "-"
        print(f"| {row['variant']} | {row['params'] / 1e6:.2f}M | {row['images_per_s']:.1f} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "batch_size": args.batch_size, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
