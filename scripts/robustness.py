"""Dice under controlled acquisition shifts (window/level, gamma, histogram, noise, resolution); see `--help`."""

import sys

from tf_resattn.inference.robustness_cli import main

if __name__ == "__main__":
    sys.exit(main())
