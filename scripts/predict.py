"""Segments CT slices or volumes and quantifies the infection; see `--help`."""

import sys

from tf_resattn.inference.predict_cli import main

if __name__ == "__main__":
    sys.exit(main())
