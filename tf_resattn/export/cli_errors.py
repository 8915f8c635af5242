"""How the export and predict command lines end on bad input: one line on stderr, exit status 2."""

import contextlib
import sys

from tf_resattn.data import DataError
from tf_resattn.inference.model_files import ExportError

EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def one_line_errors(program):
    """Turns `ExportError`/`DataError` (and a missing file) into `program: error: ...` and `SystemExit(2)`."""
    try:
        yield
    except (ExportError, DataError, FileNotFoundError) as error:
        print(f"{program}: error: {' '.join(str(error).split())}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
