"""One rule for names: two inputs that would share a name (a slice name, an output file) are refused."""

from tf_resattn.io.errors import DataError


def check_unique(names, files, clash):
    """Raises `DataError` for the first two `files` whose `names` are equal.

    Args:
        names: one name per file (a slice name, an output name).
        files: where each name comes from, for the message.
        clash: the message, with `{first}`, `{second}` and `{name}` filled in.
    """
    first = {}
    for name, file in zip(names, files):
        if name in first:
            raise DataError(clash.format(first=first[name], second=file, name=name))
        first[name] = file
