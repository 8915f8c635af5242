"""Putting a finished folder in place of an old one so that, at every moment, one of the two is there.

On Linux the two folders trade names in one `renameat2(RENAME_EXCHANGE)` call.
Where that call is missing or refused (another system, a file system without
it), the old folder is first renamed aside to `.<name>.previous` and the new one
then takes its name: a crash between the two renames leaves the old result
under that hidden name.
"""

import ctypes
import errno
import os
import pathlib
import shutil

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(new, old):
    """Swaps the names of folders `new` and `old`; True when done in one step, False when not supported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(old))


def replace_folder(new, old):
    """Gives folder `new` the name `old` (an existing folder or nothing); returns where the old folder now lies, or None.

    The caller removes the returned folder once it no longer needs the old result.
    """
    new, old = pathlib.Path(new), pathlib.Path(old)
    if not old.exists():
        os.rename(new, old)
        return None
    if exchange(new, old):
        return new
    aside = old.with_name(f".{old.name}.previous")
    shutil.rmtree(aside, ignore_errors=True)  # left by a run that ended between its two renames, after both
    os.rename(old, aside)
    os.rename(new, old)
    return aside
