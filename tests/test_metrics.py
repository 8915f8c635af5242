"""Metrics: hand-computed report cases, a direct NumPy reference, Keras metrics equal to the report
over several batches (eagerly, in `fit`, under MirroredStrategy, on the JAX backend), validation, saving."""

import importlib.util
import json
import math
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from tf_resattn import metrics
from tf_resattn.classes import class_names

NAN = float("nan")


def _labels(rows):
    """Nested lists -> int label maps [N, H, W]."""
    return np.asarray(rows, dtype=np.int64)


def _one_hot_probabilities(labels, num_classes):
    """Label maps [N, H, W] -> soft probabilities [N, H, W, C] whose argmax is `labels`."""
    return (np.eye(num_classes)[labels] * 0.6 + 0.4 / num_classes).astype("float32")


def _assert_same(actual, expected, path="report"):
    """Recursive comparison of report values: floats to 1e-9, NaN equal to NaN."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            _assert_same(actual[key], value, f"{path}[{key!r}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{path}: expected NaN, got {actual}"
    else:
        assert actual == pytest.approx(expected, abs=1e-9), f"{path}: expected {expected}, got {actual}"


# (case, y_true, y_pred, num_classes, expected subset of the report)
REPORT_CASES = [
    (
        "perfect prediction; class 3 absent everywhere is undefined",
        _labels([[[1, 2, 0, 0]], [[0, 1, 1, 0]]]),
        _labels([[[1, 2, 0, 0]], [[0, 1, 1, 0]]]),
        4,
        {
            "mean_foreground_dice": 1.0,
            "dice": {"ground_glass": 1.0, "consolidation": 1.0, "pleural_effusion": NAN},
            "dice_pooled": {"ground_glass": 1.0, "consolidation": 1.0, "pleural_effusion": NAN},
            "iou": {"ground_glass": 1.0, "consolidation": 1.0, "pleural_effusion": NAN},
            "pixel_accuracy": 1.0,
            "paper_style_dsc": 1.0,
            "precision": {"ground_glass": 1.0, "pleural_effusion": NAN},
            "recall": {"consolidation": 1.0, "pleural_effusion": NAN},
            "slices_with_class": {"ground_glass": 2, "consolidation": 1, "pleural_effusion": 0},
            "false_positive_slices": {"ground_glass": 0, "consolidation": 0, "pleural_effusion": 0},
            "num_slices": 2,
        },
    ),
    (
        "false-positive slice is counted apart, not as Dice 0; absent-and-unpredicted is not 1.0",
        _labels([[[1, 1, 0, 0]], [[0, 0, 0, 0]]]),
        _labels([[[1, 0, 0, 0]], [[0, 0, 1, 1]]]),
        4,
        {
            "dice": {"ground_glass": 2 / 3, "consolidation": NAN},
            "mean_foreground_dice": 2 / 3,
            "iou": {"ground_glass": 1 / 2},
            "dice_pooled": {"ground_glass": 2 / 5, "consolidation": NAN},
            "precision": {"ground_glass": 1 / 3, "consolidation": NAN},
            "recall": {"ground_glass": 1 / 2, "consolidation": NAN},
            "mean_precision": 1 / 3,
            "mean_recall": 1 / 2,
            "pixel_accuracy": 5 / 8,
            "paper_style_dsc": (8 / 11 + 2 / 5) / 2,
            "slices_with_class": {"ground_glass": 1},
            "false_positive_slices": {"ground_glass": 1, "consolidation": 0},
        },
    ),
    (
        "empty prediction: present classes score 0, precision of a missed class is 0",
        _labels([[[1, 2, 0, 0]]]),
        _labels([[[0, 0, 0, 0]]]),
        4,
        {
            "dice": {"ground_glass": 0.0, "consolidation": 0.0, "pleural_effusion": NAN},
            "mean_foreground_dice": 0.0,
            "precision": {"ground_glass": 0.0, "consolidation": 0.0, "pleural_effusion": NAN},
            "recall": {"ground_glass": 0.0, "pleural_effusion": NAN},
            "mean_precision": 0.0,
            "mean_recall": 0.0,
            "pixel_accuracy": 0.5,
            "paper_style_dsc": (2 / 3 + 0 + 0) / 3,
        },
    ),
    (
        "all-background slices: every foreground figure is undefined",
        np.zeros((2, 2, 2), np.int64),
        np.zeros((2, 2, 2), np.int64),
        4,
        {
            "mean_foreground_dice": NAN,
            "dice": {"ground_glass": NAN, "consolidation": NAN, "pleural_effusion": NAN},
            "mean_precision": NAN,
            "mean_recall": NAN,
            "pixel_accuracy": 1.0,
            "paper_style_dsc": 1.0,
            "slices_with_class": {"ground_glass": 0, "consolidation": 0, "pleural_effusion": 0},
        },
    ),
    (
        "paper-style DSC (with background) far above the foreground Dice",
        np.pad(np.ones((1, 2, 2), np.int64), ((0, 0), (0, 8), (0, 8))),
        np.zeros((1, 10, 10), np.int64),
        2,
        {
            "mean_foreground_dice": 0.0,
            "dice": {"ground_glass": 0.0},
            "paper_style_dsc": (2 * 96 / (96 + 100) + 0.0) / 2,
            "pixel_accuracy": 0.96,
        },
    ),
]


@pytest.mark.parametrize("case, y_true, y_pred, num_classes, expected", REPORT_CASES, ids=[c[0] for c in REPORT_CASES])
def test_report_on_hand_computed_cases(case, y_true, y_pred, num_classes, expected):
    report = metrics.segmentation_report(y_true, y_pred, num_classes)
    _assert_same(report, expected)
    json.dumps(report)  # plain Python values only


def test_report_keys_and_class_names():
    report = metrics.segmentation_report(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), 4)
    assert set(report) == {
        "mean_foreground_dice", "dice", "dice_pooled", "iou", "pixel_accuracy", "precision", "recall",
        "mean_precision", "mean_recall", "paper_style_dsc", "slices_with_class", "false_positive_slices", "num_slices",
    }  # fmt: skip
    for key in ("dice", "dice_pooled", "iou", "precision", "recall", "slices_with_class", "false_positive_slices"):
        assert tuple(report[key]) == class_names(4)[1:]


def _reference(y_true, y_pred, num_classes):
    """Direct NumPy reference built from boolean masks, slice by slice (no confusion matrices)."""
    per_slice, iou = np.full((len(y_true), num_classes), NAN), np.full((len(y_true), num_classes), NAN)
    pooled, precision, recall = [], [], []
    for c in range(num_classes):
        truth, predicted = y_true == c, y_pred == c
        for n in range(len(y_true)):
            t, p = truth[n], predicted[n]
            if t.any():
                per_slice[n, c] = 2 * (t & p).sum() / (t.sum() + p.sum())
                iou[n, c] = (t & p).sum() / (t | p).sum()
        tp = (truth & predicted).sum()
        pooled.append(2 * tp / (truth.sum() + predicted.sum()) if truth.any() or predicted.any() else NAN)
        precision.append(tp / predicted.sum() if predicted.any() else (0.0 if truth.any() else NAN))
        recall.append(tp / truth.sum() if truth.any() else NAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: classes never present
        dice, iou_mean = np.nanmean(per_slice, axis=0), np.nanmean(iou, axis=0)
    return {
        "per_slice": per_slice,
        "dice": dice,
        "iou": iou_mean,
        "pooled": np.array(pooled),
        "precision": np.array(precision),
        "recall": np.array(recall),
        "accuracy": (y_true == y_pred).mean(),
        "paper_style_dsc": np.nanmean(pooled),
    }


def _random_labels(seed, shape=(9, 12, 10), num_classes=4):
    """Random label maps with structure: all-background slices, a class missing from the truth."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(num_classes, size=shape, p=[0.7, 0.15, 0.1, 0.05])
    y_true[y_true == num_classes - 1] = 0 if seed % 2 else num_classes - 1  # odd seeds: last class never in truth
    y_true[0] = 0
    y_pred = np.where(rng.random(shape) < 0.7, y_true, rng.integers(0, num_classes, shape))
    y_pred[1] = 0
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_functions_match_direct_reference(seed):
    y_true, y_pred = _random_labels(seed)
    reference = _reference(y_true, y_pred, 4)
    np.testing.assert_allclose(metrics.per_slice_dice(y_true, y_pred, 4), reference["per_slice"], equal_nan=True)
    np.testing.assert_allclose(metrics.pooled_dice(y_true, y_pred, 4), reference["pooled"], equal_nan=True)
    precision, recall = metrics.precision_recall(y_true, y_pred, 4)
    np.testing.assert_allclose(precision, reference["precision"], equal_nan=True)
    np.testing.assert_allclose(recall, reference["recall"], equal_nan=True)
    report = metrics.segmentation_report(y_true, y_pred, 4)
    names = class_names(4)[1:]
    np.testing.assert_allclose([report["dice"][n] for n in names], reference["dice"][1:], equal_nan=True)
    np.testing.assert_allclose([report["iou"][n] for n in names], reference["iou"][1:], equal_nan=True)
    assert report["pixel_accuracy"] == pytest.approx(reference["accuracy"])
    assert report["paper_style_dsc"] == pytest.approx(reference["paper_style_dsc"])
    assert report["mean_foreground_dice"] == pytest.approx(np.nanmean(reference["dice"][1:]))


BAD_INPUTS = [
    ("label 4 with 4 classes", np.full((1, 2, 2), 4), np.zeros((1, 2, 2), int), 4, r"y_true .*\[4\] outside \[0, 4\)"),
    ("uint8 255 mask", np.full((1, 2, 2), 255, np.uint8), np.zeros((1, 2, 2), np.uint8), 4, r"\[255\] outside"),
    ("negative prediction", np.zeros((1, 2, 2), int), np.full((1, 2, 2), -1), 4, r"y_pred .*\[-1\] outside"),
    ("shape mismatch", np.zeros((1, 2, 2), int), np.zeros((1, 2, 3), int), 4, r"\(1, 2, 2\) differs .*\(1, 2, 3\)"),
    ("probabilities passed", np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), np.float32), 4, "integer labels"),
    ("rank 2", np.zeros((2, 2), int), np.zeros((2, 2), int), 4, r"\[N, H, W\]"),
    ("one class", np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), 1, "num_classes"),
    ("no slices", np.zeros((0, 2, 2), int), np.zeros((0, 2, 2), int), 4, "no pixels"),
]


@pytest.mark.parametrize("case, y_true, y_pred, num_classes, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_report_rejects_bad_input(case, y_true, y_pred, num_classes, message):
    with pytest.raises(ValueError, match=message):
        metrics.segmentation_report(y_true, y_pred, num_classes)


def _keras_results(metric_list, y_true, probabilities, batch_size):
    for metric in metric_list:
        for start in range(0, len(y_true), batch_size):
            metric.update_state(y_true[start : start + batch_size], probabilities[start : start + batch_size])
    return {metric.name: float(metric.result()) for metric in metric_list}


def _expected_logs(report):
    """The report's figures under the names the Keras metrics log."""
    expected = {
        "mean_fg_dice": report["mean_foreground_dice"],
        "pixel_accuracy": report["pixel_accuracy"],
        "mean_precision": report["mean_precision"],
        "mean_recall": report["mean_recall"],
    }
    for name in report["dice"]:
        expected[f"dice_{name}"] = report["dice"][name]
        expected[f"iou_{name}"] = report["iou"][name]
    return expected


@pytest.mark.parametrize("seed, batch_size", [(0, 2), (1, 4), (2, 9)])
def test_keras_metrics_equal_report_over_batches(seed, batch_size):
    y_true, y_pred = _random_labels(seed)
    results = _keras_results(metrics.default_metrics(4), y_true, _one_hot_probabilities(y_pred, 4), batch_size)
    expected = _expected_logs(metrics.segmentation_report(y_true, y_pred, 4))
    assert set(results) == set(expected)
    np.testing.assert_allclose([results[k] for k in expected], list(expected.values()), rtol=1e-6, equal_nan=True)


def test_keras_metrics_accept_channel_labels_and_reset():
    y_true, y_pred = _random_labels(0)
    dice = metrics.MeanForegroundDice(4)
    dice.update_state(y_true[..., None], _one_hot_probabilities(y_pred, 4))
    assert float(dice.result()) == pytest.approx(metrics.segmentation_report(y_true, y_pred, 4)["mean_foreground_dice"])
    dice.reset_state()
    assert math.isnan(float(dice.result()))
    dice.update_state(np.ones((1, 2, 2), int), _one_hot_probabilities(np.ones((1, 2, 2), int), 4))
    assert float(dice.result()) == pytest.approx(1.0)


METRIC_ERRORS = [
    ("background class", lambda: metrics.ClassDice(0, 4), r"\[1, 4\)"),
    ("class out of range", lambda: metrics.ClassIoU(4, 4), "got 4"),
    ("one class", lambda: metrics.default_metrics(1), "num_classes"),
    (
        "wrong channel count",
        lambda: metrics.PixelAccuracy(4).update_state(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 3))),
        r"\[B, H, W, 4\].*\(1, 2, 2, 3\)",
    ),
    (
        "one-hot labels",
        lambda: metrics.MeanForegroundDice(4).update_state(np.zeros((1, 2, 2, 4)), np.zeros((1, 2, 2, 4))),
        "one-hot",
    ),
    (
        "spatial mismatch",
        lambda: metrics.ClassDice(1, 4).update_state(np.zeros((1, 2, 3)), np.zeros((1, 2, 2, 4))),
        "does not match",
    ),
]


@pytest.mark.parametrize("case, make, message", METRIC_ERRORS, ids=[c[0] for c in METRIC_ERRORS])
def test_keras_metrics_reject_bad_arguments(case, make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_default_metric_names():
    assert [m.name for m in metrics.default_metrics(4)] == [
        "mean_fg_dice", "dice_ground_glass", "dice_consolidation", "dice_pleural_effusion",
        "iou_ground_glass", "iou_consolidation", "iou_pleural_effusion",
        "pixel_accuracy", "mean_precision", "mean_recall",
    ]  # fmt: skip


def test_metric_config_round_trip():
    y_true, y_pred = _random_labels(2)
    for metric in metrics.default_metrics(4):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric)
        assert restored.get_config() == metric.get_config()
        probabilities = _one_hot_probabilities(y_pred, 4)
        original_result = _keras_results([metric], y_true, probabilities, 3)
        assert _keras_results([restored], y_true, probabilities, 3) == pytest.approx(original_result, nan_ok=True)


def _images_and_masks(seed, n=6, size=8):
    """Random images [n, size, size, 1] in [0, 1] and 4-class masks [n, size, size] with all classes."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size, 1), dtype=np.float32)
    return images, rng.choice(4, size=(n, size, size), p=[0.6, 0.2, 0.15, 0.05]).astype("int32")


def _tiny_model(num_classes=4, size=8):
    inputs = keras.Input((size, size, 1))
    outputs = keras.layers.Conv2D(num_classes, 3, padding="same", activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_evaluate_and_saved_model_give_report_figures(tmp_path):
    images, masks = _images_and_masks(3)
    model = _tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=metrics.default_metrics(4))
    logs = model.evaluate(images, masks, batch_size=4, return_dict=True, verbose=0)
    report = metrics.segmentation_report(masks, model.predict(images, verbose=0).argmax(-1), 4)
    for name, value in _expected_logs(report).items():
        assert logs[name] == pytest.approx(value, rel=1e-5, nan_ok=True), name
    model.save(tmp_path / "tiny.keras")
    reloaded = keras.models.load_model(tmp_path / "tiny.keras")
    assert reloaded.evaluate(images, masks, batch_size=4, return_dict=True, verbose=0) == logs


def test_fit_logs_equal_report_under_single_replica_mirrored_strategy():
    import tensorflow as tf  # the strategy is TensorFlow's; the metrics themselves are backend-neutral

    images, masks = _images_and_masks(4)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = _tiny_model()
        frozen = keras.optimizers.SGD(learning_rate=0.0)  # weights stay put, so the epoch's logs are checkable
        model.compile(optimizer=frozen, loss="sparse_categorical_crossentropy", metrics=metrics.default_metrics(4))
    history = model.fit(images, masks, batch_size=3, epochs=1, verbose=0).history
    logs = {name: values[-1] for name, values in history.items()}
    report = metrics.segmentation_report(masks, model.predict(images, verbose=0).argmax(-1), 4)
    for name, value in _expected_logs(report).items():
        assert logs[name] == pytest.approx(value, rel=1e-5, nan_ok=True), name


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tf_resattn import metrics
    rng = np.random.default_rng(5)
    images = rng.random((8, 8, 8, 1), dtype=np.float32)
    masks = rng.choice(4, size=(8, 8, 8), p=[0.6, 0.2, 0.15, 0.05]).astype("int32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        inputs = keras.Input((8, 8, 1))
        model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", activation="softmax")(inputs))
        frozen = keras.optimizers.SGD(learning_rate=0.0)
        model.compile(optimizer=frozen, loss="sparse_categorical_crossentropy", metrics=metrics.default_metrics(4))
    history = model.fit(images, masks, batch_size=4, epochs=1, verbose=0).history
    logs = {name: values[-1] for name, values in history.items()}
    report = metrics.segmentation_report(masks, model.predict(images, verbose=0).argmax(-1), 4)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "logs": logs, "report": report}))
    """
)


@pytest.mark.slow
def test_fit_logs_equal_report_under_mirrored_strategy_with_two_replicas():
    """Each replica sees half of every batch; the summed metric variables must give the report's figures."""
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    for name, value in _expected_logs(result["report"]).items():
        assert result["logs"][name] == pytest.approx(value, rel=1e-5, nan_ok=True), name


JAX_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np
    import keras
    from tf_resattn import losses, metrics
    rng = np.random.default_rng(7)
    images = rng.random((6, 8, 8, 1), dtype=np.float32)
    masks = rng.choice(4, size=(6, 8, 8), p=[0.6, 0.2, 0.15, 0.05]).astype("int32")
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", activation="softmax")(inputs))
    frozen = keras.optimizers.SGD(learning_rate=0.0)
    model.compile(optimizer=frozen, loss=losses.get("ce_dice", 4), metrics=metrics.default_metrics(4))
    history = model.fit(images, masks, batch_size=3, epochs=1, verbose=0).history
    probabilities = np.asarray(model.predict(images, verbose=0))
    print(json.dumps({
        "backend": keras.backend.backend(),
        "logs": {name: values[-1] for name, values in history.items()},
        "report": metrics.segmentation_report(masks, probabilities.argmax(-1), 4),
        "masks": masks.tolist(),
        "probabilities": probabilities.tolist(),
        "losses": {name: float(losses.get(name, 4, [0.5, 1, 1, 2])(masks, probabilities)) for name in losses.LOSSES},
    }))
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (optional backend)")
def test_losses_and_metrics_on_jax_backend_match_tensorflow_and_report():
    from tf_resattn import losses

    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    for name, value in _expected_logs(result["report"]).items():
        assert result["logs"][name] == pytest.approx(value, rel=1e-5, nan_ok=True), name
    masks, probabilities = np.asarray(result["masks"]), np.asarray(result["probabilities"], dtype="float32")
    for name, value in result["losses"].items():
        assert value == pytest.approx(float(losses.get(name, 4, [0.5, 1, 1, 2])(masks, probabilities)), rel=1e-5), name
