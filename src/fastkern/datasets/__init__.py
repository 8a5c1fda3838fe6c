"""Small data sets shipped with fastkern, for examples, tests and ``python -m fastkern``."""
import math
import operator
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["CoalMiningDisasters", "SyntheticEvents", "coal_mining_disasters",
           "synthetic_events"]


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


class SyntheticEvents(NamedTuple):
    """Synthetic seismic events with a known source; see :func:`synthetic_events`."""

    amplitudes: np.ndarray        # float64 (E, S): observed, NaN where not recorded
    stations: np.ndarray          # float64 (S, 3): station coordinates, km
    x: np.ndarray                 # float64 (nx,): candidate x, km
    y: np.ndarray                 # float64 (ny,): candidate y, km
    z: np.ndarray                 # float64 (nz,): candidate z, km
    a: np.ndarray                 # float64 (K,): candidate source amplitudes
    attenuation: float            # B, 1/km
    source: np.ndarray            # float64 (E, 3): the true source positions, km
    source_amplitude: np.ndarray  # float64 (E,): the true source amplitudes
    source_index: np.ndarray      # int64 (E, 4): (ix, iy, iz, ia) of the truth, -1 off-grid


def synthetic_events(n_events=100, n_stations=20, *, shape=(41, 41, 16), n_amplitudes=50,
                     attenuation=0.15, on_grid=True, noise=0.0, missing=0.0, seed=None):
    """Synthetic events for :func:`fastkern.locate_events`, with a known truth.

    A volcano-sized setting: stations scattered at random on the surface
    (``z = 0``) of a 10 km x 10 km area centred on the origin; a grid of
    candidate sources spanning that area in ``x`` and ``y`` and depths from
    0.2 to 4 km (``z`` from -4 to -0.2, km, up positive); candidate amplitudes
    geometrically spaced from 1 to 1000.  Each event's source position and
    amplitude are drawn at random; the observed amplitude at a station at
    distance ``r`` is ``A * g`` with ``g = exp(-B * r) / r`` computed as the
    reference loop of :func:`fastkern.locate_events` computes it, then
    optionally perturbed and censored.

    Parameters
    ----------
    n_events, n_stations : int
        E >= 0 events, S >= 1 stations.
    shape : tuple of 3 ints
        ``(nx, ny, nz)``, the grid's points per axis (each >= 2).
    n_amplitudes : int
        K >= 2 candidate amplitudes.
    attenuation : float
        ``B >= 0``, 1/km (0.15: 5 Hz body waves with Q = 50 at 2 km/s).
    on_grid : bool
        True: sources at grid nodes with amplitudes from ``a``, so that
        noiseless events are located exactly with misfit 0.  False: sources
        and amplitudes anywhere in the grid's box and range.
    noise : float
        Standard deviation of multiplicative log-normal noise on each
        observation (``d * exp(noise * N(0, 1))``); 0 for none.
    missing : float
        Probability that a station did not record an event (NaN); every event
        keeps at least one recording station.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    SyntheticEvents
        A named tuple: ``amplitudes, stations, x, y, z, a, attenuation`` (the
        arguments of ``locate_events``), and the truth ``source`` (E, 3),
        ``source_amplitude`` (E,) and ``source_index`` (E, 4): the grid
        indices ``(ix, iy, iz, ia)`` of the truth, -1 when off the grid.

    Examples
    --------
    >>> from fastkern.datasets import synthetic_events
    >>> data = synthetic_events(10, 8, shape=(11, 11, 5), seed=1)
    >>> data.amplitudes.shape, data.stations.shape, data.a.shape
    ((10, 8), (8, 3), (50,))
    """
    n_events = _count(n_events, "n_events", 0)
    n_stations = _count(n_stations, "n_stations", 1)
    n_amplitudes = _count(n_amplitudes, "n_amplitudes", 2)
    try:
        nx, ny, nz = (_count(n, "shape", 2) for n in shape)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"shape must be 3 integers >= 2, got {shape!r}") from None
    attenuation = float(attenuation)
    noise, missing = float(noise), float(missing)
    if not (math.isfinite(attenuation) and attenuation >= 0):
        raise ValueError(f"attenuation must be finite and non-negative, got {attenuation!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be finite and non-negative, got {noise!r}")
    if not 0 <= missing < 1:
        raise ValueError(f"missing must be in [0, 1), got {missing!r}")
    rng = np.random.default_rng(seed)

    x, y = np.linspace(-5.0, 5.0, nx), np.linspace(-5.0, 5.0, ny)
    z = np.linspace(-4.0, -0.2, nz)
    a = np.geomspace(1.0, 1000.0, n_amplitudes)
    stations = np.column_stack([rng.uniform(-5.0, 5.0, n_stations),
                                rng.uniform(-5.0, 5.0, n_stations), np.zeros(n_stations)])
    if on_grid:
        index = np.column_stack([rng.integers(0, n, n_events)
                                 for n in (nx, ny, nz, n_amplitudes)]).astype(np.int64)
        source = np.column_stack([x[index[:, 0]], y[index[:, 1]], z[index[:, 2]]])
        source_amplitude = a[index[:, 3]]
    else:
        index = np.full((n_events, 4), -1, dtype=np.int64)
        source = np.column_stack([rng.uniform(-5.0, 5.0, n_events),
                                  rng.uniform(-5.0, 5.0, n_events),
                                  rng.uniform(-4.0, -0.2, n_events)])
        source_amplitude = np.exp(rng.uniform(0.0, math.log(1000.0), n_events))

    amplitudes = np.empty((n_events, n_stations))
    for e in range(n_events):
        for s in range(n_stations):
            dx, dy, dz = source[e] - stations[s]
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            amplitudes[e, s] = source_amplitude[e] * (math.exp(-attenuation * r) / r)
    if noise > 0:
        amplitudes *= np.exp(noise * rng.standard_normal(amplitudes.shape))
    if missing > 0 and n_events:
        lost = rng.random(amplitudes.shape) < missing
        keep = rng.integers(0, n_stations, n_events)
        lost[np.arange(n_events), keep] = False
        amplitudes[lost] = np.nan
    return SyntheticEvents(amplitudes, stations, x, y, z, a, attenuation, source,
                           source_amplitude, index)


def _count(value, name, minimum):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value
