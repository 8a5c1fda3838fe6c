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
indices are drawn ``CHUNK`` at a time: this gives the same stream, because the
only state kept between draws (PCG64's spare 32-bit half) lives in the stream
itself.  The tests check all of this against NumPy.

Ctrl-C
------
Every kernel runs its resamples through _run_blocks, whose threads check for an
interrupt between stretches of resamples: a long call stops on Ctrl-C, frees
what it allocated, and the next call works.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport NAN, ldexp, sqrt
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

import numpy as np

cdef extern from "common/fk_seedseq.h" nogil:
    int fk_seedseq_root_init(fk_seedseq_root *r, const uint32_t *words, size_t n_words,
                             size_t pool_size)
    fk_pcg64 *fk_seedseq_lazy(const fk_seedseq_root *r, fk_pcg64 *table, uint64_t first,
                              size_t u)

cdef extern from "bootstrap/fk_resample.h" nogil:
    void fk_resample_sums_f64(fk_pcg64 *g, const double *x, Py_ssize_t n, int squares,
                              double *s, double *ss)
    void fk_resample_sums_f32(fk_pcg64 *g, const float *x, Py_ssize_t n, int squares,
                              double *s, double *ss)
    void fk_resample_counts(fk_pcg64 *g, const int64_t *inverse, Py_ssize_t n,
                            int64_t *counts)

ctypedef fused real_t:
    float
    double

cdef enum:
    # (_BLOCK_SIZE, the resamples per block, is in _bootstrap.pxd.)
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

    cdef fk_pcg64 start(self, Py_ssize_t b) noexcept nogil:
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
# Running resamples, block by block.
#
# The resamples r0..r1-1 of a call lie in blocks b0..b1-1; the threads take blocks
# as they come (a thread that the system holds back leaves the others to the
# rest), and each block's resamples are drawn in order from its own stream, so
# which thread runs a block changes nothing in the results.  Between stretches
# of a block's resamples every thread asks whether the call was interrupted
# (fastkern._interrupt): Ctrl-C stops a call within a stretch, however long a
# block is (a large sample).

cdef int _n_threads(Py_ssize_t r0, Py_ssize_t r1, int n_threads) noexcept:
    """Threads for resamples r0..r1-1: no more than their blocks."""
    cdef Py_ssize_t blocks = (r1 + _BLOCK_SIZE - 1) // _BLOCK_SIZE - r0 // _BLOCK_SIZE
    return <int>max(1, min(<Py_ssize_t>n_threads, blocks))


# Draws between two checks for an interrupt, at least (where a resample makes
# fewer): well under a millisecond, so that a check costs nothing in comparison.
cdef Py_ssize_t _STRETCH_DRAWS = 1 << 16


cdef void _run_block(BlockStreams streams, Interrupt interrupt, Py_ssize_t b, Py_ssize_t r0,
                     Py_ssize_t r1, Py_ssize_t stretch, resamples_fn fn, void *job,
                     int thread) noexcept nogil:
    """The resamples of block b that lie in r0..r1-1, `stretch` at a time, until
    the call is interrupted."""
    cdef Py_ssize_t r = max(r0, b * _BLOCK_SIZE), stop = min(r1, (b + 1) * _BLOCK_SIZE)
    cdef fk_pcg64 stream = streams.start(b)     # a thread's own copy: see BlockStreams
    while r < stop and not interrupt.stopped():
        fn(job, &stream, thread, r, min(stop, r + stretch))
        r = min(stop, r + stretch)
    streams.states[b] = stream


cdef int _run_blocks(BlockStreams streams, Py_ssize_t r0, Py_ssize_t r1, int n_threads,
                     Py_ssize_t draws, resamples_fn fn, void *job) except -1:
    """fn over resamples r0..r1-1 on n_threads threads (at most _n_threads(r0, r1,
    ...)), where a resample makes `draws` draws.  KeyboardInterrupt propagates;
    the caller frees job's buffers whatever happens."""
    cdef Py_ssize_t b, b0 = r0 // _BLOCK_SIZE, b1 = (r1 + _BLOCK_SIZE - 1) // _BLOCK_SIZE
    cdef Py_ssize_t stretch = max(1, _STRETCH_DRAWS // max(draws, 1))
    cdef Interrupt interrupt = Interrupt()
    if r1 <= r0:
        return 0
    if b1 > streams.n_blocks:
        raise ValueError("fewer streams than blocks")
    for b in prange(b0, b1, nogil=True, schedule="dynamic", chunksize=1,
                    num_threads=n_threads):
        _run_block(streams, interrupt, b, r0, r1, stretch, fn, job, threadid())
    interrupt.check()
    return 0


# Largest array that each thread copies for itself (_thread_copies): about one
# core's L2 cache.
cdef size_t _OWN_COPY_MAX_BYTES = 2 << 20


cdef const void **_thread_copies(const void *p, size_t nbytes, int n_threads) except NULL:
    """One copy of p per thread, when there are several threads and p fits in a
    core's cache; else p itself (and p too where a copy cannot be allocated: it
    only saves time).  Free with _free_thread_copies.

    On the 2-core machine, two threads gathering at random from one shared
    100,000-element array ran about 15% slower than each from its own copy, and
    the mean's 2-worker speed-up went from 1.4-1.7x to 1.9-2.0x with copies; for
    an 8 MB array the copies cost more than they saved.
    """
    cdef const void **copies = <const void **>malloc(n_threads * sizeof(void *))
    cdef void *q
    cdef int t
    if copies == NULL:
        raise MemoryError()
    for t in range(n_threads):
        copies[t] = p
        if n_threads > 1 and nbytes <= _OWN_COPY_MAX_BYTES:
            q = malloc(nbytes)
            if q != NULL:
                memcpy(q, p, nbytes)
                copies[t] = q
    return copies


cdef void _free_thread_copies(const void **copies, const void *p, int n_threads) noexcept:
    cdef int t
    if copies == NULL:
        return
    for t in range(n_threads):
        if copies[t] != p:
            free(<void *>copies[t])
    free(copies)


# ---------------------------------------------------------------------------
# Moment statistics: mean, var, std, mean_diff, pearsonr.  A resample is reduced
# to sums of its values as its indices are drawn.  bootstrap.py prepares the
# values: times 2**-e, a power of two that keeps every sum within range (exact,
# so nothing else changes), and, for var, std and pearsonr, less the sample mean,
# which keeps the sums of squares free of cancellation.  The statistic is then
# scaled back by 2**e.

cdef struct moments_job:
    int kind
    double ddof
    bint paired
    Py_ssize_t nx, ny        # observations of x and of y
    int ex, ey               # x and y are the sample's values times 2**-ex, 2**-ey
    const void **x           # per thread: the values (or the thread's copy of them)
    const void **y
    double *out


cdef struct moments_t:
    double nx, ny            # observations of x and of y
    double sx, sy            # sums of x and y
    double sxx, syy, sxy     # sums of squares and of products (var, std, pearsonr)
    bint const_x, const_y    # every x (y) in the resample equal (pearsonr)


cdef moments_job _moments_job(int kind, Py_ssize_t nx, Py_ssize_t ny, int ex, int ey,
                              double ddof, bint paired) noexcept:
    cdef moments_job job
    job.kind = kind
    job.nx = nx
    job.ny = ny
    job.ex = ex
    job.ey = ey
    job.ddof = ddof
    job.paired = paired
    job.x = job.y = NULL
    job.out = NULL
    return job


cdef inline double _finish_moments(const moments_job *job, const moments_t *m) noexcept nogil:
    """The statistic from a resample's (or a sample's) sums."""
    cdef int kind = job.kind
    cdef double v, vx, vy, r
    if kind == MEAN:
        return ldexp(m.sx / m.nx, job.ex)
    if kind == MEAN_DIFF:
        return ldexp(m.sx / m.nx, job.ex) - ldexp(m.sy / m.ny, job.ey)
    if kind == VAR or kind == STD:
        if m.nx - job.ddof <= 0:
            return NAN
        v = (m.sxx - m.sx * m.sx / m.nx) / (m.nx - job.ddof)
        v = max(v, 0.0)
        return ldexp(v, 2 * job.ex) if kind == VAR else ldexp(sqrt(v), job.ex)
    # PEARSONR: the same for any scale of x and y
    if m.const_x or m.const_y:
        return NAN
    vx = m.sxx - m.sx * m.sx / m.nx
    vy = m.syy - m.sy * m.sy / m.nx
    if vx <= 0 or vy <= 0:
        return NAN
    r = (m.sxy - m.sx * m.sy / m.nx) / (sqrt(vx) * sqrt(vy))
    return min(1.0, max(-1.0, r))


cdef void _draw_sums(fk_pcg64 *gen, const real_t *x, Py_ssize_t n, bint squares, double *s,
                     double *ss) noexcept nogil:
    """Sums of x[i] and x[i]**2 over n draws of i uniform in [0, n) (four chains of
    additions per chunk; see csrc/bootstrap/fk_resample.h)."""
    if real_t is double:
        fk_resample_sums_f64(gen, x, n, squares, s, ss)
    else:
        fk_resample_sums_f32(gen, x, n, squares, s, ss)


cdef void _draw_pair_sums(fk_pcg64 *gen, const real_t *x, const real_t *y, Py_ssize_t n,
                          bint products, moments_t *m) noexcept nogil:
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
                dx0 = x[idx[0]]
                dy0 = y[idx[0]]
            for k in range(cnt):
                dx = x[idx[k]]
                dy = y[idx[k]]
                c[0] += dx
                c[1] += dy
                c[2] += dx * dx
                c[3] += dy * dy
                c[4] += dx * dy
                m.const_x = m.const_x & (dx == dx0)
                m.const_y = m.const_y & (dy == dy0)
        else:
            for k in range(cnt):
                c[0] += x[idx[k]]
                c[1] += y[idx[k]]
        m.sx += c[0]
        m.sy += c[1]
        m.sxx += c[2]
        m.syy += c[3]
        m.sxy += c[4]
        done += cnt


cdef double _resample_moments(fk_pcg64 *gen, const moments_job *job, const real_t *x,
                              const real_t *y) noexcept nogil:
    """The statistic of one resample, drawn from gen."""
    cdef moments_t m
    cdef int kind = job.kind
    m.nx = job.nx
    m.ny = job.ny
    if kind == MEAN_DIFF and job.paired:
        _draw_pair_sums(gen, x, y, job.nx, False, &m)
    elif kind == PEARSONR:
        _draw_pair_sums(gen, x, y, job.nx, True, &m)
    else:
        _draw_sums(gen, x, job.nx, kind == VAR or kind == STD, &m.sx, &m.sxx)
        if kind == MEAN_DIFF:
            _draw_sums(gen, y, job.ny, False, &m.sy, &m.syy)
    return _finish_moments(job, &m)


cdef inline void _moment_resamples(moments_job *job, const real_t *x, const real_t *y,
                                   fk_pcg64 *gen, Py_ssize_t first,
                                   Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(first, stop):
        job.out[r] = _resample_moments(gen, job, x, y)


cdef void _moment_resamples_f64(void *p, fk_pcg64 *gen, int thread, Py_ssize_t first,
                                Py_ssize_t stop) noexcept nogil:
    cdef moments_job *job = <moments_job *>p
    _moment_resamples(job, <const double *>job.x[thread], <const double *>job.y[thread], gen,
                      first, stop)


cdef void _moment_resamples_f32(void *p, fk_pcg64 *gen, int thread, Py_ssize_t first,
                                Py_ssize_t stop) noexcept nogil:
    cdef moments_job *job = <moments_job *>p
    _moment_resamples(job, <const float *>job.x[thread], <const float *>job.y[thread], gen,
                      first, stop)


def resample_moments(BlockStreams streams, int kind, const real_t[::1] x,
                     const real_t[::1] y, int ex, int ey, double ddof, bint paired,
                     double[::1] out, int n_threads):
    """out[r] = the statistic of resample r, for r < len(out) (moment statistics),
    where x and y are the sample's values times 2**-ex and 2**-ey, centred for
    VAR, STD and PEARSONR (see bootstrap._MomentStatistic).

    y is ignored (pass x) unless kind is MEAN_DIFF or PEARSONR; for PEARSONR and a
    paired MEAN_DIFF, len(y) == len(x).
    """
    cdef Py_ssize_t n_out = out.shape[0]
    cdef moments_job job = _moments_job(kind, x.shape[0], y.shape[0], ex, ey, ddof, paired)
    cdef resamples_fn fn
    if n_out == 0:
        return
    if real_t is double:
        fn = _moment_resamples_f64
    else:
        fn = _moment_resamples_f32
    n_threads = _n_threads(0, n_out, n_threads)
    job.out = &out[0]
    try:
        job.x = _thread_copies(&x[0], x.shape[0] * sizeof(real_t), n_threads)
        job.y = job.x if &y[0] == &x[0] else \
            _thread_copies(&y[0], y.shape[0] * sizeof(real_t), n_threads)
        _run_blocks(streams, 0, n_out, n_threads,
                       job.nx + (job.ny if kind == MEAN_DIFF and not paired else 0), fn,
                       &job)
    finally:
        if job.y != job.x:
            _free_thread_copies(job.y, &y[0], n_threads)
        _free_thread_copies(job.x, &x[0], n_threads)


cdef void _totals(const moments_job *job, const real_t *x, const real_t *y,
                  moments_t *m) noexcept nogil:
    """The sums of moments_t over the whole sample (each observation once)."""
    cdef Py_ssize_t i
    cdef double dx, dy
    m.nx = job.nx
    m.ny = job.ny
    m.sx = m.sy = m.sxx = m.syy = m.sxy = 0
    m.const_x = m.const_y = True
    for i in range(job.nx):
        dx = x[i]
        m.sx += dx
        m.sxx += dx * dx
        m.const_x = m.const_x & (dx == x[0])
    if job.kind == MEAN_DIFF or job.kind == PEARSONR:
        for i in range(job.ny):
            dy = y[i]
            m.sy += dy
            m.syy += dy * dy
            m.const_y = m.const_y & (dy == y[0])
            if job.paired:
                m.sxy += x[i] * dy


def sample_moments(int kind, const real_t[::1] x, const real_t[::1] y, int ex, int ey,
                   double ddof, bint paired):
    """The statistic of the sample itself (moment statistics; x, y, ex and ey as
    for resample_moments)."""
    cdef moments_t m
    cdef moments_job job = _moments_job(kind, x.shape[0], y.shape[0], ex, ey, ddof, paired)
    with nogil:
        _totals(&job, &x[0], &y[0], &m)
    return _finish_moments(&job, &m)


def jackknife_moments(int kind, const real_t[::1] x, const real_t[::1] y, int ex, int ey,
                      double ddof, bint paired, double[::1] out_x, double[::1] out_y):
    """Leave-one-out statistics in O(n): out_x[i] leaves out x[i] (the pair i when
    paired); out_y[j], for an unpaired MEAN_DIFF only, leaves out y[j]."""
    cdef moments_t t, m
    cdef moments_job job = _moments_job(kind, x.shape[0], y.shape[0], ex, ey, ddof, paired)
    cdef Py_ssize_t i, nx = x.shape[0], ny = y.shape[0]
    cdef double dx, dy
    with nogil:
        _totals(&job, &x[0], &y[0], &t)
        t.const_x = t.const_y = False  # a leave-one-out constant sample gives v <= 0
        for i in range(nx):
            m = t
            dx = x[i]
            m.nx = nx - 1
            m.sx -= dx
            m.sxx -= dx * dx
            if paired and (kind == MEAN_DIFF or kind == PEARSONR):
                dy = y[i]
                m.ny = ny - 1
                m.sy -= dy
                m.syy -= dy * dy
                m.sxy -= dx * dy
            out_x[i] = _finish_moments(&job, &m)
        if kind == MEAN_DIFF and not paired:
            for i in range(ny):
                m = t
                m.ny = ny - 1
                m.sy -= y[i]
                out_y[i] = _finish_moments(&job, &m)


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


cdef struct order_job:
    int kind
    Py_ssize_t n, n_values, lo, hi
    double gamma
    const int64_t **inverse  # per thread: the ranks (or the thread's copy of them)
    const double *values
    int64_t *counts          # per thread: a histogram of n_values counts, zero between uses
    double *out


cdef void _order_resamples(void *p, fk_pcg64 *gen, int thread, Py_ssize_t first,
                           Py_ssize_t stop) noexcept nogil:
    cdef order_job *job = <order_job *>p
    cdef int64_t *counts = job.counts + thread * job.n_values
    cdef Py_ssize_t r
    for r in range(first, stop):
        _draw_counts(gen, job.inverse[thread], job.n, counts)
        job.out[r] = _order_statistic(job.kind, counts, job.values, job.lo, job.hi,
                                      job.gamma)
        memset(counts, 0, job.n_values * sizeof(int64_t))


def resample_order(BlockStreams streams, int kind, const int64_t[::1] inverse,
                   const double[::1] values, Py_ssize_t lo, Py_ssize_t hi, double gamma,
                   double[::1] out, int n_threads):
    """out[r] = the statistic of resample r (order statistics), where the sample is
    values[inverse] and lo, hi, gamma are as for _order_statistic."""
    cdef Py_ssize_t n_out = out.shape[0]
    cdef order_job job
    if n_out == 0:
        return
    n_threads = _n_threads(0, n_out, n_threads)
    job.kind = kind
    job.n = inverse.shape[0]
    job.n_values = values.shape[0]
    job.lo = lo
    job.hi = hi
    job.gamma = gamma
    job.values = &values[0]
    job.out = &out[0]
    job.inverse = NULL
    job.counts = <int64_t *>calloc(n_threads * job.n_values, sizeof(int64_t))
    if job.counts == NULL:
        raise MemoryError("bootstrap: could not allocate a histogram per thread")
    try:
        job.inverse = <const int64_t **>_thread_copies(&inverse[0], job.n * sizeof(int64_t),
                                                       n_threads)
        _run_blocks(streams, 0, n_out, n_threads, job.n, _order_resamples, &job)
    finally:
        _free_thread_copies(<const void **>job.inverse, &inverse[0], n_threads)
        free(job.counts)


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

cdef struct indices_job:
    const int64_t *sizes
    Py_ssize_t n_samples
    Py_ssize_t r0            # the resample of out's first row
    Py_ssize_t row           # out's row length, sum(sizes)
    int64_t *out


cdef void _index_resamples(void *p, fk_pcg64 *gen, int thread, Py_ssize_t first,
                           Py_ssize_t stop) noexcept nogil:
    cdef indices_job *job = <indices_job *>p
    cdef Py_ssize_t r, k
    cdef int64_t *at
    for r in range(first, stop):
        at = job.out + (r - job.r0) * job.row
        for k in range(job.n_samples):
            fk_pcg64_integers(gen, job.sizes[k], job.sizes[k], <uint64_t *>at)
            at += job.sizes[k]


def fill_indices(BlockStreams streams, Py_ssize_t r0, const int64_t[::1] sizes,
                 int64_t[:, ::1] out, int n_threads):
    """Row i of out = the indices of resample r0 + i: sizes[0] indices into sample 0,
    then sizes[1] into sample 1, ... (len(out[i]) == sum(sizes)).

    Resamples must be asked for in order, each once: a block's stream moves on.
    """
    cdef Py_ssize_t r1 = r0 + out.shape[0]
    cdef indices_job job
    if out.shape[0] == 0:
        return
    job.sizes = &sizes[0]
    job.n_samples = sizes.shape[0]
    job.r0 = r0
    job.row = out.shape[1]
    job.out = &out[0, 0]
    _run_blocks(streams, r0, r1, _n_threads(r0, r1, n_threads), job.row, _index_resamples,
                   &job)
