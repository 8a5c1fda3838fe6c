"""nogil bootstrap kernels: the statistic of every resample, block by block, on
several threads, without materialising the resamples.

Validation, seeding and the confidence intervals live in bootstrap.py; this
module assumes valid input (samples of at least two observations, finite values,
one stream per block).

The random stream, which a plain NumPy loop reproduces
------------------------------------------------------
Resample ``r`` belongs to block ``r // BLOCK_SIZE`` and is drawn from that block's
PCG64 stream after the block's earlier resamples.  For each sample ``k`` in turn
(one sample when the data are paired) it draws ``n_k`` indices exactly as
``Generator.integers(0, n_k, size=n_k)`` draws them: NumPy's
``random_bounded_uint64_fill`` with Lemire's method, on 32-bit draws for
``n_k <= 2**32``.  The draws are made by the C core in csrc/bootstrap, an inline
copy of PCG64 and of that function (no call through NumPy's ``bitgen_t`` per
draw), seeded in C from each block's spawn key (csrc/common/fk_seedseq.h).  The
indices are drawn ``CHUNK`` at a time: this gives the same stream, because the only state kept
between draws (PCG64's spare 32-bit half) lives in the stream itself.  The tests
check all of this against NumPy.
"""
from cython.parallel cimport parallel, prange
from libc.math cimport NAN, sqrt
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

import numpy as np

cdef extern from "bootstrap/fk_integers.h" nogil:
    ctypedef struct fk_pcg64:
        uint64_t state_hi, state_lo, inc_hi, inc_lo
        uint32_t uinteger
        int has_uint32
    void fk_pcg64_integers(fk_pcg64 *g, uint64_t n, Py_ssize_t cnt, uint64_t *out)
    void fk_pcg64_raw(fk_pcg64 *g, int portable, Py_ssize_t cnt, uint64_t *out)
    int fk_pcg64_use_avx512(int use)

cdef extern from "common/fk_seedseq.h" nogil:
    ctypedef struct fk_seedseq_root:
        pass
    int fk_seedseq_root_init(fk_seedseq_root *r, const uint32_t *words, size_t n_words,
                             size_t pool_size)
    fk_pcg64 *fk_seedseq_lazy(const fk_seedseq_root *r, fk_pcg64 *table, uint64_t first,
                              size_t u)

cdef extern from "bootstrap/fk_resample.h" nogil:
    void fk_resample_sums_f64(fk_pcg64 *g, const double *x, Py_ssize_t n, double shift,
                              int squares, double *s, double *ss)
    void fk_resample_sums_f32(fk_pcg64 *g, const float *x, Py_ssize_t n, double shift,
                              int squares, double *s, double *ss)
    void fk_resample_counts(fk_pcg64 *g, const int64_t *inverse, Py_ssize_t n,
                            int64_t *counts)

ctypedef fused real_t:
    float
    double

cdef enum:
    # Resamples per block, each block with its own stream.  Part of the seeding
    # contract (results depend on it): never change it.
    _BLOCK_SIZE = 64
    # Indices drawn per call into NumPy; they live on the stack.
    CHUNK = 256

BLOCK_SIZE = _BLOCK_SIZE

# Statistic codes, shared with bootstrap.py.
cpdef enum Statistic:
    MEAN = 0
    VAR = 1
    STD = 2
    MEAN_DIFF = 3
    PEARSONR = 4
    MEDIAN = 5
    QUANTILE = 6
    TRIMMED_MEAN = 7


cdef int _load_pcg64(object bit_generator, fk_pcg64 *g) except -1:
    """g = the stream of a NumPy PCG64 bit generator, from its ``state``."""
    state = bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise TypeError(f"expected a PCG64 bit generator, got "
                        f"{type(bit_generator).__name__}")
    mask = (1 << 64) - 1
    s = state["state"]["state"]
    inc = state["state"]["inc"]
    g.state_hi = (s >> 64) & mask
    g.state_lo = s & mask
    g.inc_hi = (inc >> 64) & mask
    g.inc_lo = inc & mask
    g.has_uint32 = 1 if state["has_uint32"] else 0
    g.uinteger = state["uinteger"]
    return 0


cdef class BlockStreams:
    """The streams of blocks first..first+n_blocks-1 of a bootstrap run: block b
    draws from ``PCG64(SeedSequence(root.entropy, spawn_key=root.spawn_key + (b,),
    pool_size=root.pool_size))``, given by the root's words and pool size (see
    _seeding.root_words).

    ``start(b)`` gives block b's stream where it stands, derived in C from its
    spawn key the first time (csrc/common/fk_seedseq.h), so a block's stream is
    made by the thread that runs it.  The states lie side by side, several to a
    cache line, so a kernel draws from a copy of its block's state on its own
    thread's stack and stores it back in ``states[b]`` once the block is done:
    updating the shared line at every chunk would make the threads take it from
    each other all the time.
    """
    cdef fk_seedseq_root root
    cdef fk_pcg64 *states
    cdef uint64_t first
    cdef readonly Py_ssize_t n_blocks

    def __cinit__(self, const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first,
                  Py_ssize_t n_blocks):
        if fk_seedseq_root_init(&self.root, &root_words[0], root_words.shape[0], pool_size):
            raise MemoryError()
        self.first = first
        self.n_blocks = n_blocks
        # zeroed: not derived yet (see fk_seedseq_lazy)
        self.states = <fk_pcg64 *>calloc(max(1, n_blocks), sizeof(fk_pcg64))
        if self.states == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.states)

    cdef inline fk_pcg64 start(self, Py_ssize_t b) noexcept nogil:
        return fk_seedseq_lazy(&self.root, self.states, self.first, b)[0]


cdef inline void _draw_chunk(fk_pcg64 *gen, Py_ssize_t n, Py_ssize_t cnt,
                             uint64_t *idx) noexcept nogil:
    """cnt indices uniform in [0, n), as Generator.integers(0, n, size=cnt) draws them."""
    fk_pcg64_integers(gen, n, cnt, idx)


def _pcg64_raw(bit_generator, Py_ssize_t count, bint portable=False):
    """The next ``count`` outputs of the C copy of a PCG64 bit generator (which is
    not moved), as ``bit_generator.random_raw(count)``; ``portable`` uses the
    two-64-bit-halves arithmetic of compilers without a 128-bit type.  For tests."""
    cdef fk_pcg64 g
    out = np.empty(count, dtype=np.uint64)
    cdef uint64_t[::1] view = out
    _load_pcg64(bit_generator, &g)
    if count:
        fk_pcg64_raw(&g, portable, count, &view[0])
    return out


def _pcg64_use_avx512(use=None):
    """Whether the bounded draws multiply with AVX-512 (where built and supported);
    ``use=False`` turns that off, ``True`` back on.  For tests of both copies: change
    it only while no kernel runs."""
    return bool(fk_pcg64_use_avx512(-1 if use is None else int(bool(use))))


def _pcg64_integers(bit_generator, uint64_t n, Py_ssize_t count):
    """``Generator(bit_generator).integers(0, n, size=count)`` by the C core, and
    the state it leaves (the bit generator is not moved).  For tests."""
    cdef fk_pcg64 g
    out = np.empty(count, dtype=np.uint64)
    cdef uint64_t[::1] view = out
    _load_pcg64(bit_generator, &g)
    if count:
        fk_pcg64_integers(&g, n, count, &view[0])
    state = {"state": (int(g.state_hi) << 64) | int(g.state_lo),
             "inc": (int(g.inc_hi) << 64) | int(g.inc_lo),
             "has_uint32": g.has_uint32, "uinteger": g.uinteger}
    return out, state


# ---------------------------------------------------------------------------
# Moment statistics: mean, var, std, mean_diff, pearsonr.  A resample is reduced
# to sums of shifted values (x - cx, y - cy) as its indices are drawn; the shifts
# (0 for means, the sample mean for var/std/pearsonr) keep the sums of squares
# free of cancellation.

cdef struct moments_t:
    double nx, ny            # observations of x and of y
    double sx, sy            # sums of x - cx and y - cy
    double sxx, syy, sxy     # sums of squares and of products (var, std, pearsonr)
    bint const_x, const_y    # every x (y) in the resample equal (pearsonr)


cdef inline double _finish_moments(int kind, const moments_t *m, double ddof) noexcept nogil:
    """The statistic from a resample's (or a sample's) sums."""
    cdef double v, vx, vy, r
    if kind == MEAN:
        return m.sx / m.nx
    if kind == MEAN_DIFF:
        return m.sx / m.nx - m.sy / m.ny
    if kind == VAR or kind == STD:
        if m.nx - ddof <= 0:
            return NAN
        v = (m.sxx - m.sx * m.sx / m.nx) / (m.nx - ddof)
        v = max(v, 0.0)
        return v if kind == VAR else sqrt(v)
    # PEARSONR
    if m.const_x or m.const_y:
        return NAN
    vx = m.sxx - m.sx * m.sx / m.nx
    vy = m.syy - m.sy * m.sy / m.nx
    if vx <= 0 or vy <= 0:
        return NAN
    r = (m.sxy - m.sx * m.sy / m.nx) / (sqrt(vx) * sqrt(vy))
    return min(1.0, max(-1.0, r))


cdef void _draw_sums(fk_pcg64 *gen, const real_t *x, Py_ssize_t n, double shift,
                     bint squares, double *s, double *ss) noexcept nogil:
    """Sums of d and d*d over n draws of d = x[i] - shift, i uniform in [0, n)
    (four chains of additions per chunk; see csrc/bootstrap/fk_resample.h)."""
    if real_t is double:
        fk_resample_sums_f64(gen, x, n, shift, squares, s, ss)
    else:
        fk_resample_sums_f32(gen, x, n, shift, squares, s, ss)


cdef void _draw_pair_sums(fk_pcg64 *gen, const real_t *x, const real_t *y, Py_ssize_t n,
                          double cx, double cy, bint products, moments_t *m) noexcept nogil:
    """The sums of moments_t over n draws of pairs (x[i], y[i])."""
    cdef uint64_t idx[CHUNK]
    cdef Py_ssize_t done = 0, cnt, k
    cdef double dx, dy, dx0 = 0, dy0 = 0
    cdef double c[5]
    m.sx = m.sy = m.sxx = m.syy = m.sxy = 0
    m.const_x = m.const_y = True
    while done < n:
        cnt = min(<Py_ssize_t>CHUNK, n - done)
        _draw_chunk(gen, n, cnt, idx)
        c[0] = c[1] = c[2] = c[3] = c[4] = 0
        if products:
            if done == 0:
                dx0 = x[idx[0]] - cx
                dy0 = y[idx[0]] - cy
            for k in range(cnt):
                dx = x[idx[k]] - cx
                dy = y[idx[k]] - cy
                c[0] += dx
                c[1] += dy
                c[2] += dx * dx
                c[3] += dy * dy
                c[4] += dx * dy
                m.const_x = m.const_x & (dx == dx0)
                m.const_y = m.const_y & (dy == dy0)
        else:
            for k in range(cnt):
                c[0] += x[idx[k]] - cx
                c[1] += y[idx[k]] - cy
        m.sx += c[0]
        m.sy += c[1]
        m.sxx += c[2]
        m.syy += c[3]
        m.sxy += c[4]
        done += cnt


cdef double _resample_moments(fk_pcg64 *gen, int kind, const real_t *x, const real_t *y,
                              Py_ssize_t nx, Py_ssize_t ny, double cx, double cy,
                              double ddof, bint paired) noexcept nogil:
    """The statistic of one resample, drawn from gen."""
    cdef moments_t m
    m.nx = nx
    m.ny = ny
    if kind == MEAN_DIFF and paired:
        _draw_pair_sums(gen, x, y, nx, cx, cy, False, &m)
    elif kind == PEARSONR:
        _draw_pair_sums(gen, x, y, nx, cx, cy, True, &m)
    else:
        _draw_sums(gen, x, nx, cx, kind == VAR or kind == STD, &m.sx, &m.sxx)
        if kind == MEAN_DIFF:
            _draw_sums(gen, y, ny, cy, False, &m.sy, &m.syy)
    return _finish_moments(kind, &m, ddof)


# Largest array that each thread copies for itself (_own_copy): about one core's
# L2 cache.
cdef size_t _OWN_COPY_MAX_BYTES = 2 << 20


cdef const void *_own_copy(const void *p, size_t nbytes, int n_threads) noexcept nogil:
    """A copy of p for the calling thread, when several threads gather from it and
    it fits in a core's cache; else p itself (and p too if the copy cannot be
    allocated: it only saves time).

    On the 2-core machine, two threads gathering at random from one shared
    100,000-element array ran about 15% slower than each from its own copy, and
    the mean's 2-worker speed-up went from 1.4-1.7x to 1.9-2.0x with copies; for
    an 8 MB array the copies cost more than they saved.  Free with _free_copy.
    """
    cdef void *q
    if n_threads <= 1 or nbytes > _OWN_COPY_MAX_BYTES:
        return p
    q = malloc(nbytes)
    if q == NULL:
        return p
    memcpy(q, p, nbytes)
    return q


cdef inline void _free_copy(const void *q, const void *p) noexcept nogil:
    if q != p:
        free(<void *>q)


def resample_moments(BlockStreams streams, int kind, const real_t[::1] x,
                     const real_t[::1] y, double cx, double cy, double ddof, bint paired,
                     double[::1] out, int n_threads):
    """out[r] = the statistic of resample r, for r < len(out) (moment statistics).

    y is ignored (pass x) unless kind is MEAN_DIFF or PEARSONR; for PEARSONR and a
    paired MEAN_DIFF, len(y) == len(x).
    """
    cdef Py_ssize_t n_out = out.shape[0]
    cdef Py_ssize_t n_blocks = (n_out + _BLOCK_SIZE - 1) // _BLOCK_SIZE
    cdef Py_ssize_t b, r
    cdef Py_ssize_t nx = x.shape[0], ny = y.shape[0]
    cdef const real_t *px = &x[0]
    cdef const real_t *py = &y[0]
    cdef double *pout = &out[0]
    cdef const real_t *tx = NULL   # thread-private in the parallel block
    cdef const real_t *ty = NULL
    cdef fk_pcg64 stream
    if n_blocks > streams.n_blocks:
        raise ValueError("fewer streams than blocks")
    n_threads = <int>max(1, min(n_threads, n_blocks))
    with nogil, parallel(num_threads=n_threads):
        tx = <const real_t *>_own_copy(px, nx * sizeof(real_t), n_threads)
        ty = tx if py == px else <const real_t *>_own_copy(py, ny * sizeof(real_t), n_threads)
        for b in prange(n_blocks, schedule="dynamic"):
            stream = streams.start(b)       # a thread's own copy: see BlockStreams
            for r in range(b * _BLOCK_SIZE, min(n_out, (b + 1) * _BLOCK_SIZE)):
                pout[r] = _resample_moments(&stream, kind, tx, ty, nx, ny, cx, cy, ddof,
                                            paired)
            streams.states[b] = stream
        if ty != tx:
            _free_copy(ty, py)
        _free_copy(tx, px)


cdef void _totals(int kind, const real_t *x, const real_t *y, Py_ssize_t nx, Py_ssize_t ny,
                  double cx, double cy, bint paired, moments_t *m) noexcept nogil:
    """The sums of moments_t over the whole sample (each observation once)."""
    cdef Py_ssize_t i
    cdef double dx, dy
    m.nx = nx
    m.ny = ny
    m.sx = m.sy = m.sxx = m.syy = m.sxy = 0
    m.const_x = m.const_y = True
    for i in range(nx):
        dx = x[i] - cx
        m.sx += dx
        m.sxx += dx * dx
        m.const_x = m.const_x & (dx == x[0] - cx)
    if kind == MEAN_DIFF or kind == PEARSONR:
        for i in range(ny):
            dy = y[i] - cy
            m.sy += dy
            m.syy += dy * dy
            m.const_y = m.const_y & (dy == y[0] - cy)
            if paired:
                m.sxy += (x[i] - cx) * dy


def sample_moments(int kind, const real_t[::1] x, const real_t[::1] y, double cx,
                   double cy, double ddof, bint paired):
    """The statistic of the sample itself (moment statistics)."""
    cdef moments_t m
    with nogil:
        _totals(kind, &x[0], &y[0], x.shape[0], y.shape[0], cx, cy, paired, &m)
    return _finish_moments(kind, &m, ddof)


def jackknife_moments(int kind, const real_t[::1] x, const real_t[::1] y, double cx,
                      double cy, double ddof, bint paired, double[::1] out_x,
                      double[::1] out_y):
    """Leave-one-out statistics in O(n): out_x[i] leaves out x[i] (the pair i when
    paired); out_y[j], for an unpaired MEAN_DIFF only, leaves out y[j]."""
    cdef moments_t t, m
    cdef Py_ssize_t i, nx = x.shape[0], ny = y.shape[0]
    cdef double dx, dy
    with nogil:
        _totals(kind, &x[0], &y[0], nx, ny, cx, cy, paired, &t)
        t.const_x = t.const_y = False  # a leave-one-out constant sample gives v <= 0
        for i in range(nx):
            m = t
            dx = x[i] - cx
            m.nx = nx - 1
            m.sx -= dx
            m.sxx -= dx * dx
            if paired and (kind == MEAN_DIFF or kind == PEARSONR):
                dy = y[i] - cy
                m.ny = ny - 1
                m.sy -= dy
                m.syy -= dy * dy
                m.sxy -= dx * dy
            out_x[i] = _finish_moments(kind, &m, ddof)
        if kind == MEAN_DIFF and not paired:
            for i in range(ny):
                m = t
                m.ny = ny - 1
                m.sy -= y[i] - cy
                out_y[i] = _finish_moments(kind, &m, ddof)


# ---------------------------------------------------------------------------
# Order statistics: median, quantile, trimmed_mean.  The sample is replaced by its
# sorted distinct values and, per observation, the rank of its value (`inverse`).
# A resample is then a histogram over the distinct values, filled as indices are
# drawn, and its order statistics come from one scan of the histogram: O(n) per
# resample, exact, with a scratch histogram per thread.

cdef inline double _lerp(double a, double b, double t) noexcept nogil:
    """NumPy's quantile interpolation, bit for bit (exact where a == b)."""
    cdef double diff = b - a
    if t >= 0.5:
        return b - diff * (1 - t)
    return a + diff * t


cdef inline void _seek(const int64_t *counts, Py_ssize_t rank, Py_ssize_t *u,
                       Py_ssize_t *below) noexcept nogil:
    """Move (u, below) forward to the distinct value holding `rank`, where below is
    the number of observations before value u: below <= rank < below + counts[u]."""
    while below[0] + counts[u[0]] <= rank:
        below[0] += counts[u[0]]
        u[0] += 1


cdef inline double _weighted_sum(const int64_t *counts, const double *values,
                                 Py_ssize_t u0, Py_ssize_t u1) noexcept nogil:
    """sum(counts[u] * values[u] for u0 <= u < u1), on four chains of additions."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t u = u0
    while u + 4 <= u1:
        s0 += counts[u] * values[u]
        s1 += counts[u + 1] * values[u + 1]
        s2 += counts[u + 2] * values[u + 2]
        s3 += counts[u + 3] * values[u + 3]
        u += 4
    while u < u1:
        s0 += counts[u] * values[u]
        u += 1
    return (s0 + s1) + (s2 + s3)


cdef double _order_statistic(int kind, const int64_t *counts, const double *values,
                             Py_ssize_t lo, Py_ssize_t hi, double gamma) noexcept nogil:
    """The statistic of a sample given as counts of its sorted distinct values.

    MEDIAN: the mean of the values of rank lo and hi.  QUANTILE: NumPy's linear
    interpolation between them with weight gamma.  TRIMMED_MEAN: the mean of the
    values of rank lo <= rank < hi.  Ranks count from 0 and lo <= hi (lo < hi for
    TRIMMED_MEAN).
    """
    cdef Py_ssize_t u = 0, below = 0, u_lo, below_lo
    cdef double v_lo, total
    _seek(counts, lo, &u, &below)
    v_lo = values[u]
    if kind == TRIMMED_MEAN:
        u_lo = u
        below_lo = below
        _seek(counts, hi - 1, &u, &below)
        if u == u_lo:
            return values[u]
        total = ((below_lo + counts[u_lo] - lo) * values[u_lo]
                 + _weighted_sum(counts, values, u_lo + 1, u)
                 + (hi - below) * values[u])
        return total / (hi - lo)
    _seek(counts, hi, &u, &below)
    if kind == MEDIAN:
        return (v_lo + values[u]) / 2
    return _lerp(v_lo, values[u], gamma)


cdef inline void _draw_counts(fk_pcg64 *gen, const int64_t *inverse, Py_ssize_t n,
                              int64_t *counts) noexcept nogil:
    """Add n draws i, uniform in [0, n), to the histogram: counts[inverse[i]] += 1."""
    fk_resample_counts(gen, inverse, n, counts)


def resample_order(BlockStreams streams, int kind, const int64_t[::1] inverse,
                   const double[::1] values, Py_ssize_t lo, Py_ssize_t hi, double gamma,
                   double[::1] out, int n_threads):
    """out[r] = the statistic of resample r (order statistics), where the sample is
    values[inverse] and lo, hi, gamma are as for _order_statistic."""
    cdef Py_ssize_t n_out = out.shape[0]
    cdef Py_ssize_t n_blocks = (n_out + _BLOCK_SIZE - 1) // _BLOCK_SIZE
    cdef Py_ssize_t n = inverse.shape[0], n_values = values.shape[0]
    cdef const int64_t *pinv = &inverse[0]
    cdef const double *pval = &values[0]
    cdef double *pout = &out[0]
    cdef int64_t *counts = NULL    # thread-private in the parallel block
    cdef const int64_t *tinv = NULL
    cdef Py_ssize_t b, r
    cdef int failed = 0
    cdef fk_pcg64 stream
    if n_blocks > streams.n_blocks:
        raise ValueError("fewer streams than blocks")
    n_threads = <int>max(1, min(n_threads, n_blocks))
    with nogil, parallel(num_threads=n_threads):
        counts = <int64_t *>calloc(n_values, sizeof(int64_t))
        tinv = <const int64_t *>_own_copy(pinv, n * sizeof(int64_t), n_threads)
        for b in prange(n_blocks, schedule="dynamic"):
            if counts == NULL:
                failed += 1
                continue
            stream = streams.start(b)       # a thread's own copy: see BlockStreams
            for r in range(b * _BLOCK_SIZE, min(n_out, (b + 1) * _BLOCK_SIZE)):
                _draw_counts(&stream, tinv, n, counts)
                pout[r] = _order_statistic(kind, counts, pval, lo, hi, gamma)
                memset(counts, 0, n_values * sizeof(int64_t))
            streams.states[b] = stream
        _free_copy(tinv, pinv)
        free(counts)
    if failed:
        raise MemoryError("bootstrap: could not allocate a histogram per thread")


def sample_order(int kind, const int64_t[::1] counts, const double[::1] values,
                 Py_ssize_t lo, Py_ssize_t hi, double gamma):
    """The statistic of the sample itself, given the counts of its distinct values."""
    return _order_statistic(kind, &counts[0], &values[0], lo, hi, gamma)


def jackknife_order(int kind, const double[::1] sorted_x, const int64_t[::1] starts,
                    Py_ssize_t lo, Py_ssize_t hi, double gamma, double[::1] out):
    """out[u] = the statistic of sorted_x without one copy of its u-th distinct value,
    which first appears at sorted_x[starts[u]]; lo, hi and gamma are those of a
    sample of n - 1 observations.  O(n) in all (three window sums for TRIMMED_MEAN).
    """
    cdef Py_ssize_t n = sorted_x.shape[0], u, p, j
    cdef double a, b, s_keep_low = 0, s_keep_high = 0, s_wide = 0
    with nogil:
        if kind == TRIMMED_MEAN:
            # Without s[p], rank j of the rest holds s[j] for j < p, else s[j + 1].
            for j in range(lo, hi):
                s_keep_low += sorted_x[j]          # p >= hi: window s[lo:hi]
                s_keep_high += sorted_x[j + 1]     # p < lo: window s[lo+1:hi+1]
            s_wide = s_keep_low + sorted_x[hi]     # otherwise s[lo:hi+1] without s[p]
        for u in range(starts.shape[0]):
            p = starts[u]
            if kind == TRIMMED_MEAN:
                if p >= hi:
                    a = s_keep_low
                elif p < lo:
                    a = s_keep_high
                else:
                    a = s_wide - sorted_x[p]
                out[u] = a / (hi - lo)
                continue
            a = sorted_x[lo] if lo < p else sorted_x[lo + 1]
            b = sorted_x[hi] if hi < p else sorted_x[hi + 1]
            out[u] = (a + b) / 2 if kind == MEDIAN else _lerp(a, b, gamma)


# ---------------------------------------------------------------------------
# Callable statistics: the indices themselves, a batch of resamples at a time.

def fill_indices(BlockStreams streams, Py_ssize_t r0, const int64_t[::1] sizes,
                 int64_t[:, ::1] out, int n_threads):
    """Row i of out = the indices of resample r0 + i: sizes[0] indices into sample 0,
    then sizes[1] into sample 1, ... (len(out[i]) == sum(sizes)).

    Resamples must be asked for in order, each once: a block's stream moves on.
    """
    cdef Py_ssize_t r1 = r0 + out.shape[0]
    cdef Py_ssize_t b0 = r0 // _BLOCK_SIZE
    cdef Py_ssize_t b1 = (r1 + _BLOCK_SIZE - 1) // _BLOCK_SIZE
    cdef Py_ssize_t b, r, k, col
    cdef Py_ssize_t n_samples = sizes.shape[0]
    cdef fk_pcg64 stream
    if out.shape[0] == 0:
        return
    if b1 > streams.n_blocks:
        raise ValueError("fewer streams than blocks")
    for b in prange(b0, b1, nogil=True, schedule="dynamic", num_threads=n_threads):
        stream = streams.start(b)       # a thread's own copy: see BlockStreams
        for r in range(max(r0, b * _BLOCK_SIZE), min(r1, (b + 1) * _BLOCK_SIZE)):
            col = 0
            for k in range(n_samples):
                fk_pcg64_integers(&stream, sizes[k], sizes[k], <uint64_t *>&out[r - r0, col])
                col = col + sizes[k]
        streams.states[b] = stream
