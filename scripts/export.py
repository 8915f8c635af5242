"""Exports a trained model to SavedModel and TFLite with a parity report; see `--help`."""

import sys

from tf_resattn_process.commands import export

if __name__ == "__main__":
    sys.exit(export())
