"""Segmentation figures in NumPy, for reports: which Dice is which, and how absent classes count.

All functions take integer label maps `y_true`, `y_pred` `[N, H, W]` (N slices) and `num_classes`
(`C`, background 0 included), and derive everything from per-slice confusion matrices.

Rules (the same as the Keras metrics in `tf_resattn.metrics`, so training logs and reports agree):

- **Per-slice Dice / IoU** of class `c` is computed on each slice where `c` is present in the
  truth, then averaged over those slices. A slice where `c` is absent from the truth is not
  counted: neither as 1.0 (absent in truth and prediction) nor as 0.0 (absent in truth, predicted:
  a *false-positive slice*, counted separately in `false_positive_slices`). A class absent from
  the truth of every slice has no per-slice Dice: NaN.
- **Pooled Dice** of class `c` is `2 TP / (2 TP + FP + FN)` over all pixels of all slices together;
  NaN only when `c` appears in neither truth nor prediction.
- **Precision / recall** of class `c` pool the pixels of all slices. Recall is NaN when `c` is
  never in the truth. Precision is NaN when `c` is in neither truth nor prediction, and 0.0 when
  `c` is in the truth but never predicted (a class the model misses entirely is not skipped).
- **Foreground means** (`mean_foreground_dice`, `mean_precision`, `mean_recall`) average over
  classes 1..C-1 whose value is defined (not NaN); NaN only if none is.
- **Paper-style DSC** is the mean pooled Dice over all classes *including background* (the way
  the paper's figures are most likely computed); background dominates it, so it is far higher
  than the foreground figures.
"""

import numpy as np

from tf_resattn.classes import class_names


def check_label_maps(y_true, y_pred, num_classes):
    """Validates two label-map stacks and returns them as NumPy integer arrays.

    Args:
        y_true: true labels `[N, H, W]`, integer (or bool) dtype, values in `[0, num_classes)`.
        y_pred: predicted labels, same shape and rules (take the argmax of probabilities first).
        num_classes: `C` >= 2, background included.

    Returns:
        `(y_true, y_pred)` as NumPy arrays `[N, H, W]` of their own integer (or bool) dtype.

    Raises:
        ValueError: a bad `num_classes`, a rank other than 3, different shapes, a non-integer dtype,
            label values outside `[0, num_classes)` (the message lists them), or no pixels at all.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    arrays = {"y_true": np.asarray(y_true), "y_pred": np.asarray(y_pred)}
    for what, labels in arrays.items():
        if labels.ndim != 3:
            raise ValueError(f"{what} must be label maps [N, H, W], got shape {labels.shape}")
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise ValueError(
                f"{what} must hold integer labels, got dtype {labels.dtype}; take the argmax of probabilities"
            )
    if arrays["y_true"].shape != arrays["y_pred"].shape:
        raise ValueError(f"y_true shape {arrays['y_true'].shape} differs from y_pred shape {arrays['y_pred'].shape}")
    if arrays["y_true"].size == 0:
        raise ValueError(f"no pixels to score: label maps of shape {arrays['y_true'].shape}")
    for what, labels in arrays.items():
        if labels.min() >= 0 and labels.max() < num_classes:
            continue
        outside = np.unique(labels[(labels < 0) | (labels >= num_classes)])
        raise ValueError(
            f"{what} holds label values {outside.tolist()} outside [0, {num_classes}); "
            f"check num_classes or the mask encoding"
        )
    return arrays["y_true"], arrays["y_pred"]


def slice_confusion(y_true, y_pred, num_classes):
    """Per-slice confusion matrices: int64 `[N, C, C]`, entry `[n, t, p]` counts pixels of slice `n`
    with true class `t` and predicted class `p`. Validates the inputs (see `check_label_maps`)."""
    y_true, y_pred = check_label_maps(y_true, y_pred, num_classes)
    pairs = (true.ravel().astype(np.intp) * num_classes + predicted.ravel() for true, predicted in zip(y_true, y_pred))
    return np.stack(
        [np.bincount(row, minlength=num_classes * num_classes).reshape(num_classes, num_classes) for row in pairs]
    )


def _counts(confusion):
    """Confusion `[..., C, C]` -> float64 `(true_positives, in_truth, in_prediction)`, each `[..., C]`."""
    confusion = confusion.astype(np.float64)
    return np.diagonal(confusion, axis1=-2, axis2=-1), confusion.sum(axis=-1), confusion.sum(axis=-2)


def _divide(numerator, denominator):
    """Elementwise `numerator / denominator`, NaN where the denominator is 0, without warnings."""
    return np.divide(numerator, denominator, out=np.full(np.shape(numerator), np.nan), where=denominator > 0)


def _per_slice_dice(confusion):
    true_positives, in_truth, in_prediction = _counts(confusion)
    return _divide(2 * true_positives, np.where(in_truth > 0, in_truth + in_prediction, 0))


def _per_slice_iou(confusion):
    true_positives, in_truth, in_prediction = _counts(confusion)
    return _divide(true_positives, np.where(in_truth > 0, in_truth + in_prediction - true_positives, 0))


def _pooled_dice(confusion):
    true_positives, in_truth, in_prediction = _counts(confusion.sum(axis=0))
    return _divide(2 * true_positives, in_truth + in_prediction)


def _precision_recall(confusion):
    true_positives, in_truth, in_prediction = _counts(confusion.sum(axis=0))
    precision = _divide(true_positives, in_prediction)
    precision[(in_prediction == 0) & (in_truth > 0)] = 0.0
    return precision, _divide(true_positives, in_truth)


def _false_positive_slices(confusion):
    _, in_truth, in_prediction = _counts(confusion)
    return ((in_truth == 0) & (in_prediction > 0)).sum(axis=0)


def _pixel_accuracy(confusion):
    return float(np.trace(confusion.sum(axis=0)) / confusion.sum())


def _paper_style_dsc(confusion):
    return float(np.nanmean(_pooled_dice(confusion)))


def per_slice_dice(y_true, y_pred, num_classes):
    """Dice of every class on every slice: float64 `[N, C]`, NaN where the class is absent from the
    slice's truth (those slices are not counted; see the module docstring)."""
    return _per_slice_dice(slice_confusion(y_true, y_pred, num_classes))


def per_slice_iou(y_true, y_pred, num_classes):
    """IoU (Jaccard) of every class on every slice: float64 `[N, C]`, NaN where the class is absent
    from the slice's truth."""
    return _per_slice_iou(slice_confusion(y_true, y_pred, num_classes))


def mean_over_slices(per_slice):
    """Mean of per-slice values `[N, C]` over the slices where they are defined: `[C]`, NaN for a
    class with no defined slice (no NumPy warning)."""
    per_slice = np.asarray(per_slice, dtype=np.float64)
    defined = ~np.isnan(per_slice)
    return _divide(np.where(defined, per_slice, 0).sum(axis=0), defined.sum(axis=0))


def foreground_mean(per_class):
    """Mean of per-class values `[C]` over classes 1..C-1 that are not NaN; NaN if none is."""
    foreground = np.asarray(per_class, dtype=np.float64)[1:]
    foreground = foreground[~np.isnan(foreground)]
    return float(foreground.mean()) if foreground.size else float("nan")


def pooled_dice(y_true, y_pred, num_classes):
    """Dice of every class over all pixels of all slices pooled: float64 `[C]`, NaN for a class in
    neither truth nor prediction."""
    return _pooled_dice(slice_confusion(y_true, y_pred, num_classes))


def precision_recall(y_true, y_pred, num_classes):
    """Pixel precision and recall of every class, pooled over all slices: two float64 `[C]` arrays.

    Recall is NaN for a class never in the truth; precision is NaN for a class in neither truth nor
    prediction, and 0.0 for a class in the truth that is never predicted."""
    return _precision_recall(slice_confusion(y_true, y_pred, num_classes))


def false_positive_slices(y_true, y_pred, num_classes):
    """Per class, the number of slices where it is absent from the truth but predicted: int `[C]`."""
    return _false_positive_slices(slice_confusion(y_true, y_pred, num_classes))


def pixel_accuracy(y_true, y_pred, num_classes):
    """Share of pixels (all classes, background included) whose predicted class is right."""
    return _pixel_accuracy(slice_confusion(y_true, y_pred, num_classes))


def paper_style_dsc(y_true, y_pred, num_classes):
    """Mean pooled Dice over all classes *including background*, the paper's likely DSC (see module)."""
    return _paper_style_dsc(slice_confusion(y_true, y_pred, num_classes))


def segmentation_report(y_true, y_pred, num_classes):
    """All report figures of a set of slices as a JSON-serialisable dict of plain floats and ints.

    Args:
        y_true: true label maps `[N, H, W]`, integers in `[0, num_classes)`.
        y_pred: predicted label maps `[N, H, W]` (argmax of the model's probabilities).
        num_classes: `C`, background included; class names from `tf_resattn.classes.class_names`.

    Returns:
        A dict (per-class dicts hold the foreground classes 1..C-1, keyed by class name):
        `mean_foreground_dice` (mean of `dice` over its defined classes), `dice` (per-slice Dice
        averaged over slices where the class is present in the truth), `dice_pooled`, `iou` (per-slice
        rule), `pixel_accuracy`, `precision`, `recall`, `mean_precision`, `mean_recall`,
        `paper_style_dsc` (pooled, background included), `slices_with_class` (slices whose truth holds
        the class), `false_positive_slices` (slices without the class in the truth where it is
        predicted), `num_slices`. NaN marks an undefined value as described in the module docstring.

    Raises:
        ValueError: bad shapes, dtypes or label values (see `check_label_maps`).

    Example:
        >>> masks = np.array([[[0, 1], [1, 2]]], np.uint8)
        >>> report = segmentation_report(masks, np.array([[[0, 1], [0, 2]]], np.uint8), num_classes=4)
        >>> round(report["dice"]["ground_glass"], 3), report["dice"]["consolidation"]
        (0.667, 1.0)
    """
    return report_from_confusion(slice_confusion(y_true, y_pred, num_classes))


def segmentation_report_by_slice(y_true, y_pred, num_classes):
    """`segmentation_report` of slices that may differ in size (e.g. each at its scan's own resolution).

    Args:
        y_true, y_pred: sequences of N label maps `[H_i, W_i]`, the two maps of a slice of one size.
        num_classes: `C`, background included.

    Raises:
        ValueError: as `segmentation_report`, for any slice, or a different number of maps.
    """
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError(
            f"y_true and y_pred must hold the same number (>= 1) of slices, got {len(y_true)} and {len(y_pred)}"
        )
    confusion = np.concatenate([slice_confusion(t[None], p[None], num_classes) for t, p in zip(y_true, y_pred)])
    return report_from_confusion(confusion)


def report_from_confusion(confusion):
    """The `segmentation_report` dict of per-slice confusion matrices `[N, C, C]`."""
    names = class_names(confusion.shape[-1])[1:]
    _, in_truth, _ = _counts(confusion)

    def by_class(values, kind=float):
        return {name: kind(value) for name, value in zip(names, np.asarray(values)[1:])}

    dice = mean_over_slices(_per_slice_dice(confusion))
    precision, recall = _precision_recall(confusion)
    return {
        "mean_foreground_dice": foreground_mean(dice),
        "dice": by_class(dice),
        "dice_pooled": by_class(_pooled_dice(confusion)),
        "iou": by_class(mean_over_slices(_per_slice_iou(confusion))),
        "pixel_accuracy": _pixel_accuracy(confusion),
        "precision": by_class(precision),
        "recall": by_class(recall),
        "mean_precision": foreground_mean(precision),
        "mean_recall": foreground_mean(recall),
        "paper_style_dsc": _paper_style_dsc(confusion),
        "slices_with_class": by_class((in_truth > 0).sum(axis=0), int),
        "false_positive_slices": by_class(_false_positive_slices(confusion), int),
        "num_slices": int(len(confusion)),
    }
