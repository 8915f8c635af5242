"""Dice under controlled acquisition and other-scanner shifts (window, gamma, histogram, field of view, CLAHE, JPEG); see `--help`."""

import sys

from tf_resattn_process.commands import robustness

if __name__ == "__main__":
    sys.exit(robustness())
