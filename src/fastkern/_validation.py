"""Argument checks shared by the public modules: errors name the argument."""
import numbers
import operator

import numpy as np


def check_int(value, name, minimum=None):
    """`value` as an int >= `minimum` (if given); TypeError for non-integers (bool
    included)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_real(value, name):
    """`value` as a float; TypeError for anything but a real number (bool included).
    Callers check the range they need (finite, positive, ...)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)
