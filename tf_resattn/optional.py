"""Optional dependencies: a missing one is one line naming the extra that installs it.

The core install carries what `build_model()`, the layers, losses and metrics
need; reading and writing files, training reports, tuning and export need the
extras of `pyproject.toml` (`pip install 'tf_resattn[io]'` and so on).
`require` imports a module where it is used; `module` stands in for a
module-level import, so that the package imports without the module and only
its use fails.
"""

import importlib

# Import name -> the distribution pip installs, where they differ.
DISTRIBUTIONS = {
    "ai_edge_litert": "ai-edge-litert",
    "cv2": "opencv-python-headless",
    "keras_tuner": "keras-tuner",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
}


class MissingExtraError(ImportError):
    """An optional dependency cannot be imported; the message names the extra that installs it."""


def require(name, extra):
    """Imports and returns the module `name`, part of the extra `extra`.

    Raises:
        MissingExtraError: `name` cannot be imported; one line naming the
            distribution and `pip install 'tf_resattn[extra]'`.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        top = name.split(".")[0]
        distribution = DISTRIBUTIONS.get(top, top)
        raise MissingExtraError(
            f"{distribution} cannot be imported ({error}): pip install 'tf_resattn[{extra}]'"
        ) from error


def module(name, extra):
    """The module `name` if it imports; else a stand-in whose first use raises `require`'s `MissingExtraError`."""
    try:
        return require(name, extra)
    except MissingExtraError:
        return _Absent(name, extra)


def pyplot():
    """matplotlib's pyplot on the Agg backend (figures written to files, no display needed); extra `train`."""
    require("matplotlib", "train").use("Agg")
    return require("matplotlib.pyplot", "train")


class _Absent:
    """Stands in for the optional module `name` that did not import: any attribute retries the import."""

    def __init__(self, name, extra):
        self._name = name
        self._extra = extra

    def __getattr__(self, attribute):
        return getattr(require(self._name, self._extra), attribute)
