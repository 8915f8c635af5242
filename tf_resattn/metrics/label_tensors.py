"""Checks and converts `(y_true, y_pred)` tensors, shared by the losses and the Keras metrics.

Everything here uses `keras.ops` only, so it runs on every Keras backend.
"""

from keras import ops


def validate_num_classes(num_classes):
    """Returns `num_classes` as an int; raises `ValueError` unless it is an integer >= 2."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (background + at least one class), got {num_classes!r}")
    return num_classes


def labels_and_probabilities(y_true, y_pred, num_classes):
    """Checks the shapes of a batch and returns `(labels, probabilities)`.

    Shapes are checked where they are known statically (at trace time); label values cannot be
    checked inside a compiled graph with `keras.ops`, so out-of-range labels must be caught where
    the data is read (`tf_resattn.data` does) -- the NumPy report functions check them too.

    Args:
        y_true: integer labels `[B, H, W]` or `[B, H, W, 1]` (any numeric dtype holding integers).
        y_pred: class probabilities `[B, H, W, C]` with `C == num_classes`.
        num_classes: number of classes `C`, background included.

    Returns:
        `labels` int32 `[B, H, W]` and `y_pred` unchanged as a tensor `[B, H, W, C]`.

    Raises:
        ValueError: a rank, channel count or spatial size that does not fit.
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) != 4 or y_pred.shape[-1] not in (None, num_classes):
        raise ValueError(
            f"y_pred must be class probabilities [B, H, W, {num_classes}], got shape {tuple(y_pred.shape)}; "
            f"check the model's num_classes"
        )
    if len(y_true.shape) == 4 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) != 3:
        raise ValueError(
            f"y_true must be integer labels [B, H, W] or [B, H, W, 1], got shape {tuple(y_true.shape)}; "
            f"pass label maps, not one-hot masks"
        )
    for true_size, pred_size in zip(y_true.shape, y_pred.shape[:3]):
        if true_size is not None and pred_size is not None and true_size != pred_size:
            raise ValueError(
                f"y_true shape {tuple(y_true.shape)} does not match y_pred shape {tuple(y_pred.shape)} "
                f"in batch or spatial size"
            )
    return ops.cast(y_true, "int32"), y_pred


def one_hot_labels(labels, num_classes):
    """Integer labels `[B, H, W]` -> float32 one-hot `[B, H, W, C]`."""
    return ops.one_hot(labels, num_classes, dtype="float32")


def slice_confusion_tensor(y_true, y_pred, num_classes):
    """Pixel counts per slice of (true class, predicted class) pairs.

    Args:
        y_true: integer labels `[B, H, W]` or `[B, H, W, 1]`.
        y_pred: class probabilities `[B, H, W, C]`; the prediction is their argmax.
        num_classes: `C`.

    Returns:
        float32 `[B, C, C]`: entry `[b, t, p]` counts the pixels of slice `b` whose true class is `t`
        and predicted class is `p` (exact for slices of up to 2**24 pixels).

    Example:
        >>> import numpy as np
        >>> labels = np.array([[[0, 1], [2, 2]]])
        >>> probabilities = np.eye(4, dtype=np.float32)[[[[0, 1], [2, 3]]]]  # one pixel of 2 predicted as 3
        >>> ops.convert_to_numpy(slice_confusion_tensor(labels, probabilities, num_classes=4))[0, 2]
        array([0., 0., 1., 1.], dtype=float32)
    """
    labels, probabilities = labels_and_probabilities(y_true, y_pred, num_classes)
    truth = one_hot_labels(labels, num_classes)
    predicted = one_hot_labels(ops.argmax(probabilities, axis=-1), num_classes)
    return ops.einsum("bhwt,bhwp->btp", truth, predicted)


def confusion_counts(confusion):
    """Splits confusion matrices `[..., C, C]` into `(true_positives, in_truth, in_prediction)`, each `[..., C]`."""
    true_positives = ops.diagonal(confusion, axis1=-2, axis2=-1)
    return true_positives, ops.sum(confusion, axis=-1), ops.sum(confusion, axis=-2)


def safe_divide(numerator, denominator):
    """`numerator / denominator` for counts, and 0 where the denominator is 0 (no NaN, no NaN gradients)."""
    nonzero = denominator > 0
    return ops.where(nonzero, numerator / ops.where(nonzero, denominator, 1), 0)
