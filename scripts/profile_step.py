"""Where a training step spends its time: a profile by op type and by layer.

    python scripts/profile_step.py --variant resattn --size 128 --batch-size 8

Builds the variant (or the plain Keras U-Net of `plain_unet.py` with
`--variant plain`), runs a few warm-up steps, then records `--steps`
training steps with TensorFlow's profiler and sums the time of every op
executed, by op type and by the model's top-level layer (the gradient ops
counted with their layer). Ops run one at a time (one inter-op thread, each
op still using every core), so that an op's time is its own and not time
spent waiting for cores that other ops hold; the sum comes close to the
wall time of the step.
"""

import argparse
import collections
import pathlib
import re
import tempfile
import time

import tf_resattn_process

tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from plain_unet import plain_unet  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import tf_resattn  # noqa: E402

# Ops that only call other ops (their children are counted instead).
CALLS = {"PartitionedCall", "StatefulPartitionedCall", "While", "If", "StatelessIf", "StatelessWhile"}
OP_EVENT = re.compile(r"^([^:]+):([A-Za-z0-9_>]+)$")


def op_times(logdir):
    """`[(op_name, op_type, seconds)]` of every op the host ran, from the profile in `logdir`."""
    events = []
    for path in pathlib.Path(logdir).rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace.FromString(path.read_bytes())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                for event in line.events:
                    match = OP_EVENT.match(plane.event_metadata[event.metadata_id].name)
                    if match and match.group(2) not in CALLS:
                        events.append((match.group(1), match.group(2), event.duration_ps * 1e-12))
    return events


def layer_of(op_name, model_name):
    """The model's top-level layer that an op belongs to (forward or gradient), else its first name scope."""
    parts = [part for part in op_name.split("/") if part != "gradient_tape"]
    if parts[0].startswith(model_name) and len(parts) > 2:
        return parts[1]
    return parts[0] if len(parts) > 1 else "(other)"


def table(title, totals, steps, limit):
    """Markdown rows of the `limit` largest entries of `totals` (seconds) per step, with their shares."""
    total = sum(totals.values())
    lines = [f"| {title} | ms per step | share |", "|---|---|---|"]
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1])[:limit]:
        lines.append(f"| {name} | {seconds / steps * 1e3:.0f} | {seconds / total:.0%} |")
    lines.append(f"| all ops | {total / steps * 1e3:.0f} | 100% |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="resattn", choices=("plain", *tf_resattn.VARIANTS))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="profiled training steps")
    parser.add_argument("--top", type=int, default=12, help="rows per table")
    args = parser.parse_args(argv)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    shape = (args.size, args.size, 1)
    model = plain_unet(shape) if args.variant == "plain" else tf_resattn.build_model(args.variant, input_shape=shape)
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, *shape), dtype=np.float32)
    labels = rng.integers(0, 4, (args.batch_size, args.size, args.size))
    for _ in range(2):  # tracing and warm-up
        model.train_on_batch(images, labels)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(images, labels)
        wall = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        events = op_times(logdir)
    by_type, by_layer = collections.Counter(), collections.Counter()
    for name, op_type, seconds in events:
        by_type[op_type] += seconds
        by_layer[layer_of(name, model.name)] += seconds
    print(
        f"\n{args.variant}, training step at {args.size}x{args.size}, batch {args.batch_size}: {wall * 1e3:.0f} ms wall"
    )
    print(table("op type", by_type, args.steps, args.top))
    print()
    print(table("layer", by_layer, args.steps, args.top))


if __name__ == "__main__":
    main()
