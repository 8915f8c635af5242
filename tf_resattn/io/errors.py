"""The one exception type for every data problem."""


class DataError(ValueError):
    """A problem with the input data: a missing, empty, corrupt or inconsistent file or set.

    The message is one line that names the file (or the problem) and says how to fix it,
    so that a command line can print it as it is and exit with status 2.
    """


def one_line(error):
    """`TypeName: message` of an exception on one line, to quote a library's error in a `DataError`."""
    return " ".join(f"{type(error).__name__}: {error}".split())
