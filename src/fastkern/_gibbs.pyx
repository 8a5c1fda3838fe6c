"""nogil Gibbs sampler kernels: chains in parallel, in rounds (Ctrl-C stops them).

Validation, seeding and output allocation live in gibbs.py; this module assumes
valid input.  Every draw goes through NumPy's C distributions on a bitgen_t over
the chain's own PCG64 stream, derived in C from its spawn key and identical to
NumPy's PCG64 bitgen_t, in the order gibbs.py documents, so that a plain NumPy
loop with the chain's documented Generator reproduces each chain.
"""
import numpy as np

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, exp, log, sqrt
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from fastkern._rounds cimport Rounds
from numpy.random.c_distributions cimport (random_poisson, random_standard_gamma,
                                           random_standard_normal, random_standard_uniform)

cdef extern from "common/fk_seedseq.h" nogil:
    ctypedef struct fk_pcg64:
        uint64_t inc_lo
    ctypedef struct fk_seedseq_root:
        pass
    int fk_seedseq_root_init(fk_seedseq_root *r, const uint32_t *words, size_t n_words,
                             size_t pool_size)
    void fk_seedseq_pcg64(const fk_seedseq_root *r, uint64_t i, fk_pcg64 *g)
    fk_pcg64 *fk_seedseq_lazy(const fk_seedseq_root *r, fk_pcg64 *table, uint64_t first,
                              size_t u)
    uint64_t fk_pcg64_next64(fk_pcg64 *g)
    uint32_t fk_pcg64_next32(fk_pcg64 *g)

# numpy.random.Generator.poisson's upper limit on lam (POISSON_LAM_MAX in
# _common.pyx); random_poisson itself does not check it.
cdef double POISSON_LAM_MAX = <double>(0x7fffffffffffffff) - sqrt(<double>0x7fffffffffffffff) * 10


# ---------------------------------------------------------------------------
# The chains' streams: chain c of a call draws from the PCG64 of spawn key
# root.spawn_key + (first + c,) (see _seeding.py), derived in C when the chain
# starts, and through a bitgen_t that is NumPy's PCG64 bitgen_t draw for draw.

cdef uint64_t _next_uint64(void *st) noexcept nogil:
    return fk_pcg64_next64(<fk_pcg64 *>st)


cdef uint32_t _next_uint32(void *st) noexcept nogil:
    return fk_pcg64_next32(<fk_pcg64 *>st)


cdef double _next_double(void *st) noexcept nogil:
    return <double>(fk_pcg64_next64(<fk_pcg64 *>st) >> 11) * (1.0 / 9007199254740992.0)


cdef inline bitgen_t _bitgen(fk_pcg64 *g) noexcept nogil:
    cdef bitgen_t rng
    rng.state = g
    rng.next_uint64 = _next_uint64
    rng.next_uint32 = _next_uint32
    rng.next_double = _next_double
    rng.next_raw = _next_uint64
    return rng


cdef class _Streams:
    """The streams of chains first..first+n-1, each derived the first time it is
    used (fk_seedseq_lazy).  A chain's work draws from a copy of its stream on
    the thread's stack, stored back when done: the streams lie side by side, and
    updating a shared cache line at every draw would slow the threads down."""
    cdef fk_seedseq_root root
    cdef fk_pcg64 *table     # zeroed: not derived yet
    cdef uint64_t first

    def __cinit__(self, const uint32_t[::1] root_words, Py_ssize_t pool_size,
                  uint64_t first, Py_ssize_t n):
        if fk_seedseq_root_init(&self.root, &root_words[0], root_words.shape[0], pool_size):
            raise MemoryError()
        self.first = first
        self.table = <fk_pcg64 *>calloc(max(n, 1), sizeof(fk_pcg64))
        if self.table == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.table)


def _chain_raw(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t chain,
               Py_ssize_t count):
    """The first ``count`` 64-bit outputs of a chain's stream, as its PCG64's
    ``random_raw(count)``.  For tests."""
    cdef _Streams streams = _Streams(root_words, pool_size, chain, 1)
    cdef fk_pcg64 stream = fk_seedseq_lazy(&streams.root, streams.table, streams.first, 0)[0]
    cdef uint64_t[::1] out = np.empty(count, dtype=np.uint64)
    cdef Py_ssize_t i
    for i in range(count):
        out[i] = fk_pcg64_next64(&stream)
    return np.asarray(out)


def _chain_draws(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t chain,
                 Py_ssize_t count):
    """Draws through a chain's bitgen_t: (uniform, normal, gamma(2.5), poisson(3.5),
    32-bit, 64-bit >> 11), ``count`` times in turn, shape (count, 6), as the same
    calls on ``Generator(PCG64(...))`` give them (one 32-bit draw a time, so that
    half of them take the spare half of an earlier output).  For tests."""
    cdef _Streams streams = _Streams(root_words, pool_size, chain, 1)
    cdef fk_pcg64 stream = fk_seedseq_lazy(&streams.root, streams.table, streams.first, 0)[0]
    cdef bitgen_t rng = _bitgen(&stream)
    cdef double[:, ::1] out = np.empty((count, 6))
    cdef Py_ssize_t i
    for i in range(count):
        out[i, 0] = random_standard_uniform(&rng)
        out[i, 1] = random_standard_normal(&rng)
        out[i, 2] = random_standard_gamma(&rng, 2.5)
        out[i, 3] = random_poisson(&rng, 3.5)
        out[i, 4] = rng.next_uint32(rng.state)
        out[i, 5] = <double>(rng.next_uint64(rng.state) >> 11)
    return np.asarray(out)


# ---------------------------------------------------------------------------
# Units of work: a chain's steps (sweeps) are cut into blocks of per_unit, and
# unit u is block u // chains of chain u % chains, blocks first.  A round (see
# _rounds.pyx) of units lo..hi-1 touches chains (lo + k) % chains for k below
# min(chains, hi - lo), each once, and takes each through its blocks in the round
# in order; chains run in parallel.  So Ctrl-C stops a call however many chains
# there are and however long they run, and the grouping never changes a chain.

cdef Py_ssize_t _per_unit(Py_ssize_t chains, Py_ssize_t total, Py_ssize_t wanted) except -1:
    """Steps per unit: wanted, or more where chains * total is so large that the
    units would not fit in Py_ssize_t (calls that would run for centuries)."""
    return max(wanted, 1, -(-(<object>chains) * total // 2**62))


cdef Py_ssize_t _n_units(Py_ssize_t chains, Py_ssize_t total, Py_ssize_t per_unit):
    return chains * (total // per_unit + (total % per_unit != 0))


cdef inline Py_ssize_t _span(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k, Py_ssize_t chains,
                             Py_ssize_t per_unit, Py_ssize_t total, Py_ssize_t *first,
                             Py_ssize_t *stop) noexcept nogil:
    """The k-th chain touched by the round of units lo..hi-1; its steps in the
    round are first..stop-1 (of total)."""
    cdef Py_ssize_t c = (lo + k) % chains
    cdef Py_ssize_t j0 = (lo - c + chains - 1) // chains     # its blocks j0..j1-1
    cdef Py_ssize_t j1 = (hi - c + chains - 1) // chains
    first[0] = j0 * per_unit
    stop[0] = total if j1 > (total - 1) // per_unit else j1 * per_unit
    return c


# ---------------------------------------------------------------------------
# The bivariate sampler: x | y ~ Gamma(3, rate y^2 + 4),
#                        y | x ~ Normal(1 / (1 + x), variance 1 / (2 (1 + x)))

cdef inline void _bivariate_step(bitgen_t *rng, double *x, double *y) noexcept nogil:
    x[0] = random_standard_gamma(rng, 3.0) / (y[0] * y[0] + 4.0)
    y[0] = 1.0 / (1.0 + x[0]) + random_standard_normal(rng) / sqrt(2.0 * (1.0 + x[0]))


cdef void _bivariate_steps(bitgen_t *rng, double *state, double[:, ::1] out, Py_ssize_t thin,
                           Py_ssize_t burn, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    """Steps first..stop-1 of a chain (burn-in steps, then thin steps per draw)
    from state (x, y), which is updated; draw i is out[i]."""
    cdef double x = state[0], y = state[1]
    cdef Py_ssize_t step = first, phase, i
    while step < stop and step < burn:
        _bivariate_step(rng, &x, &y)
        step += 1
    if step < stop:
        i = (step - burn) // thin
        phase = (step - burn) % thin
        while step < stop:
            _bivariate_step(rng, &x, &y)
            step += 1
            phase += 1
            if phase == thin:
                out[i, 0] = x
                out[i, 1] = y
                i += 1
                phase = 0
    state[0] = x
    state[1] = y


cdef void _bivariate_unit(_Streams streams, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k,
                          Py_ssize_t per_unit, Py_ssize_t total, double[:, ::1] state,
                          double[:, :, ::1] out, Py_ssize_t thin,
                          Py_ssize_t burn) noexcept nogil:
    """The steps of the k-th chain touched by a round (see _span), on a copy of
    its stream."""
    cdef Py_ssize_t first, stop
    cdef Py_ssize_t c = _span(lo, hi, k, out.shape[0], per_unit, total, &first, &stop)
    cdef fk_pcg64 stream = fk_seedseq_lazy(&streams.root, streams.table, streams.first, c)[0]
    cdef bitgen_t rng = _bitgen(&stream)
    _bivariate_steps(&rng, &state[c, 0], out[c], thin, burn, first, stop)
    streams.table[c] = stream


def bivariate(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first_chain,
              double[:, :, ::1] out, Py_ssize_t thin, Py_ssize_t burn, int n_threads):
    """Fill out[c] (shape (n, 2)) with chain c, that is chain first_chain + c of the
    root whose words and pool size are given (see _seeding.root_words), in rounds
    of units of 1024 steps of one chain (see _span)."""
    cdef Py_ssize_t k, lo, hi, touched, chains = out.shape[0]
    cdef double[:, ::1] state = np.zeros((chains, 2), dtype=np.float64)
    cdef _Streams streams = _Streams(root_words, pool_size, first_chain, chains)
    # Steps per chain, within Py_ssize_t: gibbs.py checks burn + n * thin.
    cdef Py_ssize_t total = burn + out.shape[1] * thin
    cdef Py_ssize_t per_unit = _per_unit(chains, total, 1024)
    cdef Rounds rounds = Rounds(_n_units(chains, total, per_unit), n_threads)
    while rounds.next():
        lo = rounds.start
        hi = rounds.stop
        touched = min(chains, hi - lo)
        for k in prange(touched, nogil=True, schedule="dynamic", chunksize=1,
                        num_threads=n_threads):
            _bivariate_unit(streams, lo, hi, k, per_unit, total, state, out, thin, burn)


# ---------------------------------------------------------------------------
# The switchpoint model: counts D[t] ~ Poisson(early) for t < s, Poisson(late)
# for t >= s, Gamma(alpha, beta) priors on both rates, s uniform on 0..T-1.

cdef struct switchpoint_state:
    Py_ssize_t s          # the switchpoint: index of the first late count
    double early, late    # the rates
    int64_t *counts       # (T,) the counts, missing ones imputed
    int64_t *cum          # (T + 1,) cum[k] = counts[0] + ... + counts[k - 1]
    double *weight        # (T,) scratch: the switchpoint's weights


cdef inline double _xlogy(int64_t k, double log_rate) noexcept nogil:
    # k * log(rate), with 0 * log(0) = 0: a rate that underflowed to 0 is
    # impossible for a segment with events and harmless for one without.
    return k * log_rate if k > 0 else 0.0


cdef inline void _cumulate(switchpoint_state *st, Py_ssize_t T) noexcept nogil:
    cdef Py_ssize_t t
    st.cum[0] = 0
    for t in range(T):
        st.cum[t + 1] = st.cum[t] + st.counts[t]


cdef int _switchpoint_sweep(bitgen_t *rng, switchpoint_state *st, Py_ssize_t T,
                            const int64_t *missing, Py_ssize_t m,
                            double alpha, double beta) noexcept nogil:
    """One sweep, in the order gibbs_switchpoint documents.  Returns 1 (and
    draws nothing) if a rate is beyond what a Poisson draw can impute from."""
    cdef Py_ssize_t k, t, last, s = st.s
    cdef double rate, log_early, log_late, top, w, total, u
    cdef int64_t n_events

    # 1. the missing counts, in increasing index order, from the current rates
    if m > 0:
        for k in range(m):
            t = missing[k]
            rate = st.early if t < s else st.late
            if not rate <= POISSON_LAM_MAX:
                return 1
            st.counts[t] = random_poisson(rng, rate)
        _cumulate(st, T)
    n_events = st.cum[T]

    # 2, 3. the rates, from their conjugate gamma conditionals
    st.early = random_standard_gamma(rng, alpha + <double>st.cum[s]) / (beta + <double>s)
    st.late = (random_standard_gamma(rng, alpha + <double>(n_events - st.cum[s]))
               / (beta + <double>(T - s)))

    # 4. the switchpoint, from its discrete conditional: log weights, their
    # cumulative sum, and the first index where it exceeds a uniform draw
    log_early = log(st.early)
    log_late = log(st.late)
    top = -INFINITY
    for k in range(T):
        w = (_xlogy(st.cum[k], log_early) + _xlogy(n_events - st.cum[k], log_late)
             - <double>k * st.early - <double>(T - k) * st.late)
        st.weight[k] = w
        if w > top:
            top = w
    total = 0.0
    last = s  # the current switchpoint always has a positive weight
    for k in range(T):
        w = exp(st.weight[k] - top)
        if w > 0.0:
            last = k
        total = total + w
        st.weight[k] = total
    u = random_standard_uniform(rng) * total
    st.s = last  # kept if u rounds up to the total
    for k in range(T):
        if st.weight[k] > u:
            st.s = k
            break
    return 0


cdef void _switchpoint_unit(_Streams streams, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k,
                            Py_ssize_t per_unit, Py_ssize_t total, const int64_t *observed,
                            Py_ssize_t T, const int64_t *missing, Py_ssize_t m,
                            double alpha, double beta, Py_ssize_t thin, Py_ssize_t burn,
                            int64_t *scratch, double *weight, int64_t[::1] chain_s,
                            double[:, ::1] rates, int64_t[:, ::1] imputed,
                            unsigned char[::1] stopped, int64_t[:, ::1] s_out,
                            double[:, ::1] early_out, double[:, ::1] late_out,
                            int64_t[:, :, ::1] missing_out) noexcept nogil:
    """The sweeps of the k-th chain touched by a round (see _span), from the
    chain's state (chain_s[c], rates[c] = (early, late), imputed[c]), which is
    updated; sample i, its state after burn + (i + 1) * thin sweeps, is row i of
    the chain's outputs.  scratch (2T + 1) and weight (T) are the thread's.  A
    chain that stops (see _switchpoint_sweep) is marked in stopped and left."""
    cdef Py_ssize_t first, stop, sweep, i, j, done
    cdef Py_ssize_t c = _span(lo, hi, k, chain_s.shape[0], per_unit, total, &first, &stop)
    cdef fk_pcg64 stream
    cdef bitgen_t rng
    cdef switchpoint_state st
    if stopped[c]:
        return
    stream = fk_seedseq_lazy(&streams.root, streams.table, streams.first, c)[0]
    rng = _bitgen(&stream)
    memcpy(scratch, observed, T * sizeof(int64_t))
    for j in range(m):
        scratch[missing[j]] = imputed[c, j]
    st.s = chain_s[c]
    st.early = rates[c, 0]
    st.late = rates[c, 1]
    st.counts = scratch
    st.cum = scratch + T
    st.weight = weight
    _cumulate(&st, T)
    for sweep in range(first, stop):
        if _switchpoint_sweep(&rng, &st, T, missing, m, alpha, beta):
            stopped[c] = 1
            return
        done = sweep + 1 - burn
        if done > 0 and done % thin == 0:
            i = done // thin - 1
            s_out[c, i] = st.s
            early_out[c, i] = st.early
            late_out[c, i] = st.late
            for j in range(m):
                missing_out[c, i, j] = st.counts[missing[j]]
    chain_s[c] = st.s
    rates[c, 0] = st.early
    rates[c, 1] = st.late
    for j in range(m):
        imputed[c, j] = st.counts[missing[j]]
    streams.table[c] = stream


def switchpoint(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first_chain,
                const int64_t[::1] counts, const int64_t[::1] missing,
                double alpha, double beta, Py_ssize_t thin, Py_ssize_t burn,
                int64_t[:, ::1] s_out, double[:, ::1] early_out, double[:, ::1] late_out,
                int64_t[:, :, ::1] missing_out, int n_threads):
    """Fill row c of the outputs with chain c, that is chain first_chain + c of the
    root whose words and pool size are given (see _seeding.root_words), in rounds
    of units of a few sweeps of one chain (see _span).

    counts (T,) holds the observed counts, any value at the missing indices.
    Returns the number of chains stopped early because a rate grew beyond what
    a Poisson draw can impute from (their rows are incomplete).
    """
    cdef Py_ssize_t chains = s_out.shape[0], T = counts.shape[0], m = missing.shape[0]
    cdef Py_ssize_t k, lo, hi, touched
    # Sweeps per chain, within Py_ssize_t: gibbs.py checks burn + n * thin.
    cdef Py_ssize_t total = burn + s_out.shape[1] * thin
    # a unit is about 2**14 terms of the weights' sums
    cdef Py_ssize_t per_unit = _per_unit(chains, total, 2**14 // (T + m))
    cdef const int64_t *p_missing = &missing[0] if m > 0 else NULL
    cdef int64_t[::1] chain_s = np.full(chains, T // 2, dtype=np.int64)
    cdef double[:, ::1] rates = np.full((chains, 2), alpha / beta)
    cdef int64_t[:, ::1] imputed = np.zeros((chains, m), dtype=np.int64)
    cdef unsigned char[::1] stopped = np.zeros(chains, dtype=np.uint8)
    cdef int64_t[:, ::1] scratch = np.empty((n_threads, 2 * T + 1), dtype=np.int64)
    cdef double[:, ::1] weight = np.empty((n_threads, T), dtype=np.float64)
    cdef _Streams streams = _Streams(root_words, pool_size, first_chain, chains)
    cdef Rounds rounds = Rounds(_n_units(chains, total, per_unit), n_threads)
    while rounds.next():
        lo = rounds.start
        hi = rounds.stop
        touched = min(chains, hi - lo)
        for k in prange(touched, nogil=True, schedule="dynamic", chunksize=1,
                        num_threads=n_threads):
            _switchpoint_unit(streams, lo, hi, k, per_unit, total, &counts[0], T, p_missing,
                              m, alpha, beta, thin, burn, &scratch[threadid(), 0],
                              &weight[threadid(), 0], chain_s, rates, imputed, stopped,
                              s_out, early_out, late_out, missing_out)
    return int(np.sum(stopped))
