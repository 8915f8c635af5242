"""Shared by the hostile-input tests: a tiny untrained model, the predict command run in-process, folder snapshots."""

import json
import pathlib

TINY_SIZE = 32


def tiny_model(folder, input_kind="hu"):
    """Saves a tiny untrained U-Net (`model.keras`, 32x32 input) and its `preprocessing.json` in `folder`; returns the model path."""
    from tf_resattn import build_model
    from tf_resattn.data import Preprocessing

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_model("unet", input_shape=(TINY_SIZE, TINY_SIZE, 1), base_filters=4, depth=1).save(folder / "model.keras")
    (folder / "preprocessing.json").write_text(
        json.dumps(Preprocessing(input_kind, (-1000.0, 400.0), TINY_SIZE).to_config())
    )
    return folder / "model.keras"


def run_predict(argv, capsys):
    """Runs `tf-resattn-predict` in-process; returns (exit status, stdout, stderr)."""
    from tf_resattn.inference.predict_cli import main

    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_info:
        status = exit_info.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def snapshot(path):
    """Every file under `path` (or the file itself) as {relative path: bytes}, to compare byte for byte."""
    path = pathlib.Path(path)
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(parent, name):
    """Hidden files and folders a run on `parent/name` may leave beside it (`.name.partial`, `.name.lock`, ...)."""
    return sorted(p.name for p in pathlib.Path(parent).glob(f".{name}.*"))
