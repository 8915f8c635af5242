"""Exports a trained model to SavedModel and TFLite with a parity report; see `--help`."""

import sys

from tf_resattn.export.export_cli import main

if __name__ == "__main__":
    sys.exit(main())
