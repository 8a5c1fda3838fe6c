"""Argument checks shared by the public modules: errors name the argument."""
import operator

import numpy as np


def check_int(value, name, minimum):
    """`value` as an int >= `minimum`; TypeError for non-integers (bool included)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value
