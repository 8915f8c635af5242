"""`tf-resattn-export MODEL.keras --out DIR`: SavedModel, TFLite files and their parity report.

Exit status: 0 when every TFLite file meets its parity target, 1 when one
misses it (the files are written all the same), 2 on bad input (one line on
stderr, nothing written), 130 when interrupted.
"""

import argparse

from tf_resattn.command_line import run_with_one_line_errors
from tf_resattn.data import DataError
from tf_resattn.export.parity import MEDSEG100, format_parity
from tf_resattn.inference.errors import ExportError

PROGRAM = "tf-resattn-export"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument(
        "model",
        help="trained .keras model (preprocessing.json beside it), or a cv_train run folder (its fold ensemble)",
    )
    parser.add_argument("--out", required=True, help="output folder to create")
    parser.add_argument(
        "--tta",
        action="store_true",
        help="bake in test-time augmentation (8 quarter turns and mirror images, 8x the time)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument(
        "--image-size", type=int, nargs=2, metavar=("H", "W"), help="input size of a model without a fixed one"
    )
    parser.add_argument("--parity-slices", type=int, default=16, help="slices for the parity check (default 16)")
    parser.add_argument(
        "--data", default=str(MEDSEG100), help=f"MedSeg folder for the parity check (default {MEDSEG100})"
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the export; returns the exit status."""
    args = parse_args(argv)
    return run_with_one_line_errors(PROGRAM, lambda: export(args), (ExportError, DataError, FileNotFoundError))


def export(args):
    """Exports `args.model` into `args.out` and prints the parity report; returns 0, or 1 when a target is missed."""
    from tf_resattn.export.exporter import export_model

    exported = export_model(
        args.model,
        args.out,
        image_size=args.image_size,
        parity_count=args.parity_slices,
        data_dir=args.data,
        overwrite=args.overwrite,
        tta=args.tta,
    )
    print(format_parity(exported.parity))
    print(f"written: {args.out}")
    if exported.missed_targets:
        print(f"{PROGRAM}: parity below target for {', '.join(exported.missed_targets)} (see {args.out}/parity.json)")
        return 1
    return 0
