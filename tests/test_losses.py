"""Losses: hand-computed values, a NumPy reference, class weights, gradients, float16, errors, saving."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_resattn import losses

# One slice of two pixels, two classes: truth [0, 1], probabilities [[0.8, 0.2], [0.4, 0.6]].
HAND_TRUE = np.array([[[0, 1]]])
HAND_PRED = np.array([[[[0.8, 0.2], [0.4, 0.6]]]], dtype="float32")
HAND_CE = (-math.log(0.8) - math.log(0.6)) / 2
HAND_DICE_PER_CLASS = ((2 * 0.8 + 1) / (1 + 1.2 + 1), (2 * 0.6 + 1) / (1 + 0.8 + 1))


def _tversky_term(tp, fn, fp, alpha=0.7, beta=0.3, gamma=0.75):
    return (1 - (tp + 1) / (tp + alpha * fn + beta * fp + 1)) ** gamma


# (case, loss, expected value on HAND_TRUE / HAND_PRED)
HAND_CASES = [
    ("ce", losses.CrossEntropyLoss(2), HAND_CE),
    ("ce weighted", losses.CrossEntropyLoss(2, class_weights=[1, 3]), (-math.log(0.8) - 3 * math.log(0.6)) / 2),
    ("dice", losses.SoftDiceLoss(2), 1 - sum(HAND_DICE_PER_CLASS) / 2),
    (
        "dice weighted",
        losses.SoftDiceLoss(2, class_weights=[1, 3]),
        1 - (HAND_DICE_PER_CLASS[0] + 3 * HAND_DICE_PER_CLASS[1]) / 4,
    ),
    ("dice without background", losses.SoftDiceLoss(2, class_weights=[0, 1]), 1 - HAND_DICE_PER_CLASS[1]),
    ("ce_dice", losses.CEDiceLoss(2), HAND_CE + 1 - sum(HAND_DICE_PER_CLASS) / 2),
    (
        "ce_dice scaled",
        losses.CEDiceLoss(2, ce_weight=0.5, dice_weight=2.0),
        0.5 * HAND_CE + 2 * (1 - sum(HAND_DICE_PER_CLASS) / 2),
    ),
    (
        "focal_tversky",
        losses.FocalTverskyLoss(2),
        (_tversky_term(0.8, 0.2, 0.4) + _tversky_term(0.6, 0.4, 0.2)) / 2,
    ),
    (
        "focal_tversky alpha=beta=0.5 gamma=1 is soft Dice (smooth halves)",
        losses.FocalTverskyLoss(2, alpha=0.5, beta=0.5, gamma=1.0, smooth=0.5),
        1 - sum(HAND_DICE_PER_CLASS) / 2,
    ),
]


@pytest.mark.parametrize("case, loss, expected", HAND_CASES, ids=[c[0] for c in HAND_CASES])
def test_value_on_hand_computed_case(case, loss, expected):
    assert float(loss(HAND_TRUE, HAND_PRED)) == pytest.approx(expected, rel=1e-5)


def _reference(name, y_true, y_pred, weights, smooth=1.0):
    """Per-slice NumPy reference `[B]` of each loss with default settings."""
    num_classes = y_pred.shape[-1]
    truth = np.eye(num_classes)[y_true]
    p = y_pred.astype(np.float64)
    axes = (1, 2)
    ce = -(truth * weights * np.log(np.clip(p, 1e-7, 1))).sum(-1).mean(axes)
    dice = (2 * (truth * p).sum(axes) + smooth) / (truth.sum(axes) + p.sum(axes) + smooth)
    dice_loss = 1 - (dice * weights).sum(-1) / weights.sum()
    tp = (truth * p).sum(axes)
    tversky = (tp + smooth) / (tp + 0.7 * (truth * (1 - p)).sum(axes) + 0.3 * ((1 - truth) * p).sum(axes) + smooth)
    focal = (np.maximum(1 - tversky, 1e-7) ** 0.75 * weights).sum(-1) / weights.sum()
    batch = (0, 1, 2)  # nnU-Net's Dice: over the batch, foreground classes only, the same for every slice
    batch_tp = (truth * p).sum(batch)
    batch_tversky = (batch_tp + smooth) / (
        batch_tp + 0.7 * (truth * (1 - p)).sum(batch) + 0.3 * ((1 - truth) * p).sum(batch) + smooth
    )
    batch_focal = np.full(len(p), (np.maximum(1 - batch_tversky, 1e-7) ** 0.75 * weights).sum() / weights.sum())
    batch_dice = (2 * (truth * p).sum(batch) + smooth) / (truth.sum(batch) + p.sum(batch) + smooth)
    batch_dice_loss = 1 - (batch_dice * weights)[1:].sum() / weights[1:].sum()
    return {
        "ce": ce,
        "dice": dice_loss,
        "ce_dice": ce + dice_loss,
        "ce_batch_dice": ce + batch_dice_loss,
        "focal_tversky": focal,
        "focal_tversky_batch": batch_focal,
    }[name]


def _random_batch(seed, shape=(3, 6, 5), num_classes=4):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, shape)
    logits = rng.normal(size=shape + (num_classes,)) * 2
    y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y_true, y_pred.astype("float32")


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
@pytest.mark.parametrize("class_weights", [None, [0.1, 1.0, 2.0, 4.0]])
def test_matches_numpy_reference(name, class_weights):
    y_true, y_pred = _random_batch(1)
    loss = losses.get(name, 4, class_weights=class_weights)
    weights = np.ones(4) if class_weights is None else np.asarray(class_weights)
    per_slice = _reference(name, y_true, y_pred, weights)
    assert float(loss(y_true, y_pred)) == pytest.approx(per_slice.mean(), rel=1e-5)
    sample_weight = np.array([1.0, 0.0, 2.0])
    assert float(loss(y_true[..., None], y_pred, sample_weight=sample_weight)) == pytest.approx(
        (per_slice * sample_weight).mean(), rel=1e-5
    )


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda batch: losses.SoftDiceLoss(4, class_weights=[0, 1, 1, 1], batch_dice=batch),
        lambda batch: losses.FocalTverskyLoss(4, batch_tversky=batch),
    ],
    ids=["dice", "focal_tversky"],
)
def test_batch_sums_do_not_punish_a_rare_class_on_the_slices_without_it(make_loss):
    """Two pixels' worth of stray probability of a class on a slice without it: the per-slice term
    loses most of that slice's value of the class; the batch term only in proportion to the class's
    pixels in the batch (here an 8x8 lesion on the other slice)."""
    y_true = np.zeros((2, 16, 16), np.int64)
    y_true[0, :8, :8] = 3
    clean = np.eye(4, dtype="float32")[y_true] * 0.996 + 0.001
    stray = clean.copy()
    stray[1, :2, :2] = [0.5, 0.0, 0.0, 0.5]

    def increase(batch):
        loss = make_loss(batch)
        return float(loss(y_true, stray)) - float(loss(y_true, clean))

    assert 0 < increase(batch=True) < 0.2 * increase(batch=False)


def test_batch_tversky_of_a_batch_is_the_per_slice_tversky_of_its_slices_side_by_side():
    y_true, y_pred = _random_batch(7)
    side_by_side = np.concatenate(list(y_true), axis=1)[None], np.concatenate(list(y_pred), axis=1)[None]
    per_slice = losses.FocalTverskyLoss(4, class_weights=[0.5, 1, 1, 2])
    batch = losses.FocalTverskyLoss(4, class_weights=[0.5, 1, 1, 2], batch_tversky=True)
    assert float(batch(y_true, y_pred)) == pytest.approx(float(per_slice(*side_by_side)), rel=1e-5)


def test_unweighted_ce_equals_keras_sparse_categorical_crossentropy():
    y_true, y_pred = _random_batch(2)
    expected = keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred)
    assert float(losses.CrossEntropyLoss(4)(y_true, y_pred)) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_weight_on_a_badly_predicted_class_raises_the_loss(name):
    y_true = np.array([[[0, 0, 1, 1]]])
    y_pred = np.array([[[[0.9, 0.1], [0.9, 0.1], [0.7, 0.3], [0.6, 0.4]]]], dtype="float32")  # class 1 poorly found
    plain = float(losses.get(name, 2)(y_true, y_pred))
    stressed = float(losses.get(name, 2, class_weights=[0.4, 1.6])(y_true, y_pred))  # same total weight as [1, 1]
    relaxed = float(losses.get(name, 2, class_weights=[1.6, 0.4])(y_true, y_pred))
    assert relaxed < plain < stressed


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
@pytest.mark.parametrize("perfect", [False, True], ids=["random", "perfect one-hot"])
def test_gradient_is_finite(name, perfect):
    y_true, _ = _random_batch(3)
    logits = (
        np.where(np.eye(4)[y_true] > 0, 40.0, -40.0) if perfect else np.random.default_rng(3).normal(size=(3, 6, 5, 4))
    )
    logits = tf.Variable(logits.astype("float32"))
    with tf.GradientTape() as tape:
        value = losses.get(name, 4, class_weights=[0.5, 1, 1, 2])(y_true, tf.nn.softmax(logits))
    gradient = tape.gradient(value, logits).numpy()
    assert np.isfinite(float(value)) and np.isfinite(gradient).all()
    if not perfect:
        assert np.abs(gradient).max() > 0


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_float16_probabilities_give_finite_float32_loss(name):
    y_true, y_pred = _random_batch(4)
    y_pred[0] = np.eye(4)[(y_true[0] + 1) % 4]  # exact zeros on the true class: log(0) without the floor
    loss = losses.get(name, 4)
    value16 = loss(y_true, y_pred.astype("float16"))
    assert value16.dtype == "float32" and np.isfinite(float(value16))
    assert float(value16) == pytest.approx(float(loss(y_true, y_pred)), rel=2e-3)


BAD_ARGUMENTS = [
    (
        "unknown name",
        lambda: losses.get("dice_ce", 4),
        "valid names: ce, dice, ce_dice, ce_batch_dice, focal_tversky, focal_tversky_batch",
    ),
    (
        "no foreground dice",
        lambda: losses.CEDiceLoss(3, class_weights=[1, 0, 0], dice_background=False),
        "foreground weight > 0",
    ),
    ("weights too short", lambda: losses.get("ce", 4, class_weights=[1, 1]), "2 entries but num_classes is 4"),
    ("negative weight", lambda: losses.SoftDiceLoss(2, class_weights=[1, -1]), r"\[1.0, -1.0\]"),
    ("all-zero weights", lambda: losses.CEDiceLoss(2, class_weights=[0, 0]), "not all 0"),
    ("one class", lambda: losses.CrossEntropyLoss(1), "num_classes must be an integer >= 2"),
    ("zero smooth", lambda: losses.SoftDiceLoss(4, smooth=0), "smooth must be > 0"),
    ("no gamma", lambda: losses.FocalTverskyLoss(4, gamma=0), "gamma=0"),
    ("no loss term", lambda: losses.CEDiceLoss(4, ce_weight=0, dice_weight=0), "not both 0"),
    (
        "channels differ",
        lambda: losses.CrossEntropyLoss(4)(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 3))),
        r"\[B, H, W, 4\]",
    ),
    ("one-hot labels", lambda: losses.SoftDiceLoss(4)(np.zeros((1, 2, 2, 4)), np.zeros((1, 2, 2, 4))), "one-hot"),
    (
        "size mismatch",
        lambda: losses.FocalTverskyLoss(4)(np.zeros((1, 3, 2)), np.zeros((1, 2, 2, 4))),
        "does not match",
    ),
]


@pytest.mark.parametrize("case, make, message", BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_bad_arguments_raise(case, make, message):
    with pytest.raises(ValueError, match=message):
        make()


CONFIGURED = [
    losses.CrossEntropyLoss(4, class_weights=[0.5, 1, 2, 3]),
    losses.SoftDiceLoss(4, class_weights=[0, 1, 1, 1], smooth=0.5),
    losses.CEDiceLoss(4, ce_weight=0.3, dice_weight=0.7, smooth=2.0),
    losses.CEDiceLoss(4, batch_dice=True, dice_background=False),
    losses.SoftDiceLoss(4, batch_dice=True),
    losses.FocalTverskyLoss(4, alpha=0.6, beta=0.4, gamma=1.5),
    losses.FocalTverskyLoss(4, gamma=1.0, batch_tversky=True),
]


@pytest.mark.parametrize("loss", CONFIGURED, ids=lambda loss: type(loss).__name__)
def test_serialization_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    y_true, y_pred = _random_batch(5)
    assert float(restored(y_true, y_pred)) == float(loss(y_true, y_pred))


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_saved_model_keeps_loss_and_value(tmp_path):
    rng = np.random.default_rng(6)
    images = rng.random((4, 8, 8, 1), dtype=np.float32)
    masks = rng.integers(0, 4, (4, 8, 8)).astype("int32")
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", activation="softmax")(inputs))
    model.compile(loss=losses.CEDiceLoss(4, class_weights=[0.2, 1, 1, 2], dice_weight=0.5))
    before = model.evaluate(images, masks, verbose=0)
    model.save(tmp_path / "tiny.keras")
    reloaded = keras.models.load_model(tmp_path / "tiny.keras")
    assert reloaded.loss.get_config() == model.loss.get_config()
    assert reloaded.evaluate(images, masks, verbose=0) == before
