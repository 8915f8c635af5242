"""`tf-resattn-predict --model PATH --input PATH --out DIR`: label maps, overlays and an infection report.

Exit status: 0 on success, 2 on bad input (one line on stderr; no output
folder is left behind), 130 when interrupted. `--overwrite` replaces only a
folder an earlier run wrote; a second run on the same `--out` fails at once.
"""

import sys

from tf_resattn.command_line import OneLineParser, run_with_one_line_errors
from tf_resattn.data.preprocessing import check_window
from tf_resattn.inference.errors import ExportError
from tf_resattn.inference.overlays import DEFAULT_OVERLAYS, check_overlay_choice
from tf_resattn.io import DataError

PROGRAM = "tf-resattn-predict"


def parse_args(argv):
    parser = OneLineParser(prog=PROGRAM, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument(
        "--model",
        required=True,
        help=".keras file, SavedModel folder, .tflite file, a cv_train run folder (the mean of its fold models), "
        "or a released model's name (e.g. resattn_medseg100)",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="PNG/JPG/TIFF/BMP slice or folder of them, manifest .csv, NIfTI volume (.nii, .nii.gz), DICOM series folder (labels: a DICOM SEG)",
    )
    parser.add_argument(
        "--out", required=True, help="output folder to create (not the input, nor a folder holding it or inside it)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="slices per model call (default: from the slice size and the free memory, at most 8)",
    )
    parser.add_argument("--num-classes", type=int, default=4, help="classes the model must predict (default 4)")
    parser.add_argument(
        "--tta", action="store_true", help="average over the 8 flips and quarter turns of each slice (8x the time)"
    )
    parser.add_argument(
        "--window",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="HU window mapping Hounsfield-unit input to the grey levels of a model trained on 8-bit "
        "slices (default: the window recorded with the model)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output folder written by an earlier run"
    )
    parser.add_argument(
        "--safe-only",
        action="store_true",
        help="refuse a SavedModel (its graph runs as code); .keras and .tflite models are loaded without running code",
    )
    parser.add_argument(
        "--overlays",
        default=str(DEFAULT_OVERLAYS),
        metavar="all|none|N",
        help=f"overlay PNGs per scan: all slices, none, or the N with the most infection (default {DEFAULT_OVERLAYS})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose", action="store_true", help="also print the slices per second, batch size and peak memory"
    )
    args = parser.parse_args(argv)
    try:
        args.overlays = check_overlay_choice(args.overlays)
    except ValueError as error:
        parser.error(str(error))
    if args.window is not None:
        try:
            check_window(args.window, "--window")
        except ValueError as error:
            parser.error(str(error))
    return args


def main(argv=None):
    """Runs the prediction; returns the exit status."""
    args = parse_args(argv)
    return run_with_one_line_errors(PROGRAM, lambda: predict(args), (ExportError, DataError, FileNotFoundError))


def predict(args):
    """Segments `args.input` into `args.out` and prints the report; returns 0."""
    from tf_resattn.inference.predict import predict_path, report_table, speed_line

    report = predict_path(
        args.model,
        args.input,
        args.out,
        batch_size=args.batch_size,
        num_classes=args.num_classes,
        overwrite=args.overwrite,
        progress=not args.quiet,
        tta=args.tta,
        window=args.window,
        safe_only=args.safe_only,
        overlays=args.overlays,
        notify=lambda notice: print(f"{PROGRAM}: note: {notice}", file=sys.stderr),
    )
    print(report_table(report))
    if args.verbose:
        print(speed_line(report))
    print(f"written: {args.out}/report.json")
    return 0
