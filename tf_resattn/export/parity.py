"""Parity of the exported files with the Keras model, on real slices when present.

For each TFLite file: the largest absolute difference of the probabilities and
the share of pixels whose label (argmax) agrees, against the Keras model on the
same model inputs at the training size (`tf_resattn.data.framing`: lung crop,
scaling, resizing). For the SavedModel: the same against the NumPy pipeline (the
framing, the Keras model, probabilities put back at the input size), on the raw
slices at their own size, as `predict` serves it (`SavedModelPredictor`).
Targets (pixel agreement): float32 99.99 %, float16 99.9 %, int8 99 %.
"""

import pathlib

import numpy as np

from tf_resattn.data.framing import model_inputs, slice_regions, source_probabilities
from tf_resattn.inference.predictors import SavedModelPredictor
from tf_resattn.inference.tflite_runner import TFLiteRunner
from tf_resattn.io import read_scans

TARGETS_PERCENT = {"fp32": 99.99, "fp16": 99.9, "int8": 99.0}
MEDSEG100 = pathlib.Path("../shared/data/medseg100")


def parity_slices(preprocessing, count=16, data_dir=MEDSEG100):
    """Raw slices to compare on: `(slices float32 [N, H, W], description)`.

    8-bit models get `count` MedSeg slices spread over `data_dir/images` when it
    exists; otherwise (and for HU models) synthetic CT slices of 256x256 in the
    model's input kind.
    """
    images = sorted((pathlib.Path(data_dir) / "images").glob("*.png"))
    if preprocessing.input_kind == "uint8" and images:
        chosen = [images[i] for i in np.linspace(0, len(images) - 1, count).round().astype(int)]
        slices = np.concatenate([scan.slices for path in chosen for scan in read_scans(path)]).astype(np.float32)
        return slices, f"{len(chosen)} real slices of {data_dir}"
    from tf_resattn.data import synthetic_hu_slices

    hu, _ = synthetic_hu_slices(n=count, image_size=256, seed=1)
    if preprocessing.input_kind == "hu":
        return hu.astype(np.float32), f"{count} synthetic CT slices (HU), 256x256"
    low, high = preprocessing.hu_window
    grey = np.round(np.clip((hu - low) / (high - low), 0, 1) * 255)
    return grey.astype(np.float32), f"{count} synthetic CT slices (8-bit), 256x256"


def agreement(reference, candidate):
    """`{"max_abs_probability_difference", "pixel_agreement_percent"}` of two probability arrays `[..., C]`."""
    return {
        "max_abs_probability_difference": float(np.max(np.abs(reference - candidate))),
        "pixel_agreement_percent": float(100.0 * np.mean(reference.argmax(-1) == candidate.argmax(-1))),
    }


def parity_report(model, preprocessing, export_dir, raw_slices, description, batch_size=8):
    """Compares every exported file in `export_dir` with `model`.

    Args:
        model: the Keras model.
        preprocessing: its `Preprocessing` (with the training `image_size`).
        export_dir: folder holding `saved_model/` and `model_<q>.tflite`.
        raw_slices: float32 `[N, H, W]` raw slices (see `parity_slices`).
        description: where the slices came from, for the report.
        batch_size: slices per call.

    Returns:
        A JSON-serialisable dict: `slices`, then per file (`saved_model`, `fp32`,
        `fp16`, `int8`) its agreement, `file_size_bytes` and, for TFLite, the
        `target_percent` and `meets_target`.
    """
    export_dir = pathlib.Path(export_dir)
    regions = slice_regions(raw_slices, preprocessing)
    images = model_inputs(raw_slices, preprocessing, regions)
    reference = model.predict(images, batch_size=batch_size, verbose=0)
    report = {"slices": description}

    served = SavedModelPredictor(export_dir / "saved_model")
    served_probabilities = np.concatenate(
        [served(raw_slices[i : i + batch_size]) for i in range(0, len(raw_slices), batch_size)]
    )
    report["saved_model"] = agreement(source_probabilities(reference, preprocessing, regions), served_probabilities)
    report["saved_model"]["file_size_bytes"] = sum(
        f.stat().st_size for f in (export_dir / "saved_model").rglob("*") if f.is_file()
    )

    for quantization, target in TARGETS_PERCENT.items():
        path = export_dir / f"model_{quantization}.tflite"
        runner = TFLiteRunner(path)
        probabilities = np.concatenate([runner(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        entry = agreement(reference, probabilities)
        entry.update(
            file_size_bytes=path.stat().st_size,
            target_percent=target,
            meets_target=entry["pixel_agreement_percent"] >= target,
        )
        report[quantization] = entry
    return report


def format_parity(report):
    """The parity report as a text table."""
    lines = [
        f"parity on {report['slices']}",
        f"{'file':<12} {'max |dp|':>10} {'agreement %':>12} {'target %':>9} {'size MB':>8}",
    ]
    for name in ("saved_model",) + tuple(TARGETS_PERCENT):
        entry = report[name]
        target = entry.get("target_percent")
        verdict = "" if target is None else ("  ok" if entry["meets_target"] else "  BELOW TARGET")
        lines.append(
            f"{name:<12} {entry['max_abs_probability_difference']:>10.2e} {entry['pixel_agreement_percent']:>12.4f} "
            f"{'-' if target is None else target:>9} {entry['file_size_bytes'] / 1e6:>8.2f}{verdict}"
        )
    return "\n".join(lines)
