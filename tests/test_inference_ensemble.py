"""Fold ensembles and test-time augmentation as one Keras model: against NumPy averages of the members' own outputs."""

import json

import keras
import numpy as np
import pytest
from export_helpers import write_preprocessing

import tf_resattn
from tf_resattn.inference import ExportError, InferenceError
from tf_resattn.inference.ensemble import averaged_model, fold_models
from tf_resattn.inference.predictors import KerasPredictor, load_predictor
from tf_resattn.layers import DihedralMean, DihedralTransform, DihedralViews
from tf_resattn.layers.dihedral import SYMMETRIES

SIZE = 16


def save_model(fold_dir, kernel_size, seed, input_kind="uint8"):
    """A 4-class softmax conv model at 16x16, saved as a training run leaves it (with preprocessing.json).

    Every fold model of a run has the variant's name, so these all share one name too.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(4, kernel_size, padding="same", activation="softmax"),
        ],
        name="unet",
    )
    fold_dir.mkdir(parents=True, exist_ok=True)
    model.save(fold_dir / "best.keras")
    write_preprocessing(fold_dir, input_kind, image_size=SIZE)
    return fold_dir / "best.keras"


def numpy_tta(model, images):
    """The mean over the 8 quarter turns and mirror images, computed with NumPy around `model.predict`."""
    outputs = []
    for turns in range(4):
        turned = np.rot90(images, turns, axes=(1, 2))
        outputs.append(np.rot90(model.predict(turned, verbose=0), -turns, axes=(1, 2)))
        mirrored = model.predict(np.ascontiguousarray(turned[:, :, ::-1]), verbose=0)[:, :, ::-1]
        outputs.append(np.rot90(mirrored, -turns, axes=(1, 2)))
    return np.mean(outputs, axis=0)


@pytest.fixture
def images():
    return np.random.default_rng(1).random((3, SIZE, SIZE, 1)).astype(np.float32)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_dihedral_transform_matches_numpy_and_is_undone(turns, flip):
    x = np.random.default_rng(turns).random((2, 3, 5, 2)).astype(np.float32)
    expected = np.rot90(x, turns, axes=(1, 2))
    expected = expected[:, :, ::-1] if flip else expected
    forward = DihedralTransform(turns, flip)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(forward(x)), expected)
    assert forward.compute_output_shape(x.shape) == expected.shape
    back = DihedralTransform.from_config(DihedralTransform(turns, flip, inverse=True).get_config())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back(expected.copy())), x)


def test_dihedral_transform_rejects_bad_turns():
    with pytest.raises(ValueError, match="`turns` must be 0, 1, 2 or 3, got 4"):
        DihedralTransform(4)


def test_dihedral_views_are_the_eight_transforms_in_one_batch_and_their_mean_undoes_them():
    x = np.random.default_rng(5).random((3, 4, 4, 2)).astype(np.float32)
    views = keras.ops.convert_to_numpy(DihedralViews()(x))
    assert views.shape == (24, 4, 4, 2) == DihedralViews().compute_output_shape(x.shape)
    for v, (turns, flip) in enumerate(SYMMETRIES):
        expected = np.rot90(x, turns, axes=(1, 2))
        np.testing.assert_array_equal(views[3 * v : 3 * v + 3], expected[:, :, ::-1] if flip else expected)
    scaled = views * np.repeat(np.arange(1, 9, dtype=np.float32), 3)[:, None, None, None]  # view v weighted v + 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(DihedralMean()(scaled)), x * 4.5, rtol=1e-6)
    assert DihedralMean().compute_output_shape((24, 4, 4, 2)) == (3, 4, 4, 2)


def test_tta_runs_the_eight_views_as_one_batch_for_a_square_model_and_one_by_one_for_any_size(tmp_path, images):
    fixed = keras.models.load_model(save_model(tmp_path / "fold_0", kernel_size=3, seed=0))
    assert any(isinstance(layer, DihedralViews) for layer in averaged_model([fixed], tta=True).layers)
    keras.utils.set_random_seed(0)
    any_size = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(4, 3, padding="same")])
    averaged = averaged_model([any_size], tta=True)
    assert not any(isinstance(layer, DihedralViews) for layer in averaged.layers)
    wide = np.random.default_rng(2).random((2, 6, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(averaged.predict(wide, verbose=0), numpy_tta(any_size, wide), atol=1e-5)


def test_tta_of_a_transform_equivariant_model_changes_nothing(tmp_path, images):
    model = keras.models.load_model(save_model(tmp_path / "fold_0", kernel_size=1, seed=0))  # pointwise
    np.testing.assert_allclose(
        averaged_model([model], tta=True).predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )


def test_tta_is_the_mean_over_turned_and_mirrored_inputs(tmp_path, images):
    model = keras.models.load_model(save_model(tmp_path / "fold_0", kernel_size=3, seed=0))
    augmented = averaged_model([model], tta=True).predict(images, verbose=0)
    np.testing.assert_allclose(augmented, numpy_tta(model, images), atol=1e-5)
    assert np.abs(augmented - model.predict(images, verbose=0)).max() > 1e-3  # a 3x3 conv is not equivariant


def test_ensemble_of_one_model_is_that_model_and_of_two_their_mean(tmp_path, images):
    first = keras.models.load_model(save_model(tmp_path / "fold_0", kernel_size=3, seed=0))
    second = keras.models.load_model(save_model(tmp_path / "fold_1", kernel_size=3, seed=1))
    assert averaged_model([first]) is first
    mean = (first.predict(images, verbose=0) + second.predict(images, verbose=0)) / 2
    np.testing.assert_allclose(averaged_model([first, second]).predict(images, verbose=0), mean, atol=1e-6)


def test_members_of_one_name_are_wrapped_not_renamed(tmp_path, images):
    """The caller's models keep their names and attributes; each runs inside a wrapper `<name>_<k>`."""
    members = [keras.models.load_model(save_model(tmp_path / f"fold_{k}", kernel_size=3, seed=k)) for k in range(2)]
    members[0].variant = "unet"
    mean = np.mean([member.predict(images, verbose=0) for member in members], axis=0)
    model = averaged_model(members, tta=True)
    assert [member.name for member in members] == ["unet", "unet"]
    assert members[0].variant == "unet" and not hasattr(members[1], "variant")
    assert {"unet_0", "unet_1"} <= {layer.name for layer in model.layers}
    assert model.name == "ensemble_2_tta" and model.variant == "unet"
    plain = averaged_model(members)
    np.testing.assert_allclose(plain.predict(images, verbose=0), mean, atol=1e-6)
    assert [member.name for member in members] == ["unet", "unet"]


def test_averaged_model_survives_save_and_load(tmp_path, images):
    members = [keras.models.load_model(save_model(tmp_path / f"fold_{k}", kernel_size=3, seed=k)) for k in range(2)]
    model = averaged_model(members, tta=True)
    model.save(tmp_path / "ensemble.keras")
    reloaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_run_folder_gives_the_ensemble_of_its_folds(tmp_path):
    run = tmp_path / "run"
    paths = [save_model(run / "unet" / f"fold_{k}", kernel_size=3, seed=k) for k in (1, 0, 2)]
    assert fold_models(run) == sorted(paths) == fold_models(run / "unet")
    raw = np.random.default_rng(2).integers(0, 256, (2, 24, 20)).astype(np.float32)
    expected = np.mean([KerasPredictor(p)(raw) for p in paths], axis=0)
    np.testing.assert_allclose(load_predictor(run)(raw), expected, atol=1e-6)
    save_model(run / "resattn" / "fold_0", kernel_size=1, seed=3)
    with pytest.raises(ExportError, match="holds the fold models of 2 variants; pass one of"):
        load_predictor(run)


def test_members_with_other_preprocessing_are_refused(tmp_path):
    save_model(tmp_path / "fold_0", kernel_size=1, seed=0)
    save_model(tmp_path / "fold_1", kernel_size=1, seed=1, input_kind="hu")
    with pytest.raises(ExportError, match="other preprocessing than"):
        load_predictor(tmp_path)


def test_predict_with_tta_and_a_run_folder(tmp_path):
    import cv2

    run = tmp_path / "run"
    for k in range(2):
        save_model(run / "unet" / f"fold_{k}", kernel_size=3, seed=k)
    (tmp_path / "in").mkdir()
    cv2.imwrite(
        str(tmp_path / "in" / "slice.png"), np.random.default_rng(3).integers(0, 256, (20, 20)).astype(np.uint8)
    )
    report = tf_resattn.predict(run, tmp_path / "in" / "slice.png", tmp_path / "out", progress=False, tta=True)
    assert report["model_kind"] == "ensemble of 2 keras" and report["test_time_augmentation"] is True
    assert json.loads((tmp_path / "out" / "report.json").read_text())["test_time_augmentation"] is True


def test_exported_ensemble_with_tta_is_one_saved_model_equal_to_keras(tmp_path):
    run = tmp_path / "run"
    for k in range(2):
        save_model(run / "unet" / f"fold_{k}", kernel_size=3, seed=k, input_kind="hu")
    exported = tf_resattn.export_model(run, tmp_path / "export", parity_count=2, tta=True, log=lambda line: None)
    assert exported.folder == tmp_path / "export" and exported.saved_model == tmp_path / "export" / "saved_model"
    assert sorted(exported.tflite) == ["fp16", "fp32", "int8"] and all(
        path.is_file() for path in exported.tflite.values()
    )
    assert exported.parity == json.loads((tmp_path / "export" / "parity.json").read_text())
    raw = np.random.default_rng(4).uniform(-1000, 400, (2, 32, 32)).astype(np.float32)
    served = load_predictor(exported.saved_model)(raw)
    np.testing.assert_allclose(served, load_predictor(run, tta=True)(raw), atol=1e-5)
    with pytest.raises(InferenceError, match="baked in when exporting"):
        load_predictor(exported.saved_model, tta=True)
