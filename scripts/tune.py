"""Hyperparameter search (keras-tuner) for one outer cross-validation fold; see `--help`."""

import sys

from tf_resattn.tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
