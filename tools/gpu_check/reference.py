"""The CPU TensorFlow reference of forward and backward passes at the check's sizes, and the comparison with it.

`make_reference(out, sizes)` (TensorFlow backend, on a CPU) builds each variant of
`PARITY_VARIANTS`, overwrites its weights from a fixed NumPy seed (`weights.py`, so they need not
be carried), and saves in `out`:

- `reference.json`: the sizes, versions, which TensorFlow path ran the LSH kernels, and per
  variant the weight checksums, the mean cross-entropy, and per trainable variable its
  gradient's norm and two seeded random projections;
- `reference.npz`: the input images float32 `[B, S, S, 1]` (synthetic CT), labels uint8
  `[B, S, S]`, and per variant the probabilities `[B, S, S, 4]` and the gradient of the loss with
  respect to the images `[B, S, S, 1]`.

At the paper's sizes (batch 2 at 369x369) the folder holds about 11 MB.

`compare_reference(folder)` (any backend; meant for JAX on a GPU) rebuilds the same models and
weights and compares (`TOLERANCES`, per variant). The two sides do not compute alike: the CPU runs the
compiled C++ kernels (or the pure-TensorFlow path) and the GPU XLA's fused kernels, with other
summation orders; float32 rounding then differs by about 1e-7 relative per operation. LSH
attention is not continuous in its inputs: a token whose two best hash rotations nearly tie can
fall into another bucket, which moves the chunk boundaries of its round and changes the outputs of
a few tokens by far more than rounding. The tolerances therefore bound typical errors (means,
norms, nearly every pixel's label) and report the largest single difference.
"""

import json
import pathlib

import keras
import numpy as np

from tf_resattn import losses
from tf_resattn.models import build_model
from tools.gpu_check.gradients import loss_and_gradients
from tools.gpu_check.sizes import NUM_CLASSES, PARITY_VARIANTS, sizes_from_dict
from tools.gpu_check.weights import assign_seeded_weights, weight_checksums

WEIGHT_SEED = 0
PROBE_SEED = 1
PROBES = 2
TOLERANCES = {
    "unet": {
        "prob_mean_abs": 1e-5,
        "label_agreement": 0.9999,
        "loss_rel": 1e-4,
        "d_images_rel_l2": 2e-2,
        "grad_norm_rel_max": 2e-3,
        "grad_probe_rel_max": 2e-3,
    },
    "resattn": {
        "prob_mean_abs": 1e-3,
        "label_agreement": 0.995,
        "loss_rel": 1e-3,
        "d_images_rel_l2": 1e-1,
        "grad_norm_rel_max": 5e-3,
        "grad_probe_rel_max": 5e-3,
    },
}
"""Pass limits per variant: mean absolute probability difference; share of pixels with the same
argmax (at least); relative difference of the loss; relative L2 error of the image gradient; the
largest relative error over trainable variables of the gradient's norm and of its random
projections (divided by the reference gradient's norm).

Set from JAX on a CPU against the TensorFlow reference at 369x369 (both float32 on one CPU; the
figures in brackets), with room for a GPU's other convolution algorithms. `unet`: probabilities
(1.5e-7 mean), labels (99.9996 %) and weight gradients (1.4e-4) agree to rounding; the image
gradient (3.5e-3) sums many cancelling terms through the whole network. `resattn`: most likely
(not yet confirmed by counting) the hash ties of the module docstring, changing the bucket of a
few of the 147456 tokens per image and round, give 1.2e-4 mean probability difference, 99.90 %
equal labels and 2.0e-2 on the image gradient, while the weight gradients (6.7e-4) stay close.
These limits could let a small systematic error of the attention pass; at the dry run's sizes,
where every figure agrees to rounding, and in the op tests the attention is checked tightly."""


def reference_model(variant, sizes):
    """The variant at `sizes`, built in a fresh Keras session (same variable names on every backend), seeded weights."""
    keras.backend.clear_session()
    model = build_model(
        variant,
        input_shape=(sizes.image_size, sizes.image_size, 1),
        num_classes=NUM_CLASSES,
        seed=WEIGHT_SEED,
        **sizes.model,
    )
    return assign_seeded_weights(model, WEIGHT_SEED)


def gradient_summary(gradients):
    """Per trainable variable: `{"norm", "probes"}`, the probes `<g, r> / |r|` for seeded uniform `r`."""
    rows = []
    for index, g in enumerate(gradients):
        g = np.asarray(g, dtype=np.float64).ravel()
        rng = np.random.default_rng([PROBE_SEED, index])
        probes = []
        for _ in range(PROBES):
            r = rng.random(g.shape) * 2.0 - 1.0
            probes.append(float(g @ r / max(np.linalg.norm(r), 1e-30)))
        rows.append({"norm": float(np.linalg.norm(g)), "probes": probes})
    return rows


def run_variant(variant, sizes, images, labels):
    """Builds `variant` and runs the forward and backward pass; returns (summary dict, arrays dict)."""
    model = reference_model(variant, sizes)
    loss = losses.get("ce", NUM_CLASSES)
    value, probabilities, d_images, gradients = loss_and_gradients(model, loss, images, labels)
    summary = {
        "parameters": int(model.count_params()),
        "weights": weight_checksums(model),
        "trainable": [v.path for v in model.trainable_variables],
        "loss": value,
        "gradients": gradient_summary(gradients),
    }
    return summary, {f"{variant}_probabilities": probabilities, f"{variant}_d_images": d_images}


def make_reference(out, sizes):
    """Writes `reference.json` and `reference.npz` into `out` (TensorFlow backend); returns the folder."""
    from tf_resattn.data import synthetic_slices

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"the reference is TensorFlow's result; run --make-reference with KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}"
        )
    from tf_resattn import ops

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slices = synthetic_slices(n=sizes.parity_batch, image_size=sizes.image_size, seed=0)
    images, labels = slices.images.astype(np.float32), slices.masks.astype(np.uint8)
    in_use, reason = ops.compiled_kernels()
    meta = {
        "sizes": sizes.to_dict(),
        "keras": keras.__version__,
        "backend": "tensorflow",
        "tensorflow": _tensorflow_version(),
        "compiled_ops": bool(in_use),
        "ops_reason": reason,
        "variants": {},
    }
    arrays = {"images": images, "labels": labels}
    for variant in PARITY_VARIANTS:
        meta["variants"][variant], more = run_variant(variant, sizes, images, labels)
        arrays.update(more)
    np.savez_compressed(out / "reference.npz", **arrays)
    (out / "reference.json").write_text(json.dumps(meta, indent=1))
    return out


def load_reference(folder):
    """`(meta dict, arrays dict)` of a reference folder; ValueError naming the fix when it is incomplete."""
    folder = pathlib.Path(folder)
    missing = [name for name in ("reference.json", "reference.npz") if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{folder} lacks {', '.join(missing)}; make it with scripts/gpu_check.py --make-reference {folder} under TensorFlow"
        )
    meta = json.loads((folder / "reference.json").read_text())
    with np.load(folder / "reference.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


def compare_variant(variant, sizes, want, arrays):
    """Runs `variant` here and compares with the reference; returns a dict of figures, `ok` and `failed`."""
    got, got_arrays = run_variant(variant, sizes, arrays["images"], arrays["labels"])
    _check_same_weights(variant, got["weights"], want["weights"])
    p_got, p_want = got_arrays[f"{variant}_probabilities"], arrays[f"{variant}_probabilities"]
    d_got, d_want = got_arrays[f"{variant}_d_images"], arrays[f"{variant}_d_images"]
    figures = {
        "prob_max_abs": float(np.max(np.abs(p_got - p_want))),
        "prob_mean_abs": float(np.mean(np.abs(p_got - p_want))),
        "label_agreement": float(np.mean(np.argmax(p_got, -1) == np.argmax(p_want, -1))),
        "loss_rel": abs(got["loss"] - want["loss"]) / max(abs(want["loss"]), 1e-30),
        "d_images_rel_l2": float(np.linalg.norm(d_got - d_want) / max(np.linalg.norm(d_want), 1e-30)),
    }
    norm_errors, probe_errors = [], []
    for g, w in zip(got["gradients"], want["gradients"]):
        scale = max(w["norm"], 1e-30)
        norm_errors.append(abs(g["norm"] - w["norm"]) / scale)
        probe_errors.append(max(abs(a - b) for a, b in zip(g["probes"], w["probes"])) / scale)
    worst = int(np.argmax(np.maximum(norm_errors, probe_errors)))
    figures.update(
        grad_norm_rel_max=float(max(norm_errors)),
        grad_probe_rel_max=float(max(probe_errors)),
        worst_variable=want["trainable"][worst],
    )
    failed = [
        k
        for k, limit in TOLERANCES[variant].items()
        if (figures[k] < limit if k == "label_agreement" else not figures[k] <= limit)
    ]
    return {"variant": variant, "parameters": got["parameters"], **figures, "ok": not failed, "failed": failed}


def compare_reference(folder):
    """Compares every variant of the reference in `folder` on this backend; returns a list of `compare_variant` dicts."""
    meta, arrays = load_reference(folder)
    sizes = sizes_from_dict(meta["sizes"])
    return [compare_variant(v, sizes, want, arrays) for v, want in meta["variants"].items()]


def _check_same_weights(variant, got, want):
    """Raises ValueError unless both sides hold the same seeded weights (shapes and checksums)."""
    if [w["shape"] for w in got] != [w["shape"] for w in want]:
        raise ValueError(
            f"{variant}: the model's variables differ from the reference's; make the reference with this version of tf_resattn"
        )
    for g, w in zip(got, want):
        for key in ("sum", "sum_sq"):
            if not np.isclose(g[key], w[key], rtol=1e-9, atol=1e-9):
                raise ValueError(
                    f"{variant}: weight {w['path']} differs from the reference ({key} {g[key]!r} vs {w[key]!r}); "
                    "NumPy's generator gave other values here, so the parity check cannot run"
                )


def _tensorflow_version():
    import tensorflow as tf

    return tf.__version__
