"""`predict_path`: segment slices or volumes with any exported model, write labels, overlays and a report.

Output folder (written under a temporary name, put in place when complete; an
existing one is replaced only with `overwrite`, and only when an earlier run
wrote it; one run at a time per folder: `output_folder.py`):

- `labels/`: label maps in the input's format and geometry (`tf_resattn.io.write_labels`;
  a DICOM SEG for a DICOM series);
- `overlays/`: colour overlay PNGs with a legend, of the slices with the most infection (`overlays`);
- `report.json`: the model, the input, the lung-field method and, per scan,
  its files, its count of non-finite voxels (read as the scan's lowest value and
  labelled background) and quantification (`quantify.py`).

Every scan, one slice or a 100-slice volume, goes through the same loop in
batches of `batch_size` slices, with a progress bar over all slices.
"""

import dataclasses
import os
import warnings
from collections.abc import Callable

import keras
import numpy as np

from tf_resattn.arguments import is_positive_int
from tf_resattn.data.framing import slice_regions
from tf_resattn.data.preprocessing import detect_input_kind, window_to_grey
from tf_resattn.inference import lung_field as lung_field_module
from tf_resattn.inference.ensemble import fold_models
from tf_resattn.inference.errors import InferenceError
from tf_resattn.inference.model_files import model_kind, released_or_path
from tf_resattn.inference.output_folder import output_folder, refuse_overlap, write_json
from tf_resattn.inference.overlays import DEFAULT_OVERLAYS, check_overlay_choice, write_overlays
from tf_resattn.inference.predictors import load_predictor, trust_notice
from tf_resattn.inference.quantify import format_table, quantify
from tf_resattn.io import DataError, check_writable, read_scans, write_labels
from tf_resattn.io.non_finite import non_finite_count

MIN_SLICE_SIDE = 16
"""Pixels per side below which an input is no CT slice (those are about 512x512) and is refused."""


def segment(predictor, slices, batch_size, on_batch=None, regions=None):
    """Label maps uint8 `[N, H, W]` of raw slices `[N, H, W]`, predicted `batch_size` slices at a time.

    `regions`: the slices' `SliceRegion`s (`tf_resattn.data.framing.slice_regions`), or None to let the predictor find them.
    """
    labels = []
    for start in range(0, len(slices), batch_size):
        batch = slices[start : start + batch_size]
        batch_regions = None if regions is None else regions[start : start + batch_size]
        labels.append(np.argmax(predictor(batch, batch_regions), axis=-1).astype(np.uint8))
        if on_batch is not None:
            on_batch(len(batch))
    return np.concatenate(labels)


def segment_scan(predictor, scan, batch_size, on_batch=None):
    """Label maps uint8 `[N, H, W]` of one scan, their quantification (lung field, amounts in the scan's spacing), and
    how the lung field was found where the model crops or constrains to it (`lung_field_report`), else None.

    Voxels that were non-finite in the scan (`Scan.non_finite`) are background.
    """
    prep = predictor.preprocessing
    regions = (
        slice_regions(scan.slices, prep) if prep.lung_crop is not None or prep.lung_constraint is not None else None
    )
    labels = segment(predictor, scan.slices, batch_size, on_batch, regions)
    if scan.non_finite is not None:
        labels[scan.non_finite] = 0
    lung = lung_field_module.lung_field(scan.slices, prep.input_kind, labels)
    quantification = quantify(labels, lung, predictor.num_classes, scan.spacing_mm, scan.thickness_mm)
    return labels, quantification, None if regions is None else lung_field_report(regions)


def lung_field_report(regions):
    """`{"found": n, "one lung": n, "no lung": n, "no_lung_slices": [...], "one_lung_slices": [...], "share_of_frame": mean}`.

    The field spans the chest inside the body wall in every case; without aerated lung its wall is a fixed share of
    the body (`tf_resattn.data.thorax`), and an empty frame is segmented whole.
    """
    statuses = [region.status for region in regions]
    return {
        **{status: statuses.count(status) for status in ("found", "one lung", "no lung")},
        "no_lung_slices": [k for k, status in enumerate(statuses) if status == "no lung"],
        "one_lung_slices": [k for k, status in enumerate(statuses) if status == "one lung"],
        "share_of_frame": float(np.mean([region.field.mean() for region in regions])),
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
    batch_size: int = 8,
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
        batch_size: slices per model call.
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
        (read as the scan's lowest value and labelled background; `tf_resattn.io.non_finite`).

    Raises:
        ExportError, tf_resattn.data.DataError: bad model, input or output path, another run on
            `out_dir` (nothing is left behind).
        InferenceError: a batch size below 1, an input the model cannot take (8-bit slices for a
            model trained on Hounsfield units, HU without a known window), a class count other than
            `num_classes`.
    """
    if not is_positive_int(batch_size):
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
            labels, quantification, lung_report = segment_scan(
                predictor, scan, batch_size, None if bar is None else bar.add
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
        write_json(partial / "report.json", report)
    return report


def describe_model(model_path):
    """`"keras"`, `"saved_model"`, `"tflite"`, or `"ensemble of N keras"` for a run's fold models."""
    folds = fold_models(model_path)
    return f"ensemble of {len(folds)} keras" if folds else model_kind(model_path)


def report_table(report):
    """The terminal table of a report."""
    return format_table([(item["name"], item["quantification"]) for item in report["scans"]])
