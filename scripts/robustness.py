"""Dice under controlled acquisition shifts (window/level, gamma, histogram, noise, resolution); see `--help`."""

import sys

from tf_resattn_process.commands import robustness

if __name__ == "__main__":
    sys.exit(robustness())
