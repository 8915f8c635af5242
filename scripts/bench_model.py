"""Training throughput (images/s) of the four variants, side by side.

    python scripts/bench_model.py --size 128 --json OUT

Each variant is trained on random images and labels (batch 8 by default) for
a few warm-up steps, then timed over several repeats; the median images per
second is reported with the parameter count. The repeats are interleaved
(every variant once per repeat), so a change in the machine's load falls on
all variants alike and the ratios stay comparable. `--xla` adds a row per variant
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


class Trainer:
    """One variant's model, compiled, with a fixed random batch; `run(steps)` returns images/s."""

    def __init__(self, variant, size, batch_size, jit_compile):
        self.name = f"{variant} (XLA)" if jit_compile else variant
        self.model = tf_resattn.build_model(variant, input_shape=(size, size, 1))
        self.model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", jit_compile=jit_compile)
        rng = np.random.default_rng(0)
        self.images = rng.random((batch_size, size, size, 1), dtype=np.float32)
        self.labels = rng.integers(0, 4, (batch_size, size, size))
        self.run(2)  # tracing and warm-up

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self.model.train_on_batch(self.images, self.labels)
        return steps * len(self.images) / (time.perf_counter() - start)


def interleaved_throughput(trainers, steps, repeats):
    """Median images/s per trainer; each repeat times every trainer in turn, so load changes hit all alike."""
    rates = {trainer.name: [] for trainer in trainers}
    for _ in range(repeats):
        for trainer in trainers:
            rates[trainer.name].append(trainer.run(steps))
    return [
        {"variant": t.name, "params": t.model.count_params(), "images_per_s": statistics.median(rates[t.name])}
        for t in trainers
    ]


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
    trainers = [Trainer(v, args.size, args.batch_size, jit) for v in args.variants for jit in modes]
    rows = interleaved_throughput(trainers, args.steps, args.repeats)
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
