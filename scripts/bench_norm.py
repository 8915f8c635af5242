"""The fused group norm against Keras's, forward+backward, at the model's feature-map shapes.

    python scripts/bench_norm.py --batch-size 8 --size 128

For each level of the default model (base 32 filters, depth 4: 32 channels at
full resolution, doubling as the map halves) times one `tf.function` that
normalises a random map and takes the gradients of input, gamma and beta,
with `tf_resattn.layers.GroupNormalization` (the compiled op) and with
`keras.layers.GroupNormalization` (8 groups each), interleaved; prints the
medians in ms.
"""

import argparse
import pathlib
import sys

import tf_resattn_process

tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/: beside the package, outside the wheel

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_resattn import layers  # noqa: E402
from tools.benchmarks.timing import interleaved_medians  # noqa: E402


def forward_backward(layer, x):
    """A callable that runs `layer` on `x` and its gradients, blocking until done."""

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    return lambda: [gradient.numpy() for gradient in step()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="full-resolution height and width (default 128)")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    print(f"\nGroup norm forward+backward, batch {args.batch_size}, 8 groups (median of {args.repeats}, ms)")
    print("| map | Keras `GroupNormalization` | fused | speed-up |\n|---|---|---|---|")
    for level in range(5):
        side, channels = args.size // 2**level, 32 * 2**level
        x = tf.random.normal((args.batch_size, side, side, channels))
        functions = {}
        for name, layer_class in (("keras", keras.layers.GroupNormalization), ("fused", layers.GroupNormalization)):
            layer = layer_class(groups=8)
            layer.build(x.shape)
            functions[name] = forward_backward(layer, x)
        medians = interleaved_medians(functions, args.repeats)
        keras_ms, fused_ms = medians["keras"] * 1e3, medians["fused"] * 1e3
        print(f"| {side}x{side}x{channels} | {keras_ms:.1f} | {fused_ms:.1f} | {keras_ms / fused_ms:.1f}x |")


if __name__ == "__main__":
    main()
