"""The positive-integer rule shared by the layers, the model, the data pipeline and the configuration.

Example:
    >>> is_positive_int(3), is_positive_int(0), is_positive_int(True), is_positive_int(2.0)
    (True, False, False, False)
    >>> check_positive_int(0, "ConvBlock: `filters`")
    Traceback (most recent call last):
    ...
    ValueError: ConvBlock: `filters` must be a positive integer, got 0.
"""

import numbers


def is_positive_int(value):
    """Whether `value` is an integer (Python or NumPy) >= 1; `True` is refused, not read as 1, and so is `2.0`."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_positive_int(value, name):
    """Returns `value` when `is_positive_int(value)`, else raises a one-line `ValueError`.

    Args:
        value: the argument to check.
        name: how the message names it, e.g. ``"ConvBlock: `filters`"``.
    """
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value
