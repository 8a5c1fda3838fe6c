"""Small data sets shipped with fastkern, for examples, tests and ``python -m fastkern``."""
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["CoalMiningDisasters", "coal_mining_disasters"]


class CoalMiningDisasters(NamedTuple):
    """Yearly counts of coal-mining disasters; see :func:`coal_mining_disasters`."""

    years: np.ndarray   # int64, shape (111,): 1851, ..., 1961
    counts: np.ndarray  # int64, shape (111,): disasters in each year


def coal_mining_disasters():
    """Yearly counts of coal-mining disasters in Great Britain, 1851-1961.

    A disaster is a colliery explosion that killed ten or more men.  The dates
    were compiled by Maguire, Pearson and Wynn (1952) and corrected by Jarrett
    (1979); the counts per calendar year, 191 disasters in 111 years, are the
    series of the classic switchpoint example (PyMC's ``disaster_model``).  The
    rate drops from about 3 a year to about 1 a year near 1890.

    Returns
    -------
    data : CoalMiningDisasters
        A named tuple ``(years, counts)`` of two int64 arrays of shape (111,).
        Fresh arrays on every call.

    See Also
    --------
    fastkern.gibbs_switchpoint

    References
    ----------
    .. [1] Maguire, B. A., Pearson, E. S. and Wynn, A. H. A. (1952). The time
           intervals between industrial accidents. Biometrika 39, 168-180.
    .. [2] Jarrett, R. G. (1979). A note on the intervals between coal-mining
           disasters. Biometrika 66, 191-193.

    Examples
    --------
    >>> from fastkern.datasets import coal_mining_disasters
    >>> years, counts = coal_mining_disasters()
    >>> years[0], years[-1], counts.sum()
    (np.int64(1851), np.int64(1961), np.int64(191))
    """
    with resources.files(__name__).joinpath("coal_mining_disasters.csv").open() as f:
        table = np.loadtxt(f, dtype=np.int64, delimiter=",", skiprows=1, ndmin=2)
    return CoalMiningDisasters(np.ascontiguousarray(table[:, 0]),
                               np.ascontiguousarray(table[:, 1]))
