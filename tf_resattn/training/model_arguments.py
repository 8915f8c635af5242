"""The model's arguments as training settings, read from `ResidualAttentionUNet` itself.

Its constructor's signature gives the names and defaults, its docstring the
help text of each flag, and `check_arguments` judges the values, so an
argument added to the class becomes a setting of `TrainingConfig.model`, a
flag of `cv_train.py` and a key of config and hparams files without an edit
here.

Example:
    >>> MODEL_KEYS[:3], default_model()["norm"]
    (('base_filters', 'depth', 'cardinality'), 'group')
    >>> argument_help()["depth"]
    'number of poolings (encoder levels), 1 to 8.'
"""

import inspect
import re

from tf_resattn.models.residual_attention_unet import ResidualAttentionUNet, default_arguments

RUN_ARGUMENTS = ("variant", "input_shape", "num_classes", "seed")
"""Arguments a run sets itself: the variant from `variants`, the input shape from the data, and the
classes and the seed from the configuration's fields of those names."""

MODEL_KEYS = tuple(name for name in default_arguments() if name not in RUN_ARGUMENTS)
"""The keys of `TrainingConfig.model`: every other argument of `ResidualAttentionUNet`, in its order."""


def default_model():
    """The model mapping of `TrainingConfig()`: `ResidualAttentionUNet`'s defaults (the presets set smaller models)."""
    return {name: value for name, value in default_arguments().items() if name in MODEL_KEYS}


def argument_help():
    """`{argument: description}` from the Args section of `ResidualAttentionUNet`'s docstring, one line each."""
    lines = inspect.getdoc(ResidualAttentionUNet).splitlines()
    descriptions, name = {}, None
    for line in lines[lines.index("Args:") + 1 :]:
        if line and not line.startswith(" "):
            break
        entry = re.fullmatch(r" {4}(\**\w+): (.*)", line)
        if entry:
            name = entry.group(1)
            descriptions[name] = entry.group(2)
        elif name and line.strip():
            descriptions[name] += " " + line.strip()
    return descriptions
