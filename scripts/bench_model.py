"""Training (or inference) throughput of the variants against a plain Keras U-Net, side by side.

    python scripts/bench_model.py --size 128 --json OUT
    python scripts/bench_model.py --size 256 --batch-size 4
    python scripts/bench_model.py --predict --size 512 --batch-size 1

The first row is the U-Net a user would write without this package (defined
here, independent of it: two 3x3 ReLU convolutions per level, no
normalisation, transposed-convolution upsampling, same width and depth), and
every variant is reported against it. Each model is trained on random images
and labels (batch 8 by default) for a few warm-up steps, then timed over
several repeats; the median images per second is reported with the parameter
count. The repeats are interleaved (every model once per repeat), so a change
in the machine's load falls on all models alike and the ratios stay
comparable. `--predict` times `model.predict` instead of training steps.
`--xla` adds a row per variant with the step compiled by XLA
(`jit_compile=True`; the LSH layers then take the pure-TensorFlow path).
"""

import argparse
import json
import statistics
import time

import tf_resattn  # first: it imports TensorFlow without the start-up noise

import keras
import numpy as np

PLAIN = "plain Keras U-Net"


def plain_unet(input_shape, num_classes=4, base_filters=32, depth=4):
    """The U-Net users write themselves: `[B, H, W, channels]` -> softmax `[B, H, W, num_classes]`."""

    def convs(x, filters):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return x

    inputs = keras.Input(input_shape)
    x, skips = inputs, []
    for level in range(depth):
        x = convs(x, base_filters * 2**level)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = convs(x, base_filters * 2**depth)
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2)(x)
        x = convs(keras.layers.Concatenate()([x, skips[level]]), base_filters * 2**level)
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="plain_unet")


class Runner:
    """One model, compiled, with a fixed random batch; `run(steps)` returns images/s."""

    def __init__(self, variant, size, batch_size, jit_compile, predict):
        self.name = f"{variant} (XLA)" if jit_compile else variant
        shape = (size, size, 1)
        self.model = plain_unet(shape) if variant == PLAIN else tf_resattn.build_model(variant, input_shape=shape)
        self.model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", jit_compile=jit_compile)
        self.predict = predict
        rng = np.random.default_rng(0)
        self.images = rng.random((batch_size, size, size, 1), dtype=np.float32)
        self.labels = rng.integers(0, 4, (batch_size, size, size))
        self.run(2)  # tracing and warm-up

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            if self.predict:
                self.model.predict(self.images, batch_size=len(self.images), verbose=0)
            else:
                self.model.train_on_batch(self.images, self.labels)
        return steps * len(self.images) / (time.perf_counter() - start)


def interleaved_throughput(runners, steps, repeats):
    """Median images/s per runner; each repeat times every runner in turn, so load changes hit all alike."""
    rates = {runner.name: [] for runner in runners}
    for _ in range(repeats):
        for runner in runners:
            rates[runner.name].append(runner.run(steps))
    return [
        {"variant": r.name, "params": r.model.count_params(), "images_per_s": statistics.median(rates[r.name])}
        for r in runners
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="image height and width (default 128)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(tf_resattn.VARIANTS), choices=tf_resattn.VARIANTS)
    parser.add_argument("--predict", action="store_true", help="time model.predict instead of training steps")
    parser.add_argument("--xla", action="store_true", help="also time every variant with jit_compile=True")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    modes = [False, True] if args.xla else [False]
    runners = [Runner(PLAIN, args.size, args.batch_size, False, args.predict)]
    runners += [Runner(v, args.size, args.batch_size, jit, args.predict) for v in args.variants for jit in modes]
    rows = interleaved_throughput(runners, args.steps, args.repeats)
    baseline = rows[0]["images_per_s"]
    task = "Inference (model.predict)" if args.predict else "Training"
    print(f"\n{task} throughput at {args.size}x{args.size}, batch {args.batch_size} (median of {args.repeats})")
    print(f"| model | parameters | images/s | vs plain U-Net |\n|---|---|---|---|")
    for row in rows:
        ratio = row["images_per_s"] / baseline
        print(f"| {row['variant']} | {row['params'] / 1e6:.2f}M | {row['images_per_s']:.2f} | {ratio:.2f}x |")
    if args.json:
        result = {"size": args.size, "batch_size": args.batch_size, "predict": args.predict, "results": rows}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
