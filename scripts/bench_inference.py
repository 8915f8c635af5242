"""Inference latency per 512x512 slice and peak memory: Keras, SavedModel and the three TFLite files.

Without `--model`, builds the `cpu` preset's `resattn` (128x128 input, base_filters 8, depth 3,
cardinality 4, bottleneck width 4, 2 heads of 16, buckets of 64, 2 hash rounds; untrained weights:
latency does not depend on them) and exports it first. With `--model X.keras`, exports that model
(its `preprocessing.json` beside it), or uses `--export DIR` when it was exported already.
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
    parser.add_argument("--model", help="trained .keras model (default: the cpu preset's resattn, untrained)")
    parser.add_argument("--export", help="export folder of --model (default: export it now into a temporary folder)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per batch size (default 10)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    return parser.parse_args(argv)


def cpu_preset_model(folder):
    """Saves the cpu preset's resattn and its preprocessing (8-bit input at 128x128) in `folder`."""
    from tf_resattn import build_model
    from tf_resattn.data import Preprocessing

    model = build_model(
        "resattn",
        input_shape=(128, 128, 1),
        base_filters=8,
        depth=3,
        cardinality=4,
        bottleneck_width=4,
        num_heads=2,
        key_dim=16,
        bucket_size=64,
        n_hashes=2,
    )
    model.save(folder / "best.keras")
    (folder / "preprocessing.json").write_text(json.dumps(Preprocessing("uint8", image_size=128).to_config()))
    return folder / "best.keras"


def main(argv=None):
    args = parse_args(argv)
    tf_resattn_process.configure_process()  # before TensorFlow starts: oneDNN on x86-64, no start-up notices
    from tf_resattn.export.exporter import write_exports
    from tf_resattn.inference.model_files import load_keras_model
    from tools.benchmarks.inference_latency import format_results, run_benchmark

    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        keras_path = pathlib.Path(args.model) if args.model else cpu_preset_model(scratch)
        export_dir = pathlib.Path(args.export) if args.export else scratch / "export"
        if not args.export:
            model, prep = load_keras_model(keras_path)
            export_dir.mkdir()
            write_exports(model, prep, export_dir, keras_path)
        results = run_benchmark(export_dir, keras_path, repeats=args.repeats, threads=args.threads)
    print(format_results(results))
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps({"model": args.model or "cpu preset resattn (untrained)", "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
