"""Training (or inference) throughput of the variants against a plain Keras U-Net, side by side.

    python scripts/bench_model.py --size 128 --json OUT
    python scripts/bench_model.py --size 256 --batch-size 4
    python scripts/bench_model.py --predict --size 512 --batch-size 1

The baseline is the U-Net a user would write without this package
(`plain_unet.py`: two 3x3 ReLU convolutions per level, no normalisation,
transposed-convolution upsampling, same width and depth), run in a
TensorFlow process of its own with TensorFlow's settings, as in the user's
own script; every row is reported against it. The same U-Net runs again in
this process, under the package's settings (oneDNN on where TensorFlow
leaves it off, see `tf_resattn_process/onednn.py`), so the table shows what
those settings do to it. Each model is trained on random images and labels
(batch 8 by default) for a few warm-up steps, then timed over several
repeats; the median images per second is reported with the parameter count.
The repeats are interleaved (every model once per repeat, one at a time; the
baseline's process waits while the others run), so a change in the machine's
load falls on all models alike and the ratios stay comparable. `--predict`
times `model.predict` instead of training steps. `--xla` adds a row per
variant with the step compiled by XLA (`jit_compile=True`; the LSH layers
then run their kernels as XLA custom calls).

Beside images/s, each model's FLOPs per image (forward and backward of a
training step; the forward pass with `--predict`) and the rate it achieves
(GFLOP/s = FLOPs per image x images/s / 1e9), so that a gap to the plain
U-Net splits into more arithmetic ("arithmetic vs plain") and arithmetic done
slower ("GFLOP/s vs plain"): "vs plain U-Net" is the second divided by the
first. The FLOPs are XLA's count for the same model built under Keras's JAX
backend in a separate process (`tools/benchmarks/flops.py`; the LSH kernels
themselves cannot be counted); "n/a" where that fails or JAX is missing,
with the reason below the table. `--no-flops` leaves the count out.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

import tf_resattn_process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/: beside the package, outside the wheel

USERS_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")  # read before the set-up gives its default
tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices

from plain_unet import Timer, onednn_enabled, plain_unet  # noqa: E402

import tf_resattn  # noqa: E402
from tools.benchmarks import flops  # noqa: E402

PLAIN = "plain Keras U-Net"


class InProcess:
    """A model timed in this process (`Timer`), named for the table; `model` names what it builds for counting."""

    def __init__(self, name, model, size, batch_size, predict, jit_compile=False, key="plain"):
        self.name, self.model = name, key
        self.params = model.count_params()
        self.timer = Timer(model, size, batch_size, predict, jit_compile)

    def run(self, steps):
        return self.timer.run(steps)


class PlainProcess:
    """The plain U-Net timed by `plain_unet.py --serve` in a fresh process with TensorFlow's own settings."""

    def __init__(self, size, batch_size, predict):
        env = dict(os.environ)
        if USERS_ONEDNN is None:  # the package's default, not the user's: leave the choice to TensorFlow
            env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        script = pathlib.Path(__file__).with_name("plain_unet.py")
        command = [sys.executable, str(script), "--serve", "--size", str(size), "--batch-size", str(batch_size)]
        self.errors = tempfile.TemporaryFile(mode="w+")  # TensorFlow's start-up notices; shown if it fails
        self.worker = subprocess.Popen(
            command + (["--predict"] if predict else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            env=env,
        )
        ready = self.worker.stdout.readline().split()
        if not ready or ready[0] != "ready":
            self.errors.seek(0)
            sys.stderr.write(self.errors.read())
            raise RuntimeError(f"the baseline's process ({' '.join(command)}) did not start; its errors are above")
        self.params, onednn = int(ready[1]), ready[2] == "1"
        self.model = "plain"
        self.name = f"{PLAIN}, own process (oneDNN {'on' if onednn else 'off'}: TensorFlow's setting)"

    def run(self, steps):
        self.worker.stdin.write(f"{steps}\n")
        self.worker.stdin.flush()
        return float(self.worker.stdout.readline())

    def close(self):
        self.worker.stdin.close()
        self.worker.wait()
        self.errors.close()


def interleaved_throughput(runners, steps, repeats):
    """Median images/s per runner; each repeat times every runner in turn, so load changes hit all alike."""
    rates = {runner.name: [] for runner in runners}
    for _ in range(repeats):
        for runner in runners:
            rates[runner.name].append(runner.run(steps))
    return [
        {"variant": r.name, "model": r.model, "params": r.params, "images_per_s": statistics.median(rates[r.name])}
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
    parser.add_argument("--no-flops", action="store_true", help="leave out the FLOP count (a JAX process)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    shape = (args.size, args.size, 1)
    here = f"this process (oneDNN {'on' if onednn_enabled() else 'off'})"
    baseline = PlainProcess(args.size, args.batch_size, args.predict)
    runners = [baseline, InProcess(f"{PLAIN}, {here}", plain_unet(shape), args.size, args.batch_size, args.predict)]
    for variant in args.variants:
        for jit in [False, True] if args.xla else [False]:
            name = f"{variant} (XLA)" if jit else variant
            model = tf_resattn.build_model(variant, input_shape=shape)
            runners.append(InProcess(name, model, args.size, args.batch_size, args.predict, jit, variant))
    try:
        rows = interleaved_throughput(runners, args.steps, args.repeats)
    finally:
        baseline.close()
    models = {key: {"model": key, "input_shape": list(shape)} for key in dict.fromkeys(row["model"] for row in rows)}
    if args.no_flops:
        counts = {key: flops.Count(error="--no-flops") for key in models}
    else:
        counts = flops.count_flops(models, args.batch_size, args.predict)
    flops.with_arithmetic(rows, counts)
    task = "Inference (model.predict)" if args.predict else "Training"
    step = "forward pass" if args.predict else "forward + backward"
    print(f"\n{task} throughput at {args.size}x{args.size}, batch {args.batch_size} (median of {args.repeats})")
    print(f"FLOPs per image: XLA's count of the {step} under Keras's JAX backend\n")
    print(flops.format_throughput_table(rows))
    for error in dict.fromkeys(row["flops_error"] for row in rows if row["flops_error"]):
        print(f"\nn/a: {error}")
    if args.json:
        result = {"size": args.size, "batch_size": args.batch_size, "predict": args.predict, "results": rows}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
