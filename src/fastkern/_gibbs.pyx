"""nogil Gibbs sampler kernels: chains in parallel; Ctrl-C stops them.

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

from fastkern._interrupt cimport Interrupt
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
    """The streams of chains first..first+n-1: a chain's stream is derived in C
    when the chain starts, on the stack of the thread that runs it."""
    cdef fk_seedseq_root root
    cdef uint64_t first

    def __cinit__(self, const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first):
        if fk_seedseq_root_init(&self.root, &root_words[0], root_words.shape[0], pool_size):
            raise MemoryError()
        self.first = first

    cdef inline fk_pcg64 stream(self, Py_ssize_t c) noexcept nogil:
        """Chain c's stream, from its start."""
        cdef fk_pcg64 g
        fk_seedseq_pcg64(&self.root, self.first + c, &g)
        return g


def _chain_raw(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t chain,
               Py_ssize_t count):
    """The first ``count`` 64-bit outputs of a chain's stream, as its PCG64's
    ``random_raw(count)``.  For tests."""
    cdef _Streams streams = _Streams(root_words, pool_size, chain)
    cdef fk_pcg64 stream = streams.stream(0)
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
    cdef _Streams streams = _Streams(root_words, pool_size, chain)
    cdef fk_pcg64 stream = streams.stream(0)
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
# Chains run in parallel, a thread taking the next chain when it is done with
# one.  A chain runs in stretches of steps (sweeps), and between two stretches
# asks whether the call was interrupted (fastkern._interrupt): Ctrl-C stops a
# call however many chains there are and however long they run.

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


# Steps of the bivariate sampler between two checks for an interrupt.
cdef Py_ssize_t _BIVARIATE_STRETCH = 1024


cdef void _bivariate_chain(_Streams streams, Interrupt interrupt, Py_ssize_t c,
                           double[:, ::1] out, Py_ssize_t thin, Py_ssize_t burn) noexcept nogil:
    """Chain c into out (shape (n, 2)), unless the call is interrupted."""
    cdef double state[2]
    cdef Py_ssize_t first = 0, stop, total = burn + out.shape[0] * thin
    cdef fk_pcg64 stream = streams.stream(c)
    cdef bitgen_t rng = _bitgen(&stream)
    state[0] = 0.0
    state[1] = 0.0
    while first < total and not interrupt.stopped():
        stop = first + min(_BIVARIATE_STRETCH, total - first)
        _bivariate_steps(&rng, state, out, thin, burn, first, stop)
        first = stop


def bivariate(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first_chain,
              double[:, :, ::1] out, Py_ssize_t thin, Py_ssize_t burn, int n_threads):
    """Fill out[c] (shape (n, 2)) with chain c, that is chain first_chain + c of the
    root whose words and pool size are given (see _seeding.root_words).  Steps per
    chain, burn + n * thin, fit in Py_ssize_t: gibbs.py checks it."""
    cdef Py_ssize_t c, chains = out.shape[0]
    cdef _Streams streams = _Streams(root_words, pool_size, first_chain)
    cdef Interrupt interrupt = Interrupt()
    for c in prange(chains, nogil=True, schedule="dynamic", chunksize=1,
                    num_threads=n_threads):
        if not interrupt.stopped():
            _bivariate_chain(streams, interrupt, c, out[c], thin, burn)
    interrupt.check()


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


cdef int _switchpoint_chain(_Streams streams, Interrupt interrupt, Py_ssize_t c,
                            const int64_t *observed, Py_ssize_t T, const int64_t *missing,
                            Py_ssize_t m, double alpha, double beta, Py_ssize_t thin,
                            Py_ssize_t burn, int64_t *scratch, double *weight,
                            int64_t[::1] s_out, double[::1] early_out, double[::1] late_out,
                            int64_t[:, ::1] missing_out) noexcept nogil:
    """Chain c into its rows of the outputs: sample i is its state after
    burn + (i + 1) * thin sweeps.  scratch (2T + 1) and weight (T) are the
    thread's.  Returns 1 if the chain stopped (see _switchpoint_sweep), its rows
    incomplete; an interrupted chain is left as it is."""
    cdef Py_ssize_t sweep, i, j, done, total = burn + s_out.shape[0] * thin
    # a stretch is about 2**14 terms of the weights' sums
    cdef Py_ssize_t stretch = max(1, 2**14 // (T + m))
    cdef fk_pcg64 stream = streams.stream(c)
    cdef bitgen_t rng = _bitgen(&stream)
    cdef switchpoint_state st
    memcpy(scratch, observed, T * sizeof(int64_t))
    st.s = T // 2
    st.early = alpha / beta
    st.late = alpha / beta
    st.counts = scratch
    st.cum = scratch + T
    st.weight = weight
    _cumulate(&st, T)
    for sweep in range(total):
        if sweep % stretch == 0 and interrupt.stopped():
            return 0
        if _switchpoint_sweep(&rng, &st, T, missing, m, alpha, beta):
            return 1
        done = sweep + 1 - burn
        if done > 0 and done % thin == 0:
            i = done // thin - 1
            s_out[i] = st.s
            early_out[i] = st.early
            late_out[i] = st.late
            for j in range(m):
                missing_out[i, j] = st.counts[missing[j]]
    return 0


def switchpoint(const uint32_t[::1] root_words, Py_ssize_t pool_size, uint64_t first_chain,
                const int64_t[::1] counts, const int64_t[::1] missing,
                double alpha, double beta, Py_ssize_t thin, Py_ssize_t burn,
                int64_t[:, ::1] s_out, double[:, ::1] early_out, double[:, ::1] late_out,
                int64_t[:, :, ::1] missing_out, int n_threads):
    """Fill row c of the outputs with chain c, that is chain first_chain + c of the
    root whose words and pool size are given (see _seeding.root_words).  Sweeps
    per chain, burn + n * thin, fit in Py_ssize_t: gibbs.py checks it.

    counts (T,) holds the observed counts, any value at the missing indices.
    Returns the number of chains stopped early because a rate grew beyond what
    a Poisson draw can impute from (their rows are incomplete).
    """
    cdef Py_ssize_t c, chains = s_out.shape[0], T = counts.shape[0], m = missing.shape[0]
    cdef const int64_t *p_missing = &missing[0] if m > 0 else NULL
    cdef int64_t[:, ::1] scratch = np.empty((n_threads, 2 * T + 1), dtype=np.int64)
    cdef double[:, ::1] weight = np.empty((n_threads, T), dtype=np.float64)
    cdef _Streams streams = _Streams(root_words, pool_size, first_chain)
    cdef Interrupt interrupt = Interrupt()
    cdef Py_ssize_t failed = 0
    for c in prange(chains, nogil=True, schedule="dynamic", chunksize=1,
                    num_threads=n_threads):
        if not interrupt.stopped():
            failed += _switchpoint_chain(
                streams, interrupt, c, &counts[0], T, p_missing, m, alpha, beta, thin, burn,
                &scratch[threadid(), 0], &weight[threadid(), 0], s_out[c], early_out[c],
                late_out[c], missing_out[c])
    interrupt.check()
    return failed
