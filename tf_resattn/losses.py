"""Segmentation losses on integer labels and softmax probabilities.

Every loss takes `y_true` integer labels `[B, H, W]` or `[B, H, W, 1]` and `y_pred` softmax
probabilities `[B, H, W, C]`, computes in float32 whatever the input dtype (so `mixed_float16`
models stay finite), returns one value per slice `[B]` (Keras then averages over the batch and
applies `sample_weight`), and accepts optional per-class weights `class_weights` (length `C`).

- `CrossEntropyLoss` (`"ce"`): the paper's multi-class cross-entropy.
- `SoftDiceLoss` (`"dice"`): one minus the weighted mean over classes of the soft Dice per slice.
- `CEDiceLoss` (`"ce_dice"`): `ce_weight * CE + dice_weight * Dice`.
- `"ce_batch_dice"`: `CEDiceLoss` with nnU-Net's Dice term: summed over the whole batch, foreground
  classes only. A class absent from one slice no longer pushes that slice's probabilities of it to
  0, which with per-slice Dice keeps rare classes (effusion) from ever being predicted.
- `FocalTverskyLoss` (`"focal_tversky"`): Abraham & Khan (2019), for small structures.
- `"focal_tversky_batch"`: `FocalTverskyLoss` over the whole batch. Per slice, a class absent from
  the slice's truth scores `(1 - 1 / (1 + beta FP)) ** gamma`, close to 1 for a few pixels of stray
  probability, which drives a rare class (effusion) to 0 everywhere; over the batch it counts as
  false positives against the class's pixels in the batch.

`get(name, num_classes, class_weights=None)` builds one by name. Only `keras.ops` is used, so the
losses also run on the JAX backend.

Example:
    loss = tf_resattn.losses.get("ce_dice", num_classes=4, class_weights=[0.1, 1, 1, 2])
    model.compile(optimizer="adam", loss=loss, metrics=tf_resattn.metrics.default_metrics(4))
"""

import math

import keras
from keras import ops

from tf_resattn.metrics.label_tensors import labels_and_probabilities, one_hot_labels, validate_num_classes

PROBABILITY_FLOOR = 1e-7
"""Probabilities are clipped to `[PROBABILITY_FLOOR, 1]` before the logarithm of the cross-entropy."""


class _SegmentationLoss(keras.losses.Loss):
    """Shared argument checks, input preparation and config of the losses below."""

    def __init__(self, num_classes, class_weights=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = validate_num_classes(num_classes)
        self.class_weights = _validate_class_weights(class_weights, num_classes)

    def _prepare(self, y_true, y_pred):
        """Returns float32 one-hot truth, float32 probabilities (both `[B, H, W, C]`) and weights `[C]`."""
        labels, probabilities = labels_and_probabilities(y_true, y_pred, self.num_classes)
        weights = ops.convert_to_tensor(self.class_weights, dtype="float32")
        return one_hot_labels(labels, self.num_classes), ops.cast(probabilities, "float32"), weights

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, class_weights=list(self.class_weights))
        return config


def _validate_class_weights(class_weights, num_classes):
    """Returns `class_weights` as a tuple of `num_classes` floats (all 1.0 when None)."""
    if class_weights is None:
        return (1.0,) * num_classes
    weights = tuple(float(weight) for weight in class_weights)
    if len(weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(weights)} entries but num_classes is {num_classes}; give one weight per class"
        )
    if any(not math.isfinite(weight) or weight < 0 for weight in weights) or sum(weights) == 0:
        raise ValueError(f"class_weights must be finite, >= 0 and not all 0, got {list(weights)}")
    return weights


def _validate_smooth(smooth):
    """Returns `smooth` as a float; raises `ValueError` unless it is > 0."""
    if not smooth > 0:
        raise ValueError(f"smooth must be > 0 (it keeps empty classes defined), got {smooth}")
    return float(smooth)


def _weighted_class_mean(per_class, weights):
    """`[..., C]` values -> `[...]` mean over classes weighted by `weights` `[C]`."""
    return ops.sum(per_class * weights, axis=-1) / ops.sum(weights)


def _batch_value_per_slice(value, truth):
    """A scalar computed over the whole batch -> that value for every slice `[B]` of `truth` `[B, H, W, C]`."""
    return ops.zeros_like(truth[:, 0, 0, 0]) + value


def _cross_entropy(truth, probabilities, weights):
    """One-hot truth and probabilities `[B, H, W, C]`, weights `[C]` -> weighted cross-entropy `[B]`."""
    log_probabilities = ops.log(ops.clip(probabilities, PROBABILITY_FLOOR, 1.0))
    per_pixel = -ops.sum(truth * weights * log_probabilities, axis=-1)
    return ops.mean(per_pixel, axis=(1, 2))


def _soft_dice_loss(truth, probabilities, weights, smooth, batch_dice=False):
    """One-hot truth and probabilities `[B, H, W, C]`, weights `[C]` -> `1 - weighted mean soft Dice` `[B]`.

    With `batch_dice` the sums run over the whole batch, and every slice carries the batch's value.
    """
    axes = (0, 1, 2) if batch_dice else (1, 2)
    intersection = ops.sum(truth * probabilities, axis=axes)
    total = ops.sum(truth, axis=axes) + ops.sum(probabilities, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    loss = 1.0 - _weighted_class_mean(dice, weights)
    return _batch_value_per_slice(loss, truth) if batch_dice else loss


@keras.saving.register_keras_serializable(package="tf_resattn")
class CrossEntropyLoss(_SegmentationLoss):
    """Multi-class cross-entropy between integer labels and softmax probabilities (the paper's loss).

    Per slice: the mean over pixels of `-w[y] * log(p[y])`, where `y` is the pixel's true class,
    `p` the predicted probabilities clipped to `[1e-7, 1]` and `w` the class weights. The mean runs
    over pixels (not over the weights), as with Keras' `class_weight`; with no weights this equals
    `keras.losses.SparseCategoricalCrossentropy`.

    Args:
        num_classes: number of classes `C`, background included.
        class_weights: optional `C` non-negative weights, one per class (default all 1).
        **kwargs: `name`, `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` `[B, H, W, C]`; per-slice loss `[B]`.

    Example:
        >>> loss = CrossEntropyLoss(num_classes=4)
        >>> round(float(loss(keras.ops.zeros((1, 2, 2), "int32"), keras.ops.full((1, 2, 2, 4), 0.25))), 4)  # ln 4
        1.3863
    """

    def __init__(self, num_classes, class_weights=None, name="cross_entropy", **kwargs):
        super().__init__(num_classes, class_weights, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return _cross_entropy(*self._prepare(y_true, y_pred))


@keras.saving.register_keras_serializable(package="tf_resattn")
class SoftDiceLoss(_SegmentationLoss):
    """Soft multi-class Dice loss, one value per slice.

    Per slice and class `c`: `dice_c = (2 * sum(t_c * p_c) + smooth) / (sum(t_c) + sum(p_c) + smooth)`
    with `t_c` the one-hot truth and `p_c` the predicted probabilities; the loss is
    `1 - sum_c w_c * dice_c / sum_c w_c`. A class absent from a slice's truth scores close to 1
    when it is not predicted and is pushed towards 0 probability when it is. All classes count by
    default; `class_weights=[0, 1, 1, 1]` leaves the background out. With `batch_dice=True` the
    sums run over the whole batch (nnU-Net's batch Dice): a class counts once per batch, and every
    slice carries the batch's loss.

    Args:
        num_classes: number of classes `C`, background included.
        class_weights: optional `C` non-negative weights of the classes in the mean (default all 1).
        smooth: added to numerator and denominator (pixels); keeps empty classes defined.
        batch_dice: sum over the batch instead of per slice.
        **kwargs: `name`, `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` `[B, H, W, C]`; per-slice loss `[B]`.

    Example:
        >>> loss = SoftDiceLoss(num_classes=4, class_weights=[0, 1, 1, 1])
    """

    def __init__(self, num_classes, class_weights=None, smooth=1.0, batch_dice=False, name="soft_dice", **kwargs):
        super().__init__(num_classes, class_weights, name=name, **kwargs)
        self.smooth = _validate_smooth(smooth)
        self.batch_dice = bool(batch_dice)

    def call(self, y_true, y_pred):
        return _soft_dice_loss(*self._prepare(y_true, y_pred), self.smooth, self.batch_dice)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "batch_dice": self.batch_dice}


@keras.saving.register_keras_serializable(package="tf_resattn")
class CEDiceLoss(_SegmentationLoss):
    """`ce_weight * CrossEntropyLoss + dice_weight * SoftDiceLoss`, both with the same class weights.

    Args:
        num_classes: number of classes `C`, background included.
        class_weights: optional `C` non-negative weights, used by both terms (default all 1).
        ce_weight: factor of the cross-entropy term.
        dice_weight: factor of the Dice term.
        smooth: the Dice term's smoothing (see `SoftDiceLoss`).
        batch_dice: the Dice term sums over the whole batch (see `SoftDiceLoss`).
        dice_background: whether the background is one of the Dice term's classes (the
            cross-entropy always counts every class).
        **kwargs: `name`, `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` `[B, H, W, C]`; per-slice loss `[B]`.

    Example:
        >>> loss = CEDiceLoss(num_classes=4, dice_weight=0.5)
        >>> nnunet_style = CEDiceLoss(num_classes=4, batch_dice=True, dice_background=False)
    """

    def __init__(
        self,
        num_classes,
        class_weights=None,
        ce_weight=1.0,
        dice_weight=1.0,
        smooth=1.0,
        batch_dice=False,
        dice_background=True,
        name="ce_dice",
        **kwargs,
    ):
        super().__init__(num_classes, class_weights, name=name, **kwargs)
        if ce_weight < 0 or dice_weight < 0 or ce_weight + dice_weight == 0:
            raise ValueError(f"ce_weight and dice_weight must be >= 0 and not both 0, got {ce_weight}, {dice_weight}")
        self.dice_weights = self.class_weights if dice_background else (0.0,) + self.class_weights[1:]
        if sum(self.dice_weights) == 0:
            raise ValueError(
                f"without the background the Dice term needs a foreground weight > 0, got {list(self.class_weights)}"
            )
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = _validate_smooth(smooth)
        self.batch_dice = bool(batch_dice)
        self.dice_background = bool(dice_background)

    def call(self, y_true, y_pred):
        truth, probabilities, weights = self._prepare(y_true, y_pred)
        cross_entropy = _cross_entropy(truth, probabilities, weights)
        dice_weights = ops.convert_to_tensor(self.dice_weights, dtype="float32")
        dice = _soft_dice_loss(truth, probabilities, dice_weights, self.smooth, self.batch_dice)
        return self.ce_weight * cross_entropy + self.dice_weight * dice

    def get_config(self):
        config = super().get_config()
        config.update(
            ce_weight=self.ce_weight,
            dice_weight=self.dice_weight,
            smooth=self.smooth,
            batch_dice=self.batch_dice,
            dice_background=self.dice_background,
        )
        return config


@keras.saving.register_keras_serializable(package="tf_resattn")
class FocalTverskyLoss(_SegmentationLoss):
    """Focal Tversky loss (Abraham & Khan 2019), one value per slice.

    Per slice and class `c`, with `TP = sum(t p)`, `FN = sum(t (1 - p))`, `FP = sum((1 - t) p)`:
    `TI_c = (TP + smooth) / (TP + alpha FN + beta FP + smooth)`, and the loss is
    `sum_c w_c (1 - TI_c) ** gamma / sum_c w_c`. `alpha > beta` penalises missed pixels more than
    false alarms (good for small lesions); `gamma < 1` keeps the gradient large near a good fit.
    The defaults are the paper's (alpha 0.7, beta 0.3, gamma 0.75, which it writes as 1/gamma with
    gamma = 4/3). `1 - TI` is floored at 1e-7 so a perfect fit has a finite (zero) gradient. With
    `batch_tversky=True` the sums run over the whole batch (as nnU-Net's batch Dice), and every
    slice carries the batch's loss.

    Args:
        num_classes: number of classes `C`, background included.
        class_weights: optional `C` non-negative weights of the classes in the sum (default all 1).
        alpha: weight of false negatives.
        beta: weight of false positives.
        gamma: exponent (> 0) applied to `1 - TI`.
        smooth: added to numerator and denominator (pixels).
        batch_tversky: sum over the batch instead of per slice.
        **kwargs: `name`, `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes:
        `y_true` int `[B, H, W]` or `[B, H, W, 1]`; `y_pred` `[B, H, W, C]`; per-slice loss `[B]`.

    Example:
        >>> loss = FocalTverskyLoss(num_classes=4, alpha=0.7, beta=0.3, gamma=0.75)
        >>> over_the_batch = FocalTverskyLoss(num_classes=4, batch_tversky=True)
    """

    def __init__(
        self,
        num_classes,
        class_weights=None,
        alpha=0.7,
        beta=0.3,
        gamma=0.75,
        smooth=1.0,
        batch_tversky=False,
        name="focal_tversky",
        **kwargs,
    ):
        super().__init__(num_classes, class_weights, name=name, **kwargs)
        if alpha < 0 or beta < 0 or alpha + beta == 0 or not gamma > 0:
            raise ValueError(
                f"need alpha >= 0, beta >= 0 (not both 0) and gamma > 0; got alpha={alpha}, beta={beta}, gamma={gamma}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.smooth = _validate_smooth(smooth)
        self.batch_tversky = bool(batch_tversky)

    def call(self, y_true, y_pred):
        truth, probabilities, weights = self._prepare(y_true, y_pred)
        axes = (0, 1, 2) if self.batch_tversky else (1, 2)
        true_positives = ops.sum(truth * probabilities, axis=axes)
        false_negatives = ops.sum(truth, axis=axes) - true_positives
        false_positives = ops.sum(probabilities, axis=axes) - true_positives
        tversky = (true_positives + self.smooth) / (
            true_positives + self.alpha * false_negatives + self.beta * false_positives + self.smooth
        )
        focal = ops.power(ops.maximum(1.0 - tversky, PROBABILITY_FLOOR), self.gamma)
        loss = _weighted_class_mean(focal, weights)
        return _batch_value_per_slice(loss, truth) if self.batch_tversky else loss

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha=self.alpha, beta=self.beta, gamma=self.gamma, smooth=self.smooth, batch_tversky=self.batch_tversky
        )
        return config


def ce_batch_dice(num_classes, class_weights=None):
    """`CEDiceLoss` with nnU-Net's Dice term: over the whole batch, foreground classes only."""
    return CEDiceLoss(num_classes, class_weights, batch_dice=True, dice_background=False, name="ce_batch_dice")


def focal_tversky_batch(num_classes, class_weights=None):
    """`FocalTverskyLoss` with its sums over the whole batch."""
    return FocalTverskyLoss(num_classes, class_weights, batch_tversky=True, name="focal_tversky_batch")


LOSSES = {
    "ce": CrossEntropyLoss,
    "dice": SoftDiceLoss,
    "ce_dice": CEDiceLoss,
    "ce_batch_dice": ce_batch_dice,
    "focal_tversky": FocalTverskyLoss,
    "focal_tversky_batch": focal_tversky_batch,
}
"""Loss name (as used in configs, command lines and the tuner) -> class."""


def get(name, num_classes, class_weights=None):
    """Builds a loss by name with its default settings.

    Args:
        name: one of `"ce"`, `"dice"`, `"ce_dice"`, `"ce_batch_dice"`, `"focal_tversky"`,
            `"focal_tversky_batch"`.
        num_classes: number of classes `C`, background included.
        class_weights: optional `C` non-negative per-class weights.

    Returns:
        A `keras.losses.Loss`.

    Raises:
        ValueError: an unknown name (the message lists the valid ones), or bad weights.

    Example:
        >>> get("focal_tversky", num_classes=4).name
        'focal_tversky'
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name](num_classes, class_weights=class_weights)
