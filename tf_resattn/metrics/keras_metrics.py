"""Stateful Keras metrics for `model.compile`, computing the same figures as `report.py`.

Each metric takes `y_true` integer labels `[B, H, W]` or `[B, H, W, 1]` and `y_pred` class
probabilities `[B, H, W, C]` (scored through their argmax), keeps its state in metric variables
(summed across replicas under `tf.distribute` strategies) and uses `keras.ops` only.

Dice and IoU are **per slice**: each batch adds, per class, the sum of the Dice of the slices
where the class is present in the truth and the number of such slices; `result()` divides. This is
the rule of `segmentation_report`'s `dice` / `iou` (not a pooled Dice), so the epoch figures in the
training log equal the report's on the same slices. Precision, recall and pixel accuracy pool the
pixels of all batches, as the report does (float32 state: pixel counts are exact up to 2**24 per
class, then rounded to about 1e-7 relative). `sample_weight` is accepted and ignored: every slice
counts once, as in the reports.

Names in the logs (`val_` prefixed on validation data), from `default_metrics(4)`:
`mean_fg_dice`, `dice_ground_glass`, `dice_consolidation`, `dice_pleural_effusion`,
`iou_ground_glass`, `iou_consolidation`, `iou_pleural_effusion`, `pixel_accuracy`,
`mean_precision`, `mean_recall`. An undefined value (a class never present in the truth so far)
is NaN, exactly as in the report.
"""

import keras
from keras import ops

from tf_resattn.classes import class_names
from tf_resattn.metrics.label_tensors import (
    confusion_counts,
    labels_and_probabilities,
    safe_divide,
    slice_confusion_tensor,
    validate_num_classes,
)


def _nan_where_undefined(values, defined):
    """`values` where `defined`, NaN elsewhere."""
    return ops.where(defined, values, float("nan"))


def _mean_of_defined(values, defined):
    """Mean of `values` `[K]` over the entries where `defined`; NaN when none is."""
    count = ops.sum(ops.cast(defined, values.dtype))
    total = ops.sum(ops.where(defined, values, 0))
    return _nan_where_undefined(safe_divide(total, count), count > 0)


def _slice_dice(true_positives, in_truth, in_prediction):
    """Dice `2 TP / (|truth| + |prediction|)` of pixel counts, elementwise (0 where both are empty)."""
    return safe_divide(2 * true_positives, in_truth + in_prediction)


def _slice_iou(true_positives, in_truth, in_prediction):
    """IoU `TP / |truth or prediction|` of pixel counts, elementwise (0 where both are empty)."""
    return safe_divide(true_positives, in_truth + in_prediction - true_positives)


class _SegmentationMetric(keras.metrics.Metric):
    """Shared argument checks and config: `num_classes` and the per-slice confusion of a batch."""

    def __init__(self, num_classes, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = validate_num_classes(num_classes)

    def _zeros(self, shape, name):
        return self.add_variable(shape=shape, initializer="zeros", dtype=self.dtype, name=name)

    def _batch_confusion(self, y_true, y_pred):
        """`[B, C, C]` pixel counts of (true, predicted) class per slice, in the metric's dtype."""
        return ops.cast(slice_confusion_tensor(y_true, y_pred, self.num_classes), self.dtype)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class _PerSliceOverlap(_SegmentationMetric):
    """Sums a per-slice score of some classes over the slices where each is present in the truth."""

    _score = None
    """`(true_positives, in_truth, in_prediction) -> score`, elementwise; set by subclasses."""

    def __init__(self, num_classes, class_ids, name=None, dtype="float32"):
        super().__init__(num_classes, name=name, dtype=dtype)
        self._class_ids = list(class_ids)
        self.score_sum = self._zeros((len(self._class_ids),), "score_sum")
        self.present_slices = self._zeros((len(self._class_ids),), "present_slices")

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(self._batch_confusion(y_true, y_pred))
        true_positives, in_truth, in_prediction = (ops.take(count, self._class_ids, axis=1) for count in counts)
        present = in_truth > 0
        score = self._score(true_positives, in_truth, in_prediction)
        self.score_sum.assign_add(ops.sum(ops.where(present, score, 0), axis=0))
        self.present_slices.assign_add(ops.sum(ops.cast(present, self.dtype), axis=0))

    def _per_class_result(self):
        """`[K]` mean score per class over its present slices, NaN for a class never present."""
        return _nan_where_undefined(
            safe_divide(self.score_sum.value, self.present_slices.value), self.present_slices.value > 0
        )


class _ClassOverlap(_PerSliceOverlap):
    """Per-slice score of one foreground class, averaged over the slices where it is present."""

    _prefix = None
    """Start of the default name, e.g. `dice` -> `dice_ground_glass`; set by subclasses."""

    def __init__(self, class_id, num_classes, name=None, dtype="float32"):
        validate_num_classes(num_classes)
        if isinstance(class_id, bool) or not isinstance(class_id, int) or not 1 <= class_id < num_classes:
            raise ValueError(
                f"class_id must be a foreground class in [1, {num_classes}) (background 0 is not scored), "
                f"got {class_id!r}"
            )
        name = name or f"{self._prefix}_{class_names(num_classes)[class_id]}"
        super().__init__(num_classes, [class_id], name=name, dtype=dtype)
        self.class_id = class_id

    def result(self):
        return self._per_class_result()[0]

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@keras.saving.register_keras_serializable(package="tf_resattn")
class ClassDice(_ClassOverlap):
    """Dice of one foreground class, per slice, averaged over the slices where it is present in the truth.

    Slices without the class in the truth are not counted (see the module docstring); `result()` is
    NaN until a slice with the class has been seen. Equals `segmentation_report(...)["dice"][name]`.

    Args:
        class_id: the class scored, in `[1, num_classes)`.
        num_classes: `C`, background included.
        name: defaults to `dice_<class name>`, e.g. `dice_ground_glass`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        >>> ClassDice(1, num_classes=4).name  # the name `model.fit` logs it under
        'dice_ground_glass'
    """

    _prefix = "dice"
    _score = staticmethod(_slice_dice)


@keras.saving.register_keras_serializable(package="tf_resattn")
class ClassIoU(_ClassOverlap):
    """IoU (Jaccard) of one foreground class, per slice, averaged over the slices where it is present.

    Same counting rule as `ClassDice`. Equals `segmentation_report(...)["iou"][name]`.

    Args:
        class_id: the class scored, in `[1, num_classes)`.
        num_classes: `C`, background included.
        name: defaults to `iou_<class name>`, e.g. `iou_ground_glass`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        >>> ClassIoU(2, num_classes=4).name  # the name `model.fit` logs it under
        'iou_consolidation'
    """

    _prefix = "iou"
    _score = staticmethod(_slice_iou)


@keras.saving.register_keras_serializable(package="tf_resattn")
class MeanForegroundDice(_PerSliceOverlap):
    """Mean over the foreground classes of their per-slice Dice (the `ClassDice` of each class).

    Classes not yet present in the truth are left out of the mean (NaN if none is present). Equals
    `segmentation_report(...)["mean_foreground_dice"]`; logged as `mean_fg_dice`, so
    `val_mean_fg_dice` is the figure to monitor.

    Args:
        num_classes: `C`, background included.
        name: defaults to `mean_fg_dice`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        model.compile(loss=..., metrics=[MeanForegroundDice(num_classes=4)])
    """

    _score = staticmethod(_slice_dice)

    def __init__(self, num_classes, name="mean_fg_dice", dtype="float32"):
        super().__init__(num_classes, range(1, validate_num_classes(num_classes)), name=name, dtype=dtype)

    def result(self):
        per_class = self._per_class_result()
        return _mean_of_defined(per_class, self.present_slices.value > 0)


@keras.saving.register_keras_serializable(package="tf_resattn")
class PixelAccuracy(_SegmentationMetric):
    """Share of pixels (all classes, background included) whose argmax class is right, over all batches.

    Equals `segmentation_report(...)["pixel_accuracy"]`.

    Args:
        num_classes: `C`, background included.
        name: defaults to `pixel_accuracy`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        model.compile(loss=..., metrics=[PixelAccuracy(num_classes=4)])
    """

    def __init__(self, num_classes, name="pixel_accuracy", dtype="float32"):
        super().__init__(num_classes, name=name, dtype=dtype)
        self.correct = self._zeros((), "correct")
        self.total = self._zeros((), "total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, probabilities = labels_and_probabilities(y_true, y_pred, self.num_classes)
        correct = ops.cast(ops.equal(ops.argmax(probabilities, axis=-1), labels), self.dtype)
        self.correct.assign_add(ops.sum(correct))
        self.total.assign_add(ops.cast(ops.size(correct), self.dtype))

    def result(self):
        return _nan_where_undefined(safe_divide(self.correct.value, self.total.value), self.total.value > 0)


class _PooledForeground(_SegmentationMetric):
    """Pools true-positive, truth and prediction pixel counts of the foreground classes over all batches."""

    def __init__(self, num_classes, name=None, dtype="float32"):
        super().__init__(num_classes, name=name, dtype=dtype)
        foreground = (self.num_classes - 1,)
        self.true_positives = self._zeros(foreground, "true_positives")
        self.in_truth = self._zeros(foreground, "in_truth")
        self.in_prediction = self._zeros(foreground, "in_prediction")

    def update_state(self, y_true, y_pred, sample_weight=None):
        batch_counts = confusion_counts(ops.sum(self._batch_confusion(y_true, y_pred), axis=0))
        for variable, count in zip((self.true_positives, self.in_truth, self.in_prediction), batch_counts):
            variable.assign_add(count[1:])


@keras.saving.register_keras_serializable(package="tf_resattn")
class MeanForegroundPrecision(_PooledForeground):
    """Pixel precision per foreground class, pooled over all batches, averaged over the classes.

    Per class `TP / (TP + FP)`: 0.0 for a class in the truth that is never predicted, left out of
    the mean when the class is in neither truth nor prediction. Equals
    `segmentation_report(...)["mean_precision"]`.

    Args:
        num_classes: `C`, background included.
        name: defaults to `mean_precision`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        model.compile(loss=..., metrics=[MeanForegroundPrecision(num_classes=4)])
    """

    def __init__(self, num_classes, name="mean_precision", dtype="float32"):
        super().__init__(num_classes, name=name, dtype=dtype)

    def result(self):
        precision = safe_divide(self.true_positives.value, self.in_prediction.value)
        return _mean_of_defined(precision, ops.logical_or(self.in_prediction.value > 0, self.in_truth.value > 0))


@keras.saving.register_keras_serializable(package="tf_resattn")
class MeanForegroundRecall(_PooledForeground):
    """Pixel recall per foreground class, pooled over all batches, averaged over the classes.

    Per class `TP / (TP + FN)`, left out of the mean for a class never in the truth. Equals
    `segmentation_report(...)["mean_recall"]`.

    Args:
        num_classes: `C`, background included.
        name: defaults to `mean_recall`.
        dtype: dtype of the state and result.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` probabilities `[B, H, W, C]`; result scalar.

    Example:
        model.compile(loss=..., metrics=[MeanForegroundRecall(num_classes=4)])
    """

    def __init__(self, num_classes, name="mean_recall", dtype="float32"):
        super().__init__(num_classes, name=name, dtype=dtype)

    def result(self):
        recall = safe_divide(self.true_positives.value, self.in_truth.value)
        return _mean_of_defined(recall, self.in_truth.value > 0)


def default_metrics(num_classes):
    """The metrics to pass to `model.compile`: mean foreground Dice, per-class Dice and IoU, pixel
    accuracy, mean precision and recall (names listed in the module docstring).

    Args:
        num_classes: `C`, background included.

    Returns:
        A new list of `keras.metrics.Metric` (fresh state; build one list per model).

    Example:
        model.compile(optimizer="adam", loss=tf_resattn.losses.get("ce", 4),
                      metrics=tf_resattn.metrics.default_metrics(4))
    """
    foreground = range(1, validate_num_classes(num_classes))
    return [
        MeanForegroundDice(num_classes),
        *(ClassDice(class_id, num_classes) for class_id in foreground),
        *(ClassIoU(class_id, num_classes) for class_id in foreground),
        PixelAccuracy(num_classes),
        MeanForegroundPrecision(num_classes),
        MeanForegroundRecall(num_classes),
    ]
