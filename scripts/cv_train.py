"""Cross-validation of the Residual Attention U-Net and its baselines; see `--help`."""

import sys

from tf_resattn_process.commands import cv

if __name__ == "__main__":
    sys.exit(cv())
