"""`predict_path`: segment slices or volumes with any exported model, write labels, overlays and a report.

Output folder (written under a temporary name, put in place when complete; an
existing one is replaced only with `overwrite`, and only when an earlier run
wrote it; one run at a time per folder: `output_folder.py`):

- `labels/`: label maps in the input's format and geometry (`tf_resattn.io.write_labels`;
  a DICOM SEG for a DICOM series);
- `overlays/`: colour overlay PNGs with a legend, of the slices with the most infection (`overlays`);
- `report.json`: the model, the input, the lung-field method, the speed (slices per second, peak
  memory) and, per scan, its files, its count of non-finite voxels (read as the scan's lowest value
  and labelled background), its batch size and quantification (`quantify.py`).

Every scan, one slice or a 300-slice volume, goes through the same loop in batches of `batch_size`
slices (chosen from the frame size and free memory by default: `memory.py`), with a progress bar over
all slices; a worker thread frames the next batch and finishes the last while the model runs
(`pipeline.py`). The report gives the slices per second and the process's peak memory.
"""

import dataclasses
import os
import time
import warnings
from collections.abc import Callable

import keras
import numpy as np

from tf_resattn.arguments import is_positive_int
from tf_resattn.data.preprocessing import detect_input_kind, window_to_grey
from tf_resattn.inference import lung_field as lung_field_module
from tf_resattn.inference.ensemble import fold_models
from tf_resattn.inference.errors import InferenceError
from tf_resattn.inference.memory import auto_batch_size, peak_memory_mb
from tf_resattn.inference.model_files import model_kind, released_or_path
from tf_resattn.inference.output_folder import output_folder, refuse_overlap, write_json
from tf_resattn.inference.overlays import DEFAULT_OVERLAYS, check_overlay_choice, write_overlays
from tf_resattn.inference.pipeline import pipelined
from tf_resattn.inference.predictors import load_predictor, trust_notice
from tf_resattn.inference.quantify import format_table, quantify
from tf_resattn.io import DataError, check_writable, read_scans, write_labels
from tf_resattn.io.non_finite import non_finite_count

MIN_SLICE_SIDE = 16
"""Pixels per side below which an input is no CT slice (those are about 512x512) and is refused."""


def segment(predictor, slices, batch_size, on_batch=None, regions=None):
    """Label maps uint8 `[N, H, W]` (a list when sizes differ) of raw slices `[N, H, W]`, `batch_size` at a time.

    `regions`: the slices' `SliceRegion`s (`tf_resattn.data.framing.slice_regions`), or None to let the predictor
    find them. Batches go through `pipeline.pipelined`: the next one is framed while the model runs.
    """
    return _joined(
        _batched(
            predictor,
            slices,
            batch_size,
            lambda start, prepared, outputs: predictor.labels(prepared, outputs),
            on_batch,
            regions,
        )
    )


def segment_scan(predictor, scan, batch_size, on_batch=None):
    """Label maps uint8 `[N, H, W]` of one scan, their quantification (lung field, amounts in the scan's spacing), and
    how the lung field was found where the model crops or constrains to it (`lung_field_report`), else None.

    Voxels that were non-finite in the scan (`Scan.non_finite`) are background. Each batch's burden field
    (`lung_field.py`) is found beside its label maps, from the aerated lung its lung field was found with.
    """
    prep = predictor.preprocessing
    labels = np.zeros(scan.slices.shape, np.uint8)
    lung = np.zeros(scan.slices.shape, bool)

    def finish(start, prepared, outputs):
        stop = start + len(prepared.regions)
        labels[start:stop] = predictor.labels(prepared, outputs)
        if scan.non_finite is not None:
            labels[start:stop][scan.non_finite[start:stop]] = 0
        for k, region in enumerate(prepared.regions, start):
            lung[k] = lung_field_module.lung_field_slice(scan.slices[k], prep.input_kind, labels[k] > 0, region.aerated)
        return [(r.status, None if r.field is None else float(r.field.mean())) for r in prepared.regions]

    summaries = [summary for part in _batched(predictor, scan.slices, batch_size, finish, on_batch) for summary in part]
    quantification = quantify(labels, lung, predictor.num_classes, scan.spacing_mm, scan.thickness_mm)
    framed = prep.lung_crop is not None or prep.lung_constraint is not None
    return labels, quantification, lung_field_report(summaries) if framed else None


def _batched(predictor, slices, batch_size, finish, on_batch=None, regions=None):
    """`finish(start, prepared, outputs)` of each batch of `batch_size` slices, in order (`pipeline.pipelined`)."""
    starts = range(0, len(slices), batch_size)

    def prepare(start):
        batch_regions = None if regions is None else regions[start : start + batch_size]
        return start, predictor.prepare(slices[start : start + batch_size], batch_regions)

    def finished(started, outputs):
        start, prepared = started
        result = finish(start, prepared, outputs)
        if on_batch is not None:
            on_batch(len(prepared.regions))
        return result

    return pipelined(list(starts), prepare, lambda started: predictor.run(started[1].inputs), finished)


def _joined(label_batches):
    """One `[N, H, W]` array of the batches' label maps, or a list of `[H_i, W_i]` when their sizes differ."""
    if all(isinstance(batch, np.ndarray) for batch in label_batches) and len({b.shape[1:] for b in label_batches}) <= 1:
        return np.concatenate(label_batches) if label_batches else np.zeros((0, 0, 0), np.uint8)
    return [labels for batch in label_batches for labels in batch]


def lung_field_report(summaries):
    """`{"found": n, "one lung": n, "no lung": n, "no_lung_slices": [...], "one_lung_slices": [...], "share_of_frame": mean}`
    of each slice's `(status, share of the frame)`.

    The field spans the chest inside the body wall in every case; without aerated lung its wall is a fixed share of
    the body (`tf_resattn.data.thorax`), and an empty frame is segmented whole.
    """
    statuses = [status for status, _ in summaries]
    return {
        **{status: statuses.count(status) for status in ("found", "one lung", "no lung")},
        "no_lung_slices": [k for k, status in enumerate(statuses) if status == "no lung"],
        "one_lung_slices": [k for k, status in enumerate(statuses) if status == "one lung"],
        "share_of_frame": float(np.mean([share for _, share in summaries])),
    }


def match_input_kind(scans, preprocessing, model_path, window=None):
    """The scans as the model takes them: a Hounsfield-unit scan for a model trained on 8-bit slices is windowed to grey.

    The kind of each scan is decided as training decides it (`detect_input_kind`). HU input to an
    8-bit model goes through `window_to_grey` with `Preprocessing.hu_bridge(window)` (the window
    the training slices were made with, or `window`); 8-bit input to an HU model is refused.

    Returns:
        `(scans, windows)`: the scans to segment, and per scan the HU window applied (None when none was).
    """
    matched, windows = [], []
    for scan in scans:
        kind = detect_input_kind(
            list(scan.slices), from_volume=scan.kind != "image", source=scan.source, kind_option=None
        )
        if kind == preprocessing.input_kind:
            if window is not None and kind == "uint8":
                raise InferenceError(
                    f"{scan.source} holds 8-bit grey values already: --window applies to Hounsfield units only"
                )
            matched.append(scan)
            windows.append(None)
        elif kind == "hu":
            try:
                bridge = preprocessing.hu_bridge(window)
            except DataError as e:
                raise InferenceError(f"{scan.source} holds Hounsfield units but {e}") from None
            matched.append(dataclasses.replace(scan, slices=window_to_grey(scan.slices, bridge)))
            windows.append(list(bridge))
        else:
            raise InferenceError(
                f"model {model_path} was trained on Hounsfield units (a NIfTI volume or DICOM series) but {scan.source} "
                "holds 8-bit grey images, which cannot be turned back into HU; give the scan in HU (NIfTI or DICOM)"
            )
    return matched, windows


def check_slice_size(scans):
    """Refuses a scan whose slices are smaller than `MIN_SLICE_SIDE` on a side (a thumbnail, an icon, a 1x1 image)."""
    for scan in scans:
        height, width = scan.slices.shape[1:3]
        if min(height, width) < MIN_SLICE_SIDE:
            raise DataError(
                f"{scan.source} is {height}x{width} pixels, too small for a CT slice (at least {MIN_SLICE_SIDE}x{MIN_SLICE_SIDE}; "
                "scans are usually 512x512); give the whole slice at its own resolution"
            )


def predict_path(
    model_path: str | os.PathLike,
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    batch_size: int | None = None,
    num_classes: int = 4,
    overwrite: bool = False,
    progress: bool = True,
    tta: bool = False,
    window: tuple[float, float] | None = None,
    safe_only: bool = False,
    notify: Callable[[str], object] = warnings.warn,
    overlays: str | int = DEFAULT_OVERLAYS,
) -> dict:
    """Segments and quantifies every scan at `input_path` with the model at `model_path`.

    Args:
        model_path: `.keras` file, SavedModel folder, `.tflite` file, a cross-validation run
            folder (or one variant's folder in it): the mean of its fold models, or the name of
            a released model (`saved_models/<name>`).
        input_path: anything `tf_resattn.io.read_scans` reads: PNG/JPG/TIFF/BMP file or folder of
            them, a manifest CSV, NIfTI volume, or DICOM series folder.
        out_dir: output folder to create; neither the input, nor holding it, nor inside it
            (`tf_resattn.inference.output_folder`).
        batch_size: slices per model call; None chooses it per scan from its size and the free memory
            (`memory.auto_batch_size`).
        num_classes: classes the model must predict.
        overwrite: replace an existing `out_dir` that an earlier run wrote.
        progress: show a progress bar.
        tta: average each slice's probabilities over its 8 flips and quarter turns.
        window: (low, high) HU window for Hounsfield-unit input to a model trained on 8-bit
            slices, overriding the one recorded with the model (`Preprocessing.source_window`).
        safe_only: refuse a SavedModel (its graph runs as code) instead of using it.
        notify: what is called with the notice that a SavedModel runs its own graph.
        overlays: the overlay PNGs to write per scan: `"all"`, `"none"`, or that many of its slices
            with the most infection (default `DEFAULT_OVERLAYS`).

    Returns:
        The report (also `out_dir/report.json`), with each scan's count of non-finite voxels
        (read as the scan's lowest value and labelled background; `tf_resattn.io.non_finite`) and batch
        size, and `speed`: slices, seconds from reading to the report, slices per second, the process's
        peak memory in MB.

    Raises:
        ExportError, tf_resattn.data.DataError: bad model, input or output path, another run on
            `out_dir` (nothing is left behind).
        InferenceError: a batch size below 1, an input the model cannot take (8-bit slices for a
            model trained on Hounsfield units, HU without a known window), a class count other than
            `num_classes`.
    """
    started = time.perf_counter()
    if batch_size is not None and not is_positive_int(batch_size):
        raise InferenceError(f"batch size must be a positive whole number, got {batch_size!r}")
    try:
        overlays = check_overlay_choice(overlays)
    except ValueError as error:
        raise InferenceError(str(error)) from None
    model_path = released_or_path(model_path)
    with output_folder(out_dir, overwrite, protected=(input_path,)) as partial:
        scans = read_scans(input_path)
        refuse_overlap(out_dir, [scan.source for scan in scans])
        check_slice_size(scans)
        check_writable(scans)
        notice = trust_notice(model_path, safe_only)
        if notice:
            notify(notice)
        predictor = load_predictor(model_path, num_classes, tta=tta)
        scans, windows = match_input_kind(scans, predictor.preprocessing, model_path, window)
        bar = keras.utils.Progbar(sum(len(s.slices) for s in scans), unit_name="slice") if progress else None
        items = []
        for scan, applied_window in zip(scans, windows):
            scan_batch = batch_size or auto_batch_size(
                predictor.preprocessing.image_size, scan.slices.shape[1:], predictor.num_classes, tta
            )
            labels, quantification, lung_report = segment_scan(
                predictor, scan, scan_batch, None if bar is None else bar.add
            )
            items.append(
                {
                    "name": scan.name,
                    "source": scan.source,
                    "slices": len(scan.slices),
                    "size": list(scan.slices.shape[1:]),
                    "hu_window_to_grey": applied_window,
                    "spacing_mm": None if scan.spacing_mm is None else list(scan.spacing_mm),
                    "slice_distance_mm": scan.thickness_mm,
                    "non_finite_voxels": non_finite_count(scan),
                    "batch_size": scan_batch,
                    "labels": write_labels(scan, labels, partial, predictor.num_classes),
                    "overlays": write_overlays(
                        scan, labels, predictor.preprocessing, predictor.num_classes, partial, overlays
                    ),
                    "quantification": quantification,
                    "lung_field": lung_report,
                }
            )
        report = {
            "model": str(model_path),
            "model_kind": describe_model(model_path),
            "test_time_augmentation": bool(tta),
            "preprocessing": predictor.preprocessing.to_config(),
            "input": str(input_path),
            "lung_field_method": lung_field_module.METHOD,
            "scans": items,
        }
        slices = sum(item["slices"] for item in items)
        seconds = time.perf_counter() - started
        report["speed"] = {
            "slices": slices,
            "seconds": round(seconds, 3),
            "slices_per_second": round(slices / seconds, 2),
            "peak_memory_mb": peak_memory_mb(),
        }
        write_json(partial / "report.json", report)
    return report


def describe_model(model_path):
    """`"keras"`, `"saved_model"`, `"tflite"`, or `"ensemble of N keras"` for a run's fold models."""
    folds = fold_models(model_path)
    return f"ensemble of {len(folds)} keras" if folds else model_kind(model_path)


def report_table(report):
    """The terminal table of a report."""
    return format_table([(item["name"], item["quantification"]) for item in report["scans"]])


def speed_line(report):
    """`300 slices in 14.2 s (21.1 slices/s, batches of 8), peak memory 1712 MB` of a report."""
    speed = report["speed"]
    batches = sorted({item["batch_size"] for item in report["scans"]})
    memory = "unknown" if speed["peak_memory_mb"] is None else f"{speed['peak_memory_mb']:.0f} MB"
    return (
        f"{speed['slices']} slices in {speed['seconds']:.1f} s ({speed['slices_per_second']:.1f} slices/s, "
        f"batches of {', '.join(map(str, batches))}), peak memory {memory}"
    )
