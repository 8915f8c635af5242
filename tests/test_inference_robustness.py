"""The robustness table: shifts change the images only, and the scores follow from the labels."""

import json

import cv2
import numpy as np
import pytest
from data_helpers import write_png_set

from tf_resattn.inference import robustness, robustness_cli
from tf_resattn.inference.errors import InferenceError


@pytest.fixture
def slices():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 255, (4, 24, 24)).astype(np.float32)
    masks = np.zeros((4, 24, 24), np.uint8)
    masks[:, 8:16, 8:16] = 1
    masks[1, 0:4, 0:4] = 2
    raw[masks > 0] = 250.0  # the lesions are bright
    return raw, masks


@pytest.mark.parametrize("name", list(robustness.SHIFTS))
def test_every_shift_keeps_shape_and_range(name, slices):
    raw, masks = slices
    shifted, shifted_masks = robustness.SHIFTS[name](raw.copy(), masks)
    assert shifted.shape == raw.shape and shifted.min() >= 0 and shifted.max() <= 255
    assert shifted_masks.shape == masks.shape
    if name != "none":
        assert not np.allclose(shifted, raw)


def test_shifts_reach_the_model_and_masks_are_scored_unchanged(slices):
    raw, masks = slices
    seen = []

    def threshold(images):  # a "model": bright pixels are class 1
        seen.append(images.copy())
        return (images > 200).astype(np.uint8)

    rows = robustness.robustness_table(threshold, raw, masks, 4, shifts=["gamma 2", "level -25 (darker)"])
    assert [r["shift"] for r in rows] == ["none", "gamma 2", "level -25 (darker)"]
    np.testing.assert_array_equal(seen[0], raw)
    np.testing.assert_allclose(seen[1], robustness.SHIFTS["gamma 2"](raw, masks)[0])
    expected_none = robustness.infection_dice(masks, threshold(raw))
    assert rows[0]["infection_dice"] == pytest.approx(expected_none) and rows[0]["infection_ratio"] == 1.0
    darker = robustness.infection_dice(
        masks, (robustness.SHIFTS["level -25 (darker)"](raw, masks)[0] > 200).astype(np.uint8)
    )
    assert rows[2]["infection_dice"] == pytest.approx(darker)
    assert rows[2]["infection_ratio"] == pytest.approx(darker / expected_none)


def test_infection_dice_merges_the_classes():
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, :2] = 1
    truth[0, 2:3] = 2
    predicted = np.zeros_like(truth)
    predicted[0, :3] = 3  # every infected pixel called infection, of the wrong class
    assert robustness.infection_dice(truth, predicted) == pytest.approx(1.0)


def test_command_line_writes_table_json_and_plot(tmp_path, capsys):
    import keras
    from export_helpers import write_preprocessing

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 20, 20)).astype(np.uint8)
    masks = np.zeros((3, 20, 20), np.uint8)
    masks[:, 5:10, 5:10] = 1
    data = write_png_set(tmp_path / "data", list(images), list(masks))
    model = keras.Sequential(
        [keras.Input((None, None, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="softmax")]
    )
    (tmp_path / "m").mkdir()
    model.save(tmp_path / "m" / "best.keras")
    write_preprocessing(tmp_path / "m", "uint8", image_size=16)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["0000"], "test": ["0001", "0002"]}))
    out = tmp_path / "out"
    argv = [
        str(tmp_path / "m" / "best.keras"),
        "--data",
        str(data),
        "--splits",
        str(split),
        "--names",
        "conv",
        "--out",
        str(out),
    ]
    assert robustness_cli.main(argv) == 0
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["slices"] == 2 and [r["shift"] for r in saved["models"]["conv"]] == list(robustness.SHIFTS)
    assert "| gamma 2 |" in (out / "robustness.md").read_text() and "| gamma 2 |" in capsys.readouterr().out
    assert cv2.imread(str(out / "robustness.png")) is not None
    assert (
        robustness_cli.main(
            argv[:1] + ["--data", str(data), "--splits", str(tmp_path / "nope.json"), "--out", str(out)]
        )
        == 2
    )
    assert robustness_cli.main(argv + ["--shifts", "gamma 2"]) == 0
    rows = json.loads((out / "robustness.json").read_text())["models"]["conv"]
    assert [r["shift"] for r in rows] == ["none", "gamma 2"] and set(rows[0]["dice"]) == {
        "ground_glass",
        "consolidation",
        "pleural_effusion",
    }
    assert robustness_cli.main(argv + ["--shifts", "gamma 3"]) == 2
    assert "unknown shift 'gamma 3'" in capsys.readouterr().err
    assert (
        robustness_cli.main(argv + ["--shifts", "gamma 2", "--field-margin", "0.1", "--lung-constraint", "none"]) == 0
    )
    saved = json.loads((out / "robustness.json").read_text())
    coverage = saved["truth_inside_lung_field"]
    assert (
        saved["field_margin"] == 0.1
        and list(coverage) == ["none", "gamma 2"]
        and saved["lung_constraint"] == {"conv": None}
    )
    raw, masks = robustness_cli.scored_slices(str(data), str(split))
    assert coverage["gamma 2"] == pytest.approx(
        robustness.truth_inside_field(*robustness.SHIFTS["gamma 2"](raw, masks), 0.1, 4)
    )
    assert "| gamma 2 | " in (out / "robustness.md").read_text().split("the field's share of the image")[1]
    assert cv2.imread(str(out / "worst-combined.png")) is not None and len(saved["worst_under_combined"]) == 2
    assert robustness_cli.main(argv + ["--lung-constraint", "-1"]) == 2
    assert "--lung-constraint takes a margin in [0, 1]" in capsys.readouterr().err


def test_lung_constraint_override_reaches_the_scored_labels(tmp_path, monkeypatch):
    """--lung-constraint replaces the model's own setting before the slices are segmented."""
    seen = []

    class Predictor:
        preprocessing = robustness_cli.dataclasses.replace(
            __import__("tf_resattn").data.Preprocessing("uint8"), lung_constraint=0.3
        )
        num_classes = 4

    predictor = Predictor()
    monkeypatch.setattr("tf_resattn.inference.predictors.load_predictor", lambda path, tta=False: predictor)
    monkeypatch.setattr(
        "tf_resattn.inference.robustness.robustness_table",
        lambda segment, raw, masks, classes, shifts: seen.append(predictor.preprocessing) or [{"shift": "none"}],
    )
    monkeypatch.setattr(
        robustness_cli, "scored_slices", lambda data, splits: (np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))
    )
    monkeypatch.setattr(robustness_cli, "field_coverage", lambda *a: {"none": {"infection": 1.0, "area": 0.5}})
    monkeypatch.setattr(robustness_cli, "write_worst_under_combined", lambda *a: [])
    monkeypatch.setattr("tf_resattn.inference.robustness.plot", lambda tables, path: None)
    monkeypatch.setattr("tf_resattn.inference.robustness.markdown_table", lambda tables: "")
    robustness_cli.run(
        robustness_cli.parse_args(["m.keras", "--data", "d", "--out", str(tmp_path), "--lung-constraint", "0.01"])
    )
    assert seen[-1].lung_constraint == 0.01


def constant_model(folder, label):
    """A `.keras` model (with its preprocessing) that calls every pixel `label`, in `folder/best.keras`."""
    import keras
    from export_helpers import write_preprocessing

    bias = np.zeros(4, np.float32)
    bias[label] = 5.0
    model = keras.Sequential(
        [
            keras.Input((None, None, 1)),
            keras.layers.Conv2D(
                4,
                1,
                activation="softmax",
                kernel_initializer="zeros",
                bias_initializer=keras.initializers.Constant(bias),
            ),
        ]
    )
    folder.mkdir(parents=True)
    model.save(folder / "best.keras")
    write_preprocessing(folder, "uint8", image_size=16)


def two_fold_run(tmp_path):
    """Four labelled slices and a run folder of two folds: fold 0 tests slices 3 and 0 with a model that calls
    everything ground glass, fold 1 tests 1 and 2 with one that calls everything background."""
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (4, 20, 20)).astype(np.uint8)
    masks = np.zeros((4, 20, 20), np.uint8)
    masks[:, 4:12, 6:14] = 1
    data = write_png_set(tmp_path / "data", list(images), list(masks))
    run = tmp_path / "run"
    constant_model(run / "resattn" / "fold_0", 1)
    constant_model(run / "resattn" / "fold_1", 0)
    names = ["0000", "0001", "0002", "0003"]
    folds = [{"train": [1, 2], "val": [], "test": [3, 0]}, {"train": [0, 3], "val": [], "test": [1, 2]}]
    (run / "splits.json").write_text(json.dumps({"n_folds": 2, "names": names, "folds": folds}))
    return data, run, masks


def test_per_fold_scores_each_slice_with_the_model_that_held_it_out(tmp_path):
    from tf_resattn.inference import fold_scoring

    data, run, masks = two_fold_run(tmp_path)
    tests = fold_scoring.fold_tests(run, ["0000", "0001", "0002", "0003"])
    assert [(m.parent.name, list(p)) for m, p in tests] == [("fold_0", [3, 0]), ("fold_1", [1, 2])]
    assert fold_scoring.fold_tests(run / "resattn", ["0003", "0002", "0001", "0000"])[0][1].tolist() == [0, 3]
    with pytest.raises(InferenceError, match="tests slice '0003', which --data lacks"):
        fold_scoring.fold_tests(run, ["0000", "0001", "0002"])
    out = tmp_path / "out"
    argv = [str(run / "resattn"), "--data", str(data), "--per-fold", "--shifts", "gamma 2", "--out", str(out)]
    assert robustness_cli.main(argv) == 0
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["slices"] == 4 and saved["per_fold"]
    # Slices 3 and 0 (fold 0's) called all ground glass, 1 and 2 all background: infection Dice 2*64/(64+400) on
    # two of the four infected slices, 0 on the others.
    expected = robustness.infection_dice(masks, np.stack([np.ones((20, 20))] * 2 + [np.zeros((20, 20))] * 2))
    assert saved["models"][str(run / "resattn")][0]["infection_dice"] == pytest.approx(expected)
    assert expected == pytest.approx(2 * 64 / (64 + 400) / 2)
    assert "each scored by the model of the fold that held it out" in (out / "robustness.md").read_text()


def test_per_fold_refuses_a_split_file_runs_with_other_folds_and_a_model_file(tmp_path, capsys):
    data, run, _ = two_fold_run(tmp_path)
    out = str(tmp_path / "out")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["0000"], "test": ["0001"]}))
    assert robustness_cli.main([str(run), "--data", str(data), "--per-fold", "--splits", str(split), "--out", out]) == 2
    assert "leave out --splits" in capsys.readouterr().err
    other = tmp_path / "other"
    constant_model(other / "fold_0", 0)
    (other / "splits.json").write_text(
        json.dumps({"n_folds": 1, "names": ["0000", "0001"], "folds": [{"train": [0], "val": [], "test": [1]}]})
    )
    assert robustness_cli.main([str(run), str(other), "--data", str(data), "--per-fold", "--out", out]) == 2
    assert "the same folds" in capsys.readouterr().err
    model = str(run / "resattn" / "fold_0" / "best.keras")
    assert robustness_cli.main([model, "--data", str(data), "--per-fold", "--out", out]) == 2
    assert "holds no fold_<k>/best.keras models" in capsys.readouterr().err


def test_routed_sends_each_part_to_its_own_segmenter():
    from tf_resattn.inference.fold_scoring import routed

    segment = routed([lambda raw: raw * 0 + 1, lambda raw: raw * 0 + 2], [2, 1])
    np.testing.assert_array_equal(segment(np.zeros((3, 2, 2)))[:, 0, 0], [1, 1, 2])
    with pytest.raises(ValueError, match="expected 3 slices"):
        segment(np.zeros((4, 2, 2)))
