"""Hyperparameter search (keras-tuner) for one outer cross-validation fold; see `--help`."""

import sys

from tf_resattn_process.commands import tune

if __name__ == "__main__":
    sys.exit(tune())
