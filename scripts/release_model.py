"""Writes a release folder (model.keras, preprocessing.json, samples/) from a training run's best.keras.

    python scripts/release_model.py runs/<run>/resattn/fold_all/best.keras --out saved_models/resattn_medseg100

MODEL_CARD.md is written by hand beside it, from the run's reports.
"""

import argparse
import sys

import tf_resattn_process

tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices

from tf_resattn.command_line import run_with_one_line_errors  # noqa: E402
from tf_resattn.inference.errors import ExportError  # noqa: E402
from tf_resattn.inference.release import write_release  # noqa: E402

PROGRAM = "release_model.py"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("model", help="best.keras of a training run (its preprocessing.json beside it)")
    parser.add_argument("--out", required=True, help="release folder, e.g. saved_models/<name>")
    args = parser.parse_args(argv)

    def release():
        for name, digest in write_release(args.model, args.out).items():
            print(f"{name}  sha256 {digest}")
        return 0

    return run_with_one_line_errors(PROGRAM, release, (ExportError,))


if __name__ == "__main__":
    sys.exit(main())
