"""Fold ensembles and test-time augmentation as one Keras model, for prediction and export alike.

`averaged_model(models, tta)` returns a functional model `[N, H, W, 1] -> [N, H, W, C]` whose
output is the mean of the members' probabilities; with `tta`, each member also sees the eight
quarter turns and mirror images of the input (the symmetries of the square), each output turned
back before the mean, as nnU-Net mirrors its inputs (8x the arithmetic). A model of a fixed square
size runs the eight views as one batch (`DihedralViews`, `DihedralMean`): one call of 8N images
rather than eight of N; a model of any size calls its member once per view (`DihedralTransform`). One
model means that `predict.py` runs it like any `.keras` model and `export.py` writes it as one
SavedModel and one set of TFLite files.

`fold_models(path)` finds the `fold_<k>/best.keras` files of a cross-validation run, whose mean
is the run's ensemble.
"""

import pathlib

import keras

from tf_resattn.inference.errors import ExportError
from tf_resattn.layers import DihedralMean, DihedralTransform, DihedralViews
from tf_resattn.layers.dihedral import SYMMETRIES

BEST_MODEL = "best.keras"


def averaged_model(models, tta=False, name=None):
    """The mean of `models`' probabilities, each over the 8 symmetries of its input when `tta`.

    Args:
        models: one or more Keras segmentation models taking `[N, H, W, 1]`.
        tta: average over quarter turns and mirror images too (needs models that take any size
            when the input is not square).
        name: the model's name (default `ensemble_<n>` or `<member>_tta`).

    Returns:
        A `keras.Model`; a single model without `tta` is returned as it is. The members are left
        as they are: members that share a name (the fold models of a run all carry the variant's)
        each run inside a model of their own named `<name>_<k>` (`distinct_names`), since one
        Keras model cannot hold two layers of one name.
    """
    models = list(models)
    if not models:
        raise ValueError("averaged_model needs at least one model")
    if len(models) == 1 and not tta:
        return models[0]
    first = models[0]
    models = distinct_names(models)
    shape = tuple(models[0].input_shape[1:])
    if tta and None not in shape[:2] and shape[0] != shape[1]:
        raise ValueError(
            f"test-time quarter turns need square inputs or a model of any size; this one takes {shape[0]}x{shape[1]}"
        )
    inputs = keras.Input(shape, name="images")
    if tta and None not in shape[:2]:
        views = DihedralViews()(inputs)
        outputs = [DihedralMean(dtype="float32")(model(views)) for model in models]
    else:
        outputs = []
        for model in models:
            for turns, flip in SYMMETRIES if tta else ((0, False),):
                x = DihedralTransform(turns, flip)(inputs) if (turns or flip) else inputs
                y = model(x)
                outputs.append(DihedralTransform(turns, flip, inverse=True)(y) if (turns or flip) else y)
    mean = keras.layers.Average(dtype="float32")(outputs) if len(outputs) > 1 else outputs[0]
    default = f"ensemble_{len(models)}" if len(models) > 1 else first.name
    averaged = keras.Model(inputs, mean, name=name or default + ("_tta" if tta else ""))
    averaged.variant = getattr(first, "variant", first.name)
    return averaged


def distinct_names(models):
    """`models` as they are when their names differ, else each inside a functional model named `<name>_<k>`.

    A wrapper `[N, H, W, 1] -> [N, H, W, C]` calls its member unchanged (same weights, same
    outputs); the caller's model objects keep their names and attributes.
    """
    if len({model.name for model in models}) == len(models):
        return models
    wrapped = []
    for k, model in enumerate(models):
        inputs = keras.Input(tuple(model.input_shape[1:]))
        wrapped.append(keras.Model(inputs, model(inputs), name=f"{model.name}_{k}"))
    return wrapped


def fold_models(path):
    """The `fold_<k>/best.keras` (or `fold_all/best.keras`) files of a run folder or of one variant's folder, sorted by fold.

    Returns None when `path` is no such folder.

    Raises:
        ExportError: a run folder holding several variants (the message names the folders to pass).
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        return None
    direct = sorted(path.glob(f"fold_*/{BEST_MODEL}"), key=_fold_number)
    if direct:
        return direct
    variants = sorted({p.parent.parent.name for p in path.glob(f"*/fold_*/{BEST_MODEL}")})
    if len(variants) > 1:
        choices = ", ".join(str(path / v) for v in variants)
        raise ExportError(f"run folder {path} holds the fold models of {len(variants)} variants; pass one of {choices}")
    if variants:
        return sorted(path.glob(f"{variants[0]}/fold_*/{BEST_MODEL}"), key=_fold_number)
    return None


def _fold_number(best_model):
    """Sort key of `fold_<k>/best.keras`; `fold_all` (`--train-all`) first."""
    number = best_model.parent.name.split("_", 1)[1]
    return -1 if number == "all" else int(number)
