"""An output folder that appears complete or not at all: written under a temporary name, then renamed."""

import contextlib
import json
import os
import pathlib
import shutil

from tf_resattn.inference.model_files import ExportError


@contextlib.contextmanager
def output_folder(out_dir, overwrite):
    """Yields an empty temporary folder beside `out_dir`, renamed to `out_dir` when the block finishes.

    An existing `out_dir` is refused (`ExportError`) unless `overwrite`, and is
    only replaced once the new folder is complete. On any error the temporary
    folder is removed and `out_dir` is left as it was.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ExportError(f"output {out_dir} already exists; choose another folder or pass --overwrite")
    if not out_dir.parent.is_dir():
        raise ExportError(f"folder {out_dir.parent} does not exist; create it first")
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
    os.replace(partial, out_dir)


def write_json(path, value):
    """Writes `value` as indented JSON."""
    pathlib.Path(path).write_text(json.dumps(value, indent=2) + "\n")
