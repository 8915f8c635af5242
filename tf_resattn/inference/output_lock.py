"""One run at a time per output folder: an `fcntl` lock on a file beside it that holds the owner's pid.

The lock file of `pred/` is `.pred.lock` in the same parent folder (the output
folder itself is replaced when a run finishes, so it cannot hold the lock). The
kernel releases an `fcntl` lock when its process ends, however it ends, so the
lock file a killed run leaves behind is simply taken over by the next run.

Only the standard library is used here, so that the lock can be taken (and
tested) without loading TensorFlow.
"""

import contextlib
import fcntl
import os
import pathlib


class OutputLocked(RuntimeError):
    """Another process holds the lock of an output folder; `pid` is its process id (None when unknown)."""

    def __init__(self, path, pid):
        super().__init__(f"{path} is held by pid {pid}")
        self.pid = pid


def lock_path(out_dir):
    """`parent/.<name>.lock` for the output folder `parent/<name>`."""
    out_dir = pathlib.Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.lock")


@contextlib.contextmanager
def output_lock(out_dir):
    """Holds the lock of `out_dir` for the block; raises `OutputLocked` at once when another process holds it.

    The lock file is created if needed, holds this process's pid while the block runs,
    and is removed when the block ends (normally or by an exception).

    Raises:
        OutputLocked: another live process holds the lock.
        OSError: the lock file cannot be created (e.g. a read-only folder).
    """
    path = lock_path(out_dir)
    descriptor = _acquire(path)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(descriptor)


def _acquire(path):
    """An open descriptor of `path` holding its exclusive lock.

    A run that ends unlinks the lock file while still holding it; a run that had
    opened the old file then holds a lock on a name that no longer exists, so after
    locking, the file must still be the one at `path` (else open it again).
    """
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _recorded_pid(descriptor)
            os.close(descriptor)
            raise OutputLocked(path, pid) from None
        try:
            same_file = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same_file = False
        if same_file:
            return descriptor
        os.close(descriptor)


def _recorded_pid(descriptor):
    """The pid written in an open lock file, or None when it holds none yet."""
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
