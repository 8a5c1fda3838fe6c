"""Grid-search amplitude source location (the amplitude source location method of
volcano seismology), without the GIL."""

import dataclasses
import math

import numpy as np

from . import _locate
from ._validation import as_array, check_real
from ._workers import resolve_workers

__all__ = ["LocateResult", "locate_events"]

#: Events per unit of parallel work, at most: the station terms are read from memory
#: once per block of events, and stay in cache while the block is screened against
#: a tile.  Blocks are smaller where that gives every thread about eight units.
EVENTS_PER_UNIT = 256


@dataclasses.dataclass
class LocateResult:
    """Result of :func:`locate_events`: one entry per event.

    Attributes
    ----------
    x, y, z : ndarray of float64, shape (E,)
        The best source position, a node of the grid (same units as the
        station coordinates).
    amplitude : ndarray of float64, shape (E,)
        The best source amplitude: an element of ``a``, or the least-squares
        amplitude when ``a`` is None.  In the units of the observed amplitudes
        times the units of distance (the model divides by ``r``).
    misfit : ndarray of float64, shape (E,)
        ``100 * sqrt(error / sum(d**2))`` over the recording stations: the
        residual in percent of the observations (0 for a perfect fit).
    error : ndarray of float64, shape (E,)
        The sum of squared residuals of the best candidate.
    ix, iy, iz : ndarray of int64, shape (E,)
        Indices of the best position in ``x``, ``y`` and ``z``.
    """
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    amplitude: np.ndarray
    misfit: np.ndarray
    error: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    iz: np.ndarray


def locate_events(amplitudes, stations, x, y, z, a, *, attenuation, workers=None):
    """Locate events by grid search over an amplitude-decay model.

    For each event, every candidate source position ``(x[i], y[j], z[k])`` and
    every candidate source amplitude ``A`` is tried.  The model predicts the
    amplitude ``A * exp(-B * r) / r`` at a station at distance ``r`` from the
    source (body waves: geometric spreading ``1/r`` and anelastic attenuation
    ``exp(-B r)``), and the candidate with the smallest sum of squared
    differences to the observed amplitudes wins.  This is the amplitude source
    location (ASL) method used to locate tremor, long-period events and rock
    falls at volcanoes from seismic amplitudes alone.

    Parameters
    ----------
    amplitudes : array_like, shape (E, S)
        Observed amplitudes of E events at S stations (e.g. band-passed
        envelope peaks, corrected for site gain), NaN where a station did not
        record an event: that station is left out of that event's sums.  Every
        event needs at least one recording station; values otherwise finite.
    stations : array_like, shape (S, 3)
        Station coordinates ``(x, y, z)``, in a Cartesian frame (e.g. km east,
        north, up), finite.
    x, y, z : array_like, shape (nx,), (ny,), (nz,)
        Candidate source coordinates along each axis, in the stations' frame
        and units; any spacing and order, finite, non-empty.
    a : array_like, shape (K,), or None
        Candidate source amplitudes, finite and strictly increasing.  None
        takes, at each position, the least-squares amplitude over all
        ``A >= 0``: ``A = max(0, sum(g * d) / sum(g * g))``.
    attenuation : float
        ``B >= 0``, in inverse units of distance (e.g. 1/km).  For body waves
        ``B = pi * f / (Q * beta)``: frequency ``f``, quality factor ``Q``,
        wave speed ``beta``.
    workers : int, optional
        Threads to use; ``None`` uses the default (see :func:`fastkern.set_workers`),
        negative values count back from the number of CPUs.  The result does
        not depend on it.

    Returns
    -------
    LocateResult
        ``x``, ``y``, ``z``, ``amplitude``, ``misfit`` (percent), ``error``
        and the grid indices ``ix``, ``iy``, ``iz``: arrays of shape (E,).

    Raises
    ------
    TypeError
        If an array is not real numeric, or ``attenuation`` or ``workers`` has
        the wrong type.
    ValueError
        If a shape is wrong, a grid is empty, a coordinate, amplitude or ``a``
        is not finite (NaN is allowed in ``amplitudes`` only), ``a`` is not
        strictly increasing, ``attenuation`` is negative or not finite, an
        event has no recording station, or no candidate of an event has a
        finite error (every position at zero distance from one of its
        stations); ``workers`` is 0.  Messages name the argument (and the event).
    MemoryError
        If the table of station terms does not fit in memory.

    See Also
    --------
    fastkern.dask.locate_events : the same over a Dask cluster, chunks of events.
    fastkern.datasets.synthetic_events : events with a known truth.

    Notes
    -----
    **The reference loop.**  With ``d`` an event's observed amplitudes, the
    result is, for every event, the candidate this loop chooses (in float64,
    each operation rounded as Python rounds it)::

        best = inf
        for i in range(nx): for j in range(ny): for k in range(nz):
            g = {}
            for s in recording_stations:            # increasing station index
                dx, dy, dz = x[i] - sx[s], y[j] - sy[s], z[k] - sz[s]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                g[s] = math.exp(-B * r) / r
            for A in a:
                err = 0.0
                for s in recording_stations:
                    u = A * g[s] - d[s]
                    err += u * u
                if err < best:
                    best, choice = err, (i, j, k, A)
        misfit = 100 * math.sqrt(best / sum_of(d[s] * d[s]))   # summed the same way

    So ties go to the first candidate in loop order (x, then y, then z, then
    A); a position at zero distance from a recording station (``g`` infinite)
    is never chosen; a candidate whose error is not finite is never chosen.
    With ``a=None`` the loop over ``A`` is the single least-squares amplitude
    above, with its two sums taken in station order.  An event whose recorded
    amplitudes are all 0 gets misfit 0 for an error of 0 and inf otherwise.

    **Identical** means: the indices, amplitude and ``error`` returned are
    those of the loop above, bit for bit (the errors that decide are computed
    without fused multiply-adds, with the C library's ``exp`` and ``sqrt``, as
    Python computes them), for any ``workers`` and on any CPU.  A loop written another way (``A * exp(-B*r) / r`` in one
    expression, NumPy's ``exp`` or pairwise sums) rounds differently: its
    indices agree wherever the best error beats the runner-up by more than
    that rounding, and its misfit to about 1e-12 relative.

    **How it is fast.**  The station terms ``exp(-B r) / r`` do not depend on
    the event: they are computed once per call, ``nx * ny * nz * S`` of them
    (8 bytes each).  For a fixed position the error is a quadratic in ``A``:
    per event and position the sums ``sum(g d)`` and ``sum(g g)`` (vectorised
    over positions) give a lower bound of the error, with a margin for
    rounding, and only positions whose bound can reach the best error found
    so far are evaluated the loop's way, at the amplitudes next to the
    least-squares one.  The work is about ``E * nx * ny * nz * S``
    multiply-adds, independent of ``len(a)``, spread over blocks of events
    and ranges of positions on ``workers`` threads.

    References
    ----------
    .. [1] J. Battaglia and K. Aki, "Location of seismic events and eruptive
           fissures on the Piton de la Fournaise volcano using seismic
           amplitudes", J. Geophys. Res. 108(B8), 2364, 2003.

    Examples
    --------
    >>> import numpy as np
    >>> import fastkern
    >>> data = fastkern.datasets.synthetic_events(5, 12, shape=(21, 21, 8), seed=0)
    >>> res = fastkern.locate_events(data.amplitudes, data.stations, data.x, data.y,
    ...                              data.z, data.a, attenuation=data.attenuation)
    >>> bool(np.array_equal(res.ix, data.source_index[:, 0]))
    True
    >>> float(res.misfit.max())
    0.0
    """
    problem = _prepare(amplitudes, stations, x, y, z, a, attenuation)
    n_threads = resolve_workers(workers)
    return _solve(problem, n_threads)


# ---------------------------------------------------------------------------
# validation

def _real_array(value, name, ndim, columns=None):
    """value as a C-contiguous float64 array of ndim dimensions (and `columns`
    columns), its dtype and shape checked before anything is copied."""
    arr = as_array(value, name)
    if arr.dtype.kind not in "iufO":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got an array of shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise ValueError(f"{name} must have shape (S, {columns}), got {arr.shape}")
    try:
        return _aligned(arr)
    except (TypeError, ValueError):  # objects that are not numbers
        raise TypeError(f"{name} must hold real numbers") from None
    except OverflowError:  # Python ints beyond float64
        raise ValueError(f"{name} holds a number beyond float64's range") from None


def _aligned(arr):
    """arr as a C-contiguous, aligned float64 array (a copy only where needed: an
    array unpickled from a buffer, as Dask's workers receive them, may be
    misaligned, and the C core reads doubles)."""
    return np.require(arr, dtype=np.float64, requirements=["C", "A"])


def _finite(arr, name):
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)].flat[0]!r}")
    return arr


def _axis(value, name):
    arr = _finite(_real_array(value, name, 1), name)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def check_attenuation(attenuation):
    b = check_real(attenuation, "attenuation")
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"attenuation must be finite and non-negative, got {attenuation!r}")
    return b


def check_grid(stations, x, y, z, a, attenuation, n_stations=None):
    """The event-independent arguments, checked: (stations, x, y, z, a, B), a an
    empty array for None."""
    stations = _real_array(stations, "stations", 2, columns=3)
    if n_stations is not None and stations.shape[0] != n_stations:
        raise ValueError(f"stations must have one row per column of amplitudes "
                         f"({n_stations}), got shape {stations.shape}")
    if stations.shape[0] == 0:
        raise ValueError("stations must not be empty")
    stations = _finite(stations, "stations")
    x, y, z = _axis(x, "x"), _axis(y, "y"), _axis(z, "z")
    if a is None:
        a = np.empty(0)
    else:
        a = _axis(a, "a")
        if np.any(np.diff(a) <= 0):
            i = int(np.flatnonzero(np.diff(a) <= 0)[0])
            raise ValueError(f"a must be strictly increasing, got a[{i}]={a[i]!r} and "
                             f"a[{i + 1}]={a[i + 1]!r}")
    return stations, x, y, z, a, check_attenuation(attenuation)


def check_amplitudes(amplitudes, first_event=0):
    """amplitudes as float64 (E, S), finite or NaN, every event recorded somewhere;
    events are named from first_event on."""
    amp = _real_array(amplitudes, "amplitudes", 2)
    if amp.shape[1] == 0:
        raise ValueError(f"amplitudes must have at least one station (column), "
                         f"got shape {amp.shape}")
    if np.any(np.isinf(amp)):
        raise ValueError(f"amplitudes must be finite or NaN (missing), got "
                         f"{amp[np.isinf(amp)][0]!r}")
    empty = np.flatnonzero(np.all(np.isnan(amp), axis=1))
    if empty.size:
        raise ValueError(f"amplitudes: event {first_event + int(empty[0])} has no recording "
                         f"station (all NaN)")
    return amp


# ---------------------------------------------------------------------------
# the search

@dataclasses.dataclass
class _Problem:
    amp: np.ndarray        # (E, S) observed, NaN missing
    stations: np.ndarray   # (S, 3)
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    a: np.ndarray          # (K,), empty for least squares
    attenuation: float
    first_event: int = 0   # for messages


def _prepare(amplitudes, stations, x, y, z, a, attenuation, first_event=0):
    amp = check_amplitudes(amplitudes, first_event)
    grid = check_grid(stations, x, y, z, a, attenuation, n_stations=amp.shape[1])
    return _Problem(amp, *grid, first_event=first_event)


def _empty(shape, what):
    try:
        return np.empty(shape)
    except (MemoryError, ValueError):
        raise MemoryError(f"the {what} ({math.prod(shape) * 8} bytes) do not fit in "
                          f"memory") from None


def station_terms(stations, x, y, z, attenuation, n_threads):
    """(terms (n_tiles, S, TILE), gg (n_tiles, TILE), n_pos) for a checked grid."""
    n_pos = x.size * y.size * z.size
    n_tiles = -(-n_pos // _locate.TILE)
    terms = _empty((n_tiles, stations.shape[0], _locate.TILE),
                   f"station terms of {n_pos} positions x {stations.shape[0]} stations")
    gg = _empty((n_tiles, _locate.TILE), "station terms' sums")
    _locate.terms(stations, x, y, z, attenuation, terms, gg, min(n_threads, n_tiles))
    return terms, gg, n_pos


def _events(amp):
    """Each event's recorded amplitudes packed first, their stations, counts and
    sums of squares (the loop's way)."""
    E, S = amp.shape
    recorded = ~np.isnan(amp)
    order = np.argsort(~recorded, axis=1, kind="stable")   # recorded first, in order
    d = np.ascontiguousarray(np.take_along_axis(amp, order, axis=1))
    n_rec = recorded.sum(axis=1).astype(np.int64)
    d[np.arange(S)[None, :] >= n_rec[:, None]] = 0.0
    sta = np.ascontiguousarray(order, dtype=np.int64)
    return d, sta, n_rec, _locate.sum_squares(d, n_rec)


def _solve(problem, n_threads, tables=None):
    # arrays checked elsewhere may have travelled since (Dask ships them pickled)
    problem = dataclasses.replace(problem, **{
        name: _aligned(getattr(problem, name)) for name in ("amp", "stations", "x", "y", "z",
                                                             "a")})
    amp = problem.amp
    E = amp.shape[0]
    nx, ny, nz = problem.x.size, problem.y.size, problem.z.size
    if E == 0:
        f, i = np.empty(0), np.empty(0, np.int64)
        return LocateResult(f, f.copy(), f.copy(), f.copy(), f.copy(), f.copy(), i, i.copy(),
                            i.copy())
    terms, gg, n_pos = tables if tables is not None else station_terms(
        problem.stations, problem.x, problem.y, problem.z, problem.attenuation, n_threads)
    d, sta, n_rec, dd = _events(amp)

    n_tiles = terms.shape[0]
    per_unit = min(EVENTS_PER_UNIT, max(16, -(-E // (32 * n_threads)) * 4))
    n_blocks = -(-E // per_unit)
    # positions are split too where there are too few blocks of events to go round
    n_chunks = min(n_tiles, -(-4 * n_threads // n_blocks)) if n_blocks < 4 * n_threads else 1
    best = np.empty((n_chunks, E), dtype=[("err", "f8"), ("amp", "f8"), ("pos", "i8"),
                                          ("k", "i8")])
    best["err"], best["amp"], best["pos"], best["k"] = np.inf, np.nan, -1, -1
    _locate.scan(terms, gg, n_pos, problem.a, d, sta, n_rec, dd,
                 best.reshape(-1).view(np.uint8), per_unit, n_chunks,
                 min(n_threads, n_blocks * n_chunks))

    # chunk by chunk in position order: a later chunk wins only by a smaller error
    final = best[0].copy()
    for c in range(1, n_chunks):
        better = best[c]["err"] < final["err"]
        final[better] = best[c][better]
    lost = np.flatnonzero(final["pos"] < 0)
    if lost.size:
        raise ValueError(f"amplitudes: no candidate has a finite error for event "
                         f"{problem.first_event + int(lost[0])} (every grid position is at "
                         f"zero distance from one of its stations, or the errors overflow)")

    pos = final["pos"]
    ix, rest = np.divmod(pos, ny * nz)
    iy, iz = np.divmod(rest, nz)
    err = final["err"]
    with np.errstate(divide="ignore", invalid="ignore"):
        misfit = 100.0 * np.sqrt(err / dd)
    misfit[dd == 0] = np.where(err[dd == 0] == 0, 0.0, np.inf)
    return LocateResult(problem.x[ix], problem.y[iy], problem.z[iz], final["amp"].copy(),
                        misfit, err.copy(), ix, iy, iz)
