"""The one exception type for export and prediction problems."""


class ExportError(ValueError):
    """A model, path or option that export or prediction cannot use.

    The message is one line naming the problem and the fix, so that a command
    line can print it as it is and exit with status 2.
    """
