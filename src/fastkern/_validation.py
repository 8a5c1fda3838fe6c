"""Argument checks shared by the public modules: errors name the argument."""
import numbers
import operator

import numpy as np


# The largest count or size any kernel takes: what fits the C index type.
INDEX_MAX = 2**63 - 1


def check_int(value, name, minimum=None, maximum=INDEX_MAX):
    """`value` as an int in [`minimum`, `maximum`] (`minimum` if given; `maximum`
    defaults to what fits a C index); TypeError for non-integers (bool included)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_real(value, name):
    """`value` as a float; TypeError for anything but a real number (bool included).
    Callers check the range they need (finite, positive, ...)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond the range of a float
        raise ValueError(f"{name} is too large, got {value!r}") from None


def as_array(value, name, dtype=None):
    """np.asarray(value, dtype), with NumPy's refusals (ragged nesting, values that
    do not convert) reported against the argument `name`."""
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"{name} could not be read as an array: {exc}") from None
