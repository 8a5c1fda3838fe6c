"""nogil grid-search location: the station terms tile by tile, then blocks of
events against ranges of tiles, in parallel; Ctrl-C stops both.

Validation, the event layout and the results live in locate.py; this module
assumes valid input.  The search and why its result is the reference loop's,
whatever the threads, are in csrc/locate/fk_locate.h.
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastkern._interrupt cimport Interrupt

cdef extern from "locate/fk_locate.h" nogil:
    enum: FK_LOCATE_TILE
    ctypedef struct fk_locate_grid:
        Py_ssize_t n_pos
        Py_ssize_t n_sta
        Py_ssize_t n_amp
        const double *terms
        const double *gg_all
        const double *amp
    ctypedef struct fk_locate_events:
        Py_ssize_t n_sta
        const double *d
        const int64_t *sta
        const int64_t *n_rec
        const double *dd
    ctypedef struct fk_locate_best:
        double err
        double amp
        int64_t pos
        int64_t k
    void fk_locate_terms_tile(const double *stations, Py_ssize_t n_sta,
                              const double *xs, Py_ssize_t nx, const double *ys, Py_ssize_t ny,
                              const double *zs, Py_ssize_t nz, double attenuation, Py_ssize_t t,
                              double *terms_tile, double *gg_tile)
    Py_ssize_t fk_locate_scan_tile(const fk_locate_grid *grid, const fk_locate_events *ev,
                                   Py_ssize_t e0, Py_ssize_t e1, Py_ssize_t t,
                                   fk_locate_best *best)
    double fk_locate_sum_squares(const double *d, Py_ssize_t n)

#: Positions per tile of the station-term table.
TILE = FK_LOCATE_TILE


def terms(const double[:, ::1] stations, const double[::1] x, const double[::1] y,
          const double[::1] z, double attenuation, double[:, :, ::1] terms_out,
          double[:, ::1] gg_out, int n_threads):
    """Fill terms_out (n_tiles, S, TILE) with the station terms exp(-B r) / r of
    every grid position, tile by tile, and gg_out (n_tiles, TILE) with their
    sums of squares over the stations."""
    cdef Py_ssize_t t, n_tiles = terms_out.shape[0], S = stations.shape[0]
    cdef Py_ssize_t nx = x.shape[0], ny = y.shape[0], nz = z.shape[0]
    cdef Interrupt interrupt = Interrupt()
    for t in prange(n_tiles, nogil=True, schedule="dynamic", chunksize=8,
                    num_threads=n_threads):
        if not interrupt.stopped():
            fk_locate_terms_tile(&stations[0, 0], S, &x[0], nx, &y[0], ny, &z[0], nz,
                                 attenuation, t, &terms_out[t, 0, 0], &gg_out[t, 0])
    interrupt.check()


def sum_squares(const double[:, ::1] d, const int64_t[::1] n_rec):
    """Per event, the sum of d*d over its n_rec leading values, the loop's way."""
    cdef Py_ssize_t e, E = d.shape[0]
    out = np.empty(E)
    cdef double[::1] view = out
    with nogil:
        for e in range(E):
            view[e] = fk_locate_sum_squares(&d[e, 0], n_rec[e])
    return out


cdef Py_ssize_t _gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef Py_ssize_t _stride(Py_ssize_t n) noexcept nogil:
    """A step through n tiles that visits each once and jumps across the grid (about
    0.618 n, coprime with n).  The order of the tiles never changes a result, but
    in the grid's own order the best error falls slowly as the scan approaches an
    event's source, and every position that improves on it takes the exact step;
    in this order few do."""
    cdef Py_ssize_t s = max(1, (n * 618) // 1000)
    while s > 1 and _gcd(n, s) != 1:
        s -= 1
    return s


def scan(const double[:, :, ::1] terms, const double[:, ::1] gg_all, Py_ssize_t n_pos,
         const double[::1] amp, const double[:, ::1] d, const int64_t[:, ::1] sta,
         const int64_t[::1] n_rec, const double[::1] dd, unsigned char[::1] best_raw,
         Py_ssize_t events_per_unit, Py_ssize_t n_chunks, int n_threads):
    """Search events against the grid.  best_raw holds n_chunks * E records
    fk_locate_best (err, amp, pos, k), chunk-major, initialised to (inf, nan,
    -1, -1): chunk c covers tiles c * n_tiles // n_chunks up to the next
    chunk's first, and its record of event e is e's best among them.  A unit
    of work is one block of events_per_unit events against one chunk.  Returns
    the number of (event, position) pairs that the screening passed."""
    cdef Py_ssize_t E = d.shape[0], S = d.shape[1], n_tiles = terms.shape[0]
    cdef Py_ssize_t n_blocks = (E + events_per_unit - 1) // events_per_unit
    cdef Py_ssize_t u, blk, ch, e0, e1, t, t0, t1, i, stride
    cdef Py_ssize_t exact = 0
    cdef fk_locate_grid grid
    cdef fk_locate_events ev
    cdef fk_locate_best *best = <fk_locate_best *>&best_raw[0]
    cdef Interrupt interrupt = Interrupt()
    grid.n_pos = n_pos
    grid.n_sta = S
    grid.n_amp = amp.shape[0]
    grid.terms = &terms[0, 0, 0]
    grid.gg_all = &gg_all[0, 0]
    grid.amp = &amp[0] if amp.shape[0] > 0 else NULL
    ev.n_sta = S
    ev.d = &d[0, 0]
    ev.sta = &sta[0, 0]
    ev.n_rec = &n_rec[0]
    ev.dd = &dd[0]
    for u in prange(n_blocks * n_chunks, nogil=True, schedule="dynamic", chunksize=1,
                    num_threads=n_threads):
        blk = u // n_chunks
        ch = u % n_chunks
        e0 = blk * events_per_unit
        e1 = min(E, e0 + events_per_unit)
        t0 = ch * n_tiles // n_chunks
        t1 = (ch + 1) * n_tiles // n_chunks
        stride = _stride(t1 - t0)
        for i in range(t1 - t0):
            if interrupt.stopped():
                break
            t = t0 + (i * stride) % (t1 - t0)
            exact += fk_locate_scan_tile(&grid, &ev, e0, e1, t, best + ch * E + e0)
    interrupt.check()
    return exact
