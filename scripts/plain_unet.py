"""The U-Net users write themselves, and a worker that times it in a TensorFlow process of its own.

    python scripts/plain_unet.py --serve --size 128 --batch-size 8 [--predict]

`plain_unet` is the baseline of `bench_model.py` and `profile_step.py`: two
3x3 ReLU convolutions per level, no normalisation, transposed-convolution
upsampling, independent of this package. This module never imports
`tf_resattn`, so with `--serve` the model runs under TensorFlow's own
settings, as in a user's script (the package turns oneDNN on where TensorFlow
leaves it off; see `tf_resattn_process/onednn.py`). The worker builds and
compiles the model, trains (or predicts) two warm-up steps on a fixed random
batch, prints `ready PARAMETERS ONEDNN`, then answers every line `STEPS` on
its standard input with the images per second of that many steps.
"""

import argparse
import sys
import time

import keras
import numpy as np


def plain_unet(input_shape, num_classes=4, base_filters=32, depth=4):
    """`[B, H, W, channels]` -> softmax `[B, H, W, num_classes]`."""

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


class Timer:
    """A compiled model with a fixed random batch; `run(steps)` returns images/s of training or prediction."""

    def __init__(self, model, size, batch_size, predict, jit_compile=False):
        model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", jit_compile=jit_compile)
        self.model = model
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


def onednn_enabled():
    """Whether this process's TensorFlow runs its oneDNN kernels."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def serve(size, batch_size, predict):
    timer = Timer(plain_unet((size, size, 1)), size, batch_size, predict)
    print(f"ready {timer.model.count_params()} {int(onednn_enabled())}", flush=True)
    for line in sys.stdin:
        print(f"{timer.run(int(line)):.6f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", required=True, help="answer timing requests on stdin")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--predict", action="store_true")
    args = parser.parse_args()
    serve(args.size, args.batch_size, args.predict)
