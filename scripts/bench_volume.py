"""A 512x512x300 HU volume through `predict.py`, end to end, beside the bare `model.predict` of its slices.

Rows: the `.keras` model with and without TTA, its SavedModel and its three TFLite files, each a fresh
`predict.py` process (start-up, reading, lung field, model, writing); the reference is a fresh process
that loads the `.keras` model and runs `model.predict(batch_size=8)` on the same slices preprocessed.
Medians over `--repeats` interleaved rounds (`tools/benchmarks/volume.py`).
"""

import argparse
import json
import pathlib
import sys
import tempfile

import tf_resattn_process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tools/: beside the package, outside the wheel


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resattn_medseg100", help="a .keras model or a released model's name")
    parser.add_argument("--export", help="export folder of --model (default: export it now into a temporary folder)")
    parser.add_argument("--slices", type=int, default=300, help="slices of the volume (default 300)")
    parser.add_argument("--size", type=int, default=512, help="slice side in pixels (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--formats", nargs="+", default=None, help="rows without TTA (default: all five formats)")
    parser.add_argument("--no-tta", action="store_true", help="leave out the TTA row and its reference")
    parser.add_argument("--json", help="write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tf_resattn_process.configure_process()
    from tf_resattn.export.exporter import write_exports
    from tf_resattn.inference.model_files import load_keras_model, released_or_path
    from tools.benchmarks.volume import FORMATS, format_volume_results, run_volume_benchmark, write_volume

    keras_path = released_or_path(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        formats = tuple(args.formats or FORMATS)
        export_dir = pathlib.Path(args.export) if args.export else scratch / "export"
        if not args.export and set(formats) - {"keras"}:
            model, prep = load_keras_model(keras_path)
            export_dir.mkdir()
            write_exports(model, prep, export_dir, keras_path)
        volume = write_volume(scratch / "volume.nii.gz", args.slices, args.size)
        results = run_volume_benchmark(
            volume, keras_path, export_dir, formats=formats, tta=not args.no_tta, repeats=args.repeats
        )
    print(format_volume_results(results, args.slices))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"model": str(keras_path), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
