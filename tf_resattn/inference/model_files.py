"""Finding what a model path is, and loading a trained `.keras` model with its preprocessing.

A path is a `.keras` file, a SavedModel folder (holding `saved_model.pb`) or a
`.tflite` file; `model_kind` says which. `load_averaged_model` also takes a
cross-validation run folder (the mean of its fold models) and test-time
augmentation, as one Keras model. Beside a `.keras` model of a training
run lies `preprocessing.json` (`tf_resattn.data.Preprocessing.to_config()`);
beside exported `.tflite` files `export` writes the same file. A released model is named by its
folder under `saved_models/` (`pretrained_model_path`, `released_or_path`).
"""

import json
import pathlib
import warnings
import zipfile

from tf_resattn.data import Preprocessing
from tf_resattn.inference.ensemble import averaged_model, fold_models
from tf_resattn.inference.errors import ExportError

PREPROCESSING_FILE = "preprocessing.json"
MODEL_KINDS = ("keras", "saved_model", "tflite")


def model_kind(path):
    """Returns `"keras"`, `"saved_model"` or `"tflite"` for a model path; `ExportError` otherwise."""
    path = pathlib.Path(path)
    if not path.exists():
        raise ExportError(f"model {path} does not exist; pass a .keras file, a SavedModel folder or a .tflite file")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        if (path / "saved_model" / "saved_model.pb").is_file():
            raise ExportError(f"{path} is an export folder; pass {path / 'saved_model'} or one of its .tflite files")
        raise ExportError(
            f"folder {path} holds no saved_model.pb; pass a SavedModel folder, a .keras or a .tflite file"
        )
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return "keras"
    if suffix == ".tflite":
        return "tflite"
    raise ExportError(
        f"{path}: unknown model file type {suffix!r}; pass a .keras file, a SavedModel folder or a .tflite file"
    )


MODEL_FILE = "model.keras"
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
RELEASE_FOLDERS = (_PACKAGE / "saved_models", _PACKAGE.parent / "saved_models")
"""Where releases lie: inside the installed package, or beside it in a source checkout."""


def pretrained_names():
    """Names of the released models found on disk, sorted."""
    return sorted({p.parent.name for folder in RELEASE_FOLDERS for p in folder.glob(f"*/{MODEL_FILE}")})


def pretrained_model_path(name):
    """`model.keras` of the released model `name`; `ExportError` naming the releases there are otherwise."""
    for folder in RELEASE_FOLDERS:
        path = folder / str(name) / MODEL_FILE
        if path.is_file():
            return path
    known = ", ".join(pretrained_names()) or "none"
    raise ExportError(f"no released model named {name!r} (released: {known}); pass a model file or one of those names")


def released_or_path(model):
    """`model` as a path: itself when it exists, else the `model.keras` of the released model of that name."""
    path = pathlib.Path(str(model))
    if path.exists() or any(sep in str(model) for sep in "/\\") or path.suffix:
        return path
    return pretrained_model_path(model)


def read_preprocessing(model_path, required=True):
    """Reads `preprocessing.json` beside `model_path`; None when absent and not `required`."""
    path = pathlib.Path(model_path).parent / PREPROCESSING_FILE
    if not path.is_file():
        if required:
            raise ExportError(f"{path} not found; the model's preprocessing must lie beside it (as export writes it)")
        return None
    try:
        return Preprocessing.from_config(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{path} is not a valid preprocessing file ({e}); rewrite it from the training run") from e


def load_keras_model(path, preprocessing=None):
    """Loads a `.keras` model and decides its preprocessing.

    Args:
        path: a `.keras` file saved by `tf_resattn` (layers are registered on import).
        preprocessing: a `Preprocessing` to use; None reads `preprocessing.json` beside the
            model, or (with a warning) assumes 8-bit input at the model's input size.

    Returns:
        `(model, preprocessing)`, the preprocessing's `image_size` set to the
        model's fixed input size when the model has one.

    Raises:
        ExportError: unreadable or truncated model, a model that is not one grey channel in,
            or a preprocessing size that differs from the model's input size.
    """
    import keras

    from tf_resattn import layers, losses, metrics  # noqa: F401  (registers the layers, losses and metrics)

    path = pathlib.Path(path)
    if model_kind(path) != "keras":
        raise ExportError(f"{path} is not a .keras model; export starts from the .keras file of a training run")
    if not zipfile.is_zipfile(path):
        raise ExportError(
            f"{path} is not a complete .keras file (one is a zip archive; this one is truncated or corrupt); copy or save it again"
        )
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for corrupt or foreign files
        message = " ".join(str(e).split())[:200]
        raise ExportError(
            f"cannot load Keras model {path} ({type(e).__name__}: {message}); pass a .keras file saved by tf_resattn"
        ) from e
    if preprocessing is None:
        preprocessing = read_preprocessing(path, required=False)
    if preprocessing is None:
        warnings.warn(f"no {PREPROCESSING_FILE} beside {path}: assuming 8-bit grey input", stacklevel=2)
        preprocessing = Preprocessing("uint8")
    return model, fit_preprocessing(model, preprocessing, str(path))


def load_averaged_model(path, tta=False):
    """Loads a `.keras` model, or the fold models of a run folder, as one model with its preprocessing.

    Args:
        path: a `.keras` file, or a cross-validation run folder (or one variant's folder in it).
        tta: average over the 8 quarter turns and mirror images of each input (see `ensemble.py`).

    Returns:
        `(model, preprocessing)`; several folds or `tta` give `ensemble.averaged_model`.

    Raises:
        ExportError: as `load_keras_model`, a run folder of several variants, or fold models
            trained with different preprocessing.
    """
    paths = fold_models(path) or [path]
    loaded = [load_keras_model(p) for p in paths]
    for member, (_, preprocessing) in zip(paths[1:], loaded[1:]):
        if preprocessing != loaded[0][1]:
            raise ExportError(
                f"{member} was trained with other preprocessing than {paths[0]}; ensemble the folds of one run"
            )
    try:
        return averaged_model([model for model, _ in loaded], tta=tta), loaded[0][1]
    except ValueError as error:  # quarter turns of a fixed non-square input size
        raise ExportError(str(error)) from None


def model_input_size(model):
    """`(height, width)` of a model's fixed input size, or None when either is dynamic."""
    height, width = model.input_shape[1:3]
    return None if height is None or width is None else (int(height), int(width))


def fit_preprocessing(model, preprocessing, source):
    """Checks that `model` takes one channel and agrees with `preprocessing`; returns the preprocessing to use."""
    channels = model.input_shape[-1]
    if channels != 1:
        raise ExportError(
            f"{source} takes {channels} input channels; CT slices have one, use a model trained on grey slices"
        )
    size = model_input_size(model)
    if size is None:
        return preprocessing
    if preprocessing.image_size not in (None, size):
        raise ExportError(
            f"{source} takes {size[0]}x{size[1]} inputs but its preprocessing resizes to "
            f"{preprocessing.image_size[0]}x{preprocessing.image_size[1]}; use the {PREPROCESSING_FILE} of its training run"
        )
    return preprocessing.resized(size)
