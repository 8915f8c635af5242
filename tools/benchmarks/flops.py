"""FLOPs per image of a model's training step (or prediction), counted by XLA on Keras's JAX backend.

    python tools/benchmarks/flops.py --batch-size 8 '{"plain": {"model": "plain", "input_shape": [128, 128, 1]}}'

The package's LSH layers run custom C++ kernels under TensorFlow, which no
profiler can count. So the count comes from another process, with
`KERAS_BACKEND=jax` (and `JAX_PLATFORMS=cpu`, so the figure does not depend on
the machine): the same model, built with the same arguments, runs there on
its pure path (the same arithmetic, written in Keras ops); a training step's
loss and gradient is written as a pure function (`model.stateless_call`,
`jax.value_and_grad`), compiled by XLA, and XLA's cost analysis gives its
`flops` (multiply-adds count two; elementwise ops one per element; sorts and
gathers almost nothing). That figure divided by the batch size is the FLOPs
per image: forward plus backward of the sparse cross-entropy on the softmax
output, the optimizer's update left out (about ten FLOPs per parameter per
step, under 0.1 % here). With `predict`, the forward pass alone
(`training=False`).

`count_flops` starts that process and never raises for a model that cannot be
counted: its entry carries the reason (`Count.error`), and the tables show
"n/a". `with_arithmetic` and `format_throughput_table` add the figures to the
rows of `scripts/bench_model.py` and print them.
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "scripts"
"""Where `plain_unet.py` lives (the model `"plain"`)."""


@dataclasses.dataclass
class Count:
    """One model's count: `flops_per_image` and `params`, or None and the `error` that prevented it."""

    flops_per_image: float | None = None
    params: int | None = None
    error: str | None = None


def jax_installed():
    """Whether JAX can be imported (it is the `[test]` extra's, not a runtime dependency)."""
    return importlib.util.find_spec("jax") is not None


def count_flops(models, batch_size, predict=False, timeout=1800):
    """FLOPs per image of each model, counted in one JAX-backend process.

    Args:
        models: dict label -> `{"model": "plain" or a variant, **arguments}`;
            "plain" builds `plain_unet(**arguments)` (`scripts/plain_unet.py`),
            a variant `tf_resattn.build_model(variant, **arguments)`. The
            arguments must include `input_shape` `(H, W, channels)` with H and
            W given, and be JSON (lists for tuples).
        batch_size: images per step `B`; the step sees `[B, H, W, channels]`
            images and `[B, H, W]` integer labels.
        predict: count the forward pass alone (`training=False`) instead of
            the training step's loss and gradient.
        timeout: seconds for the whole process; models not counted by then get
            an error.

    Returns:
        dict label -> `Count`, one per model, in the order given.
    """
    if not jax_installed():
        return {label: Count(error="JAX is not installed (pip install jax)") for label in models}
    # The pure path: XLA cannot count the arithmetic inside the LSH kernels' custom calls.
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_RESATTN_PURE_TF": "1"}
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--batch-size", str(batch_size)]
    command += ["--predict"] if predict else []
    try:
        result = subprocess.run(
            command + [json.dumps(models)], env=env, capture_output=True, text=True, timeout=timeout
        )
        stdout, failure = result.stdout, f"the JAX process exited with {result.returncode}"
        stderr = result.stderr
    except subprocess.TimeoutExpired as timed_out:
        stdout, stderr = (_text(output) for output in (timed_out.stdout, timed_out.stderr))
        failure = f"the JAX process ran past {timeout} s"
    counts = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            answer = json.loads(line)
            label = answer.pop("label")
            counts[label] = Count(**answer)
    last_error = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    missing = Count(error=": ".join([failure] + last_error))
    return {label: counts.get(label, missing) for label in models}


def _text(output):
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def build(model="plain", **arguments):
    """The model named `model` ("plain" or a variant of `tf_resattn.VARIANTS`), built with `arguments`."""
    if model == "plain":
        if str(SCRIPTS) not in sys.path:
            sys.path.insert(0, str(SCRIPTS))
        from plain_unet import plain_unet

        return plain_unet(**arguments)
    import tf_resattn

    return tf_resattn.build_model(model, **arguments)


def step_flops(model, batch_size, predict=False):
    """XLA's FLOP count of one step of `model` on a batch of `batch_size` (this process's backend must be JAX).

    The step maps `[B, H, W, channels]` float32 images (and, for training,
    `[B, H, W]` int32 labels) to the mean sparse cross-entropy and its
    gradient with respect to every trainable weight; with `predict`, to the
    `[B, H, W, classes]` probabilities.
    """
    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"counting needs KERAS_BACKEND=jax; this process runs {keras.backend.backend()}")
    height, width, channels = model.input_shape[1:]
    images = np.zeros((batch_size, height, width, channels), np.float32)
    labels = np.zeros((batch_size, height, width), np.int32)
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()

    def loss(trainable, non_trainable, images, labels):
        outputs, non_trainable, losses = model.stateless_call(
            trainable, non_trainable, images, training=True, return_losses=True
        )
        return cross_entropy(labels, outputs) + sum(losses), non_trainable

    def forward(trainable, non_trainable, images):
        return model.stateless_call(trainable, non_trainable, images, training=False)[0]

    if predict:
        lowered = jax.jit(forward).lower(trainable, non_trainable, images)
    else:
        lowered = jax.jit(jax.value_and_grad(loss, has_aux=True)).lower(trainable, non_trainable, images, labels)
    analysis = lowered.compile().cost_analysis()
    if isinstance(analysis, list | tuple):  # older JAX: one dict per device program
        analysis = analysis[0]
    return float(analysis["flops"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", help='JSON: {label: {"model": "plain" or a variant, **arguments}}')
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--predict", action="store_true", help="count the forward pass alone")
    args = parser.parse_args(argv)
    for label, arguments in json.loads(args.models).items():
        try:
            model = build(**arguments)
            flops = step_flops(model, args.batch_size, args.predict) / args.batch_size
            answer = {"flops_per_image": flops, "params": model.count_params()}
        except Exception as error:  # one model's failure leaves the others counted
            answer = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
        print(json.dumps({"label": label, **answer}), flush=True)


def with_arithmetic(rows, counts):
    """Adds `flops_per_image`, `gflop_per_s` (None where not counted) and `flops_error` to the benchmark's rows.

    Args:
        rows: dicts with "images_per_s", "params" and "model" (a key of `counts`).
        counts: dict model -> `Count`. A count whose parameter count differs
            from the row's is not the same model and is not used.
    """
    for row in rows:
        count = counts.get(row["model"], Count(error="not counted"))
        error = count.error
        if error is None and count.params != row["params"]:
            error = f"the JAX build has {count.params} parameters, not {row['params']}"
        flops = None if error else count.flops_per_image
        row["flops_per_image"] = flops
        row["gflop_per_s"] = None if flops is None else flops * row["images_per_s"] / 1e9
        row["flops_error"] = error
    return rows


def format_throughput_table(rows):
    """Markdown table of the rows of `with_arithmetic`, every ratio against the first row; "n/a" where uncounted.

    "vs plain U-Net" (images/s) is "GFLOP/s vs plain" divided by "arithmetic vs plain".
    """

    def ratio(key, row):
        if row[key] is None or rows[0][key] is None:
            return "n/a"
        return f"{row[key] / rows[0][key]:.2f}x"

    lines = [
        "| model | parameters | images/s | vs plain U-Net | GFLOP/image | arithmetic vs plain | GFLOP/s | GFLOP/s vs plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        flops = "n/a" if row["flops_per_image"] is None else f"{row['flops_per_image'] / 1e9:.1f}"
        rate = "n/a" if row["gflop_per_s"] is None else f"{row['gflop_per_s']:.1f}"
        lines.append(
            f"| {row['variant']} | {row['params'] / 1e6:.2f}M | {row['images_per_s']:.2f} | "
            f"{ratio('images_per_s', row)} | {flops} | {ratio('flops_per_image', row)} | {rate} | "
            f"{ratio('gflop_per_s', row)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
