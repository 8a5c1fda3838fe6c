"""``python -m fastkern`` row for grid-search event location, and the NumPy version
of the loop that it (and bench/bench_locate.py) compares against."""
import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..datasets import synthetic_events
from ..locate import locate_events


def station_terms(stations, x, y, z, attenuation):
    """exp(-B r) / r of every grid position (rows, in loop order) and station."""
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    pos = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
    r = np.sqrt(((pos[:, None, :] - stations[None, :, :]) ** 2).sum(-1))
    return np.exp(-attenuation * r) / r


def numpy_locate(amplitudes, stations, x, y, z, a, attenuation, block=4096):
    """The loop as a NumPy user writes it: per event, the error of every candidate
    amplitude at a block of positions at once, vectorised over amplitudes and
    stations (the station terms computed once for all events).  Returns
    (ix, iy, iz, amplitude, misfit, error), arrays of shape (E,)."""
    g = station_terms(stations, x, y, z, attenuation)            # (P, S)
    E, P = len(amplitudes), g.shape[0]
    best = np.empty((E, 2), dtype=np.int64)
    error = np.empty(E)
    misfit = np.empty(E)
    for e, d in enumerate(amplitudes):
        rec = ~np.isnan(d)
        dr, gr = d[rec], g[:, rec]
        err_best, where = np.inf, (0, 0)
        for p0 in range(0, P, block):
            pred = a[None, :, None] * gr[p0:p0 + block, None, :]  # (block, K, S)
            err = ((pred - dr) ** 2).sum(-1)
            i = int(np.argmin(err))
            if err.flat[i] < err_best:
                err_best, where = err.flat[i], divmod(i, a.size)
                where = (p0 + where[0], where[1])
        best[e] = where
        error[e] = err_best
        misfit[e] = 100 * np.sqrt(err_best / (dr ** 2).sum())
    ny, nz = len(y), len(z)
    p = best[:, 0]
    return p // (ny * nz), p // nz % ny, p % nz, a[best[:, 1]], misfit, error


def workload(quick=False):
    workers = get_workers()
    repeat = 2 if quick else 3
    n_events, shape = (40, (40, 40, 12)) if quick else (200, (60, 60, 20))
    data = synthetic_events(n_events, 20, shape=shape, n_amplitudes=50, noise=0.1,
                            on_grid=False, seed=2024)
    args = (data.amplitudes, data.stations, data.x, data.y, data.z, data.a)
    kw = {"attenuation": data.attenuation}

    # the NumPy loop takes about 0.1 s an event here: timed on a few, scaled per event
    few = 2 if quick else 4
    t_few, ref = best_time(lambda: numpy_locate(data.amplitudes[:few], *args[1:],
                                                data.attenuation), 1)
    t_ref = t_few * n_events / few
    t_one, _ = best_time(lambda: locate_events(*args, **kw, workers=1), repeat)
    t_all, out = best_time(lambda: locate_events(*args, **kw, workers=workers), repeat)
    diff = float(np.max(np.abs(out.misfit[:few] - ref[4]) / ref[4]))
    nx, ny, nz = shape
    return [Row("locate_events",
                f"{n_events} events, 20 stations, {nx}x{ny}x{nz} grid, 50 amplitudes",
                f"NumPy per event (x{n_events // few} of {few})", t_ref, t_one, t_all, diff,
                "rel misfit")]
