"""Shared by the export tests: a tiny trained model in a training-run layout and its export, built once per session."""

import json
import pathlib

import numpy as np

IMAGE_SIZE = 64


def train_tiny_model(fold_dir, epochs=40):
    """Trains a small `resattn` on synthetic 64x64 HU slices; saves `best.keras` + `preprocessing.json` in `fold_dir`.

    The model uses LSH attention at both decoder levels (1024 and 4096 tokens,
    buckets of 16). Forty steps make its predictions confident enough for the
    parity targets (after 12 steps the mean top probability is 0.44 and float16
    agrees on 99.89 % of pixels; after 40 it is 0.60 and 99.99 %).
    """
    import keras

    from tf_resattn import build_model
    from tf_resattn.data import synthetic_slices

    fold_dir.mkdir(parents=True, exist_ok=True)
    data = synthetic_slices(n=8, image_size=IMAGE_SIZE, seed=0)
    model = build_model(
        "resattn",
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
        base_filters=8,
        depth=2,
        cardinality=2,
        bottleneck_width=2,
        num_heads=1,
        key_dim=8,
        bucket_size=16,
        n_hashes=2,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.images, data.masks.astype(np.int32), batch_size=8, epochs=epochs, verbose=0)
    model.save(fold_dir / "best.keras")
    write_preprocessing(fold_dir, "hu")
    return fold_dir / "best.keras"


def write_preprocessing(folder, input_kind, image_size=IMAGE_SIZE):
    """Writes `folder/preprocessing.json` for `input_kind` at `image_size`."""
    from tf_resattn.data import Preprocessing

    config = Preprocessing(input_kind, (-1000.0, 400.0), image_size).to_config()
    (pathlib.Path(folder) / "preprocessing.json").write_text(json.dumps(config))


def cached(tmp_path_factory, name, build):
    """Runs `build(folder)` once per session for `name` (any test file); returns the folder."""
    folder = tmp_path_factory.getbasetemp() / "export_cache" / name
    marker = folder / ".done"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        build(folder)
        marker.write_text("")
    return folder


def trained_model(tmp_path_factory):
    """`best.keras` (HU input, `preprocessing.json` beside it) of `train_tiny_model`."""
    return (
        cached(tmp_path_factory, "run", lambda f: train_tiny_model(f / "resattn" / "fold_0"))
        / "resattn"
        / "fold_0"
        / "best.keras"
    )


def exported(tmp_path_factory):
    """The export folder (`saved_model/`, TFLite files, `parity.json`) of `trained_model`."""
    from tf_resattn.export import export_model

    model = trained_model(tmp_path_factory)
    return (
        cached(tmp_path_factory, "export", lambda f: export_model(model, f / "out", parity_count=8, log=lambda _: None))
        / "out"
    )


def run_in_litert(tflite_path, images):
    """Probabilities of the `.tflite` file at `tflite_path` for `images`, from the plain litert interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
