"""An output folder that appears complete or not at all, and that never costs the user a file they did not ask to lose.

`output_folder(out_dir, overwrite, protected)`:

- refuses (one-line `ExportError`) an output that is a filesystem root, the home
  folder, the current folder or one holding it (`.`, `..`), that is, holds or lies
  inside a `protected` path (the input), or that is an existing file;
- refuses an existing folder unless `overwrite`, and even then replaces only a
  folder this package wrote (it holds the `MARKER` file) whose contents can all be
  deleted;
- holds the output's lock (`output_lock.py`) for the whole run, so that a second
  run on the same folder fails at once naming the first one's pid;
- writes into `.<name>.partial` beside the output and, when complete, puts it in
  place of the old folder in one step (`folder_swap.py`), so that a crash at any
  moment leaves the old result or the new one.
"""

import contextlib
import json
import os
import pathlib
import shutil

from tf_resattn.inference.errors import ExportError
from tf_resattn.inference.folder_swap import replace_folder
from tf_resattn.inference.output_lock import OutputLocked, output_lock
from tf_resattn.version import __version__

MARKER = ".tf_resattn_output"
"""The file inside every output folder this package writes; `--overwrite` replaces only folders that hold it."""


@contextlib.contextmanager
def output_folder(out_dir, overwrite, protected=()):
    """Yields an empty temporary folder beside `out_dir`, put in place of `out_dir` when the block finishes.

    Args:
        out_dir: the output folder to create (or replace).
        overwrite: replace an existing `out_dir` that this package wrote.
        protected: paths the output must neither be, hold nor lie inside (the input).

    Raises:
        ExportError: an output refused as the module docstring lists, one that another run
            is writing, or one in a folder that cannot be written. On any error the
            temporary folder and the lock file are removed and `out_dir` is left as it was.
    """
    out = resolved(out_dir)
    refuse_special(out_dir, out)
    refuse_overlap(out_dir, protected)
    if not out.parent.is_dir():
        raise ExportError(f"folder {out.parent} does not exist; create it first")
    with _locked(out_dir, out):
        check_replaceable(out_dir, out, overwrite)
        partial = out.with_name(f".{out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)  # left by a run that was killed
        try:
            partial.mkdir()
        except OSError as error:
            raise _unwritable(out.parent, error) from None
        try:
            yield partial
            write_json(partial / MARKER, {"written_by": "tf_resattn", "version": __version__})
            old = replace_folder(partial, out)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old)


def resolved(path):
    """`path` absolute, with `..` and symbolic links resolved (it need not exist)."""
    return pathlib.Path(os.path.realpath(os.path.abspath(path)))


def refuse_special(out_dir, out):
    """Refuses a filesystem root, the home folder, and the current folder or any folder above it."""
    here = resolved(os.getcwd())
    if out.parent == out:
        raise ExportError(f"output {out_dir} is a filesystem root; choose a new folder for --out")
    if out == resolved(pathlib.Path.home()):
        raise ExportError(f"output {out_dir} is the home folder; choose a new folder for --out")
    if out == here or out in here.parents:
        raise ExportError(f"output {out_dir} is the current folder or holds it; choose a new folder for --out")


def refuse_overlap(out_dir, protected):
    """Refuses an output that is, holds, or lies inside any of the `protected` paths."""
    out = resolved(out_dir)
    for path in protected:
        kept = resolved(path)
        if out == kept:
            raise ExportError(f"output {out_dir} is the input {path}; choose a new folder for --out")
        if out in kept.parents:
            raise ExportError(
                f"output {out_dir} holds the input {path}; choose a new folder for --out, outside the input"
            )
        if kept in out.parents:
            raise ExportError(
                f"output {out_dir} lies inside the input {path}; choose a new folder for --out, outside the input"
            )


def check_replaceable(out_dir, out, overwrite):
    """Refuses an existing file, an existing folder without `overwrite`, and a folder this package did not write or cannot delete."""
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise ExportError(f"output {out_dir} is an existing file; --out names a folder to create, choose another name")
    if not overwrite:
        raise ExportError(
            f"output {out_dir} already exists; choose another folder or pass --overwrite to replace an earlier result"
        )
    if not (out / MARKER).is_file():
        raise ExportError(
            f"output {out_dir} was not written by tf_resattn (no {MARKER} inside), so --overwrite does not replace it; "
            "remove it yourself or choose another --out"
        )
    for folder, _, _ in os.walk(out):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(
                f"cannot replace output {out_dir}: folder {folder} inside it is read-only; make it writable or choose another --out"
            )


def write_json(path, value):
    """Writes `value` as indented JSON."""
    pathlib.Path(path).write_text(json.dumps(value, indent=2) + "\n")


@contextlib.contextmanager
def _locked(out_dir, out):
    """Holds the output's lock for the block; another run holding it, or a folder that cannot be written, is an `ExportError`."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(output_lock(out))
        except OutputLocked as error:
            owner = f"pid {error.pid}" if error.pid is not None else "its pid not yet recorded"
            raise ExportError(
                f"output {out_dir} is being written by another run ({owner}); wait for it to finish or choose another --out"
            ) from None
        except OSError as error:
            raise _unwritable(out.parent, error) from None
        yield


def _unwritable(folder, error):
    """The `ExportError` for an `OSError` (a read-only or full folder) met writing in `folder`."""
    return ExportError(f"cannot write in folder {folder} ({error.strerror}); choose an --out in a folder you can write")
