"""Cross-validation of the Residual Attention U-Net and its baselines; see `--help`."""

import sys

from tf_resattn.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
