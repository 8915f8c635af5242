"""Cross-validated scoring: each fold's model on its own test slices, every labelled slice once.

A cross-validation run (`cv_train.py --out RUN`) keeps its folds in `RUN/splits.json` (`names`, and
per fold the `test` positions in them) and one model per fold in `RUN[/VARIANT]/fold_<k>/best.keras`.
Scoring each fold's model on that fold's test slices, and pooling the label maps, measures the recipe
on every labelled slice with models that never saw it (the fold ensemble would have seen most of them).

- `fold_tests(path, names)`: `[(best.keras path, positions in names)]`, one per fold.
- `routed(segmenters, sizes)`: one segmenter for slices that come fold after fold, each part through
  its own fold's segmenter.
"""

import json
import pathlib

import numpy as np

from tf_resattn.inference.ensemble import fold_models
from tf_resattn.inference.errors import InferenceError

SPLITS_FILE = "splits.json"


def fold_tests(path, names):
    """The fold models of a run folder (or one variant's folder) with their test slices.

    Args:
        path: a `cv_train.py` run folder, or one variant's folder in it.
        names: slice names of the loaded data, in its order.

    Returns:
        `[(model path, int positions [n_k] in names)]`, in fold order (`fold_all` left out: it has no test slices).

    Raises:
        InferenceError: no fold models or no `splits.json` there, or a test slice that `names` lacks.
    """
    path = pathlib.Path(path)
    models = [m for m in fold_models(path) or () if m.parent.name != "fold_all"]
    if not models:
        raise InferenceError(f"{path} holds no fold_<k>/best.keras models; pass a cv_train.py run folder")
    splits_path = next((p / SPLITS_FILE for p in (path, path.parent) if (p / SPLITS_FILE).is_file()), None)
    if splits_path is None:
        raise InferenceError(f"{path} has no {SPLITS_FILE} beside its folds; pass the run folder cv_train.py wrote")
    splits = json.loads(splits_path.read_text())
    position = {name: i for i, name in enumerate(names)}
    tests = []
    for model in models:
        fold = int(model.parent.name.split("_", 1)[1])
        test_names = [splits["names"][i] for i in splits["folds"][fold]["test"]]
        missing = [name for name in test_names if name not in position]
        if missing:
            raise InferenceError(
                f"fold {fold} of {path} tests slice {missing[0]!r}, which --data lacks; give the data the run was trained on"
            )
        tests.append((model, np.array([position[name] for name in test_names], dtype=int)))
    return tests


def routed(segmenters, sizes):
    """A segmenter of slices that come fold after fold: the first `sizes[0]` through `segmenters[0]`, and so on.

    Args:
        segmenters: callables raw slices `[n, H, W]` -> label maps `[n, H, W]`, one per fold.
        sizes: the slices of each fold, in order; they add up to the `N` of every call.

    Returns:
        A callable raw slices `[N, H, W]` -> label maps `[N, H, W]`.
    """
    bounds = np.cumsum([0, *sizes])

    def segment(raw):
        if len(raw) != bounds[-1]:
            raise ValueError(f"expected {bounds[-1]} slices (the folds' test slices), got {len(raw)}")
        parts = [fold_segment(raw[start:stop]) for fold_segment, start, stop in zip(segmenters, bounds, bounds[1:])]
        return np.concatenate(parts, axis=0)

    return segment
