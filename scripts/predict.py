"""Segments CT slices or volumes and quantifies the infection; see `--help`."""

import sys

from tf_resattn_process.commands import predict

if __name__ == "__main__":
    sys.exit(predict())
