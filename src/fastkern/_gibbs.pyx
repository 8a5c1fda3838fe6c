"""nogil Gibbs sampler kernels, one chain per parallel iteration.

Validation, seeding and output allocation live in gibbs.py; this module assumes
valid input.  Every draw goes through NumPy's C distributions on the chain's own
bit generator, in the order gibbs.py documents, so that a plain NumPy loop with
the same Generator reproduces each chain.
"""
import numpy as np

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.math cimport INFINITY, exp, log, sqrt
from libc.stdint cimport int64_t
from numpy.random cimport bitgen_t

from fastkern._rounds cimport Rounds
from numpy.random.c_distributions cimport (random_poisson, random_standard_gamma,
                                           random_standard_normal, random_standard_uniform)

# numpy.random.Generator.poisson's upper limit on lam (POISSON_LAM_MAX in
# _common.pyx); random_poisson itself does not check it.
cdef double POISSON_LAM_MAX = <double>(0x7fffffffffffffff) - sqrt(<double>0x7fffffffffffffff) * 10


cdef bitgen_t **_bitgens(list bit_generators) except NULL:
    """The bitgen_t of each BitGenerator, in a PyMem array the caller frees.

    The BitGenerators must outlive the array; nothing else may draw from them
    meanwhile (gibbs.py makes fresh ones, so their locks are not needed).
    """
    cdef Py_ssize_t c, n = len(bit_generators)
    cdef bitgen_t **states = <bitgen_t **>PyMem_Malloc(max(n, 1) * sizeof(bitgen_t *))
    if states == NULL:
        raise MemoryError()
    try:
        for c in range(n):
            states[c] = <bitgen_t *>PyCapsule_GetPointer(bit_generators[c].capsule,
                                                         "BitGenerator")
    except BaseException:
        PyMem_Free(states)
        raise
    return states


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


def bivariate(list bit_generators, double[:, :, ::1] out, Py_ssize_t thin, Py_ssize_t burn,
              int n_threads):
    """Fill out[c] (shape (n, 2)) with chain c, drawn from bit_generators[c].

    Every chain advances by the same steps in each round (see _rounds.pyx), its
    state kept between rounds, so Ctrl-C stops the call.
    """
    cdef Py_ssize_t c, chains = out.shape[0]
    cdef Py_ssize_t first, stop
    cdef double[:, ::1] state = np.zeros((chains, 2), dtype=np.float64)
    # Steps per chain, well within Py_ssize_t: gibbs.py checks burn + n * thin.
    cdef Rounds rounds = Rounds(burn + out.shape[1] * thin, 1024)
    cdef bitgen_t **states = _bitgens(bit_generators)
    try:
        while rounds.next():
            first = rounds.start
            stop = rounds.stop
            # Chains are few: a thread that finishes takes the next one.
            for c in prange(chains, nogil=True, schedule="dynamic", chunksize=1,
                            num_threads=n_threads):
                _bivariate_steps(states[c], &state[c, 0], out[c], thin, burn, first, stop)
    finally:
        PyMem_Free(states)


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


cdef int _switchpoint_chain(bitgen_t *rng, int64_t[::1] counts, const int64_t[::1] missing,
                            int64_t[::1] cum, double[::1] weight,
                            double alpha, double beta, Py_ssize_t thin, Py_ssize_t burn,
                            int64_t[::1] s_out, double[::1] early_out, double[::1] late_out,
                            int64_t[:, ::1] missing_out) noexcept nogil:
    """One chain; counts holds the observed counts and is overwritten at the
    missing indices; cum and weight are scratch.  Returns 1 if stopped early."""
    cdef Py_ssize_t T = counts.shape[0], m = missing.shape[0]
    cdef Py_ssize_t i, j, k
    cdef const int64_t *p_missing = &missing[0] if m > 0 else NULL
    cdef switchpoint_state st
    st.s = T // 2
    st.early = alpha / beta
    st.late = alpha / beta
    st.counts = &counts[0]
    st.cum = &cum[0]
    st.weight = &weight[0]
    _cumulate(&st, T)

    for j in range(burn):
        if _switchpoint_sweep(rng, &st, T, p_missing, m, alpha, beta):
            return 1
    for i in range(s_out.shape[0]):
        for j in range(thin):
            if _switchpoint_sweep(rng, &st, T, p_missing, m, alpha, beta):
                return 1
        s_out[i] = st.s
        early_out[i] = st.early
        late_out[i] = st.late
        for k in range(m):
            missing_out[i, k] = st.counts[p_missing[k]]
    return 0


def switchpoint(list bit_generators, const int64_t[::1] counts, const int64_t[::1] missing,
                double alpha, double beta, Py_ssize_t thin, Py_ssize_t burn,
                int64_t[:, ::1] s_out, double[:, ::1] early_out, double[:, ::1] late_out,
                int64_t[:, :, ::1] missing_out, int n_threads):
    """Fill row c of the outputs with chain c, drawn from bit_generators[c].

    counts (T,) holds the observed counts, any value at the missing indices.
    Returns the number of chains stopped early because a rate grew beyond what
    a Poisson draw can impute from (their rows are incomplete).
    """
    cdef Py_ssize_t c, chains = s_out.shape[0], T = counts.shape[0]
    cdef int64_t[:, ::1] work = np.tile(np.asarray(counts), (chains, 1))
    cdef int64_t[:, ::1] cum = np.empty((chains, T + 1), dtype=np.int64)
    cdef double[:, ::1] weight = np.empty((chains, T), dtype=np.float64)
    cdef int failed = 0
    cdef bitgen_t **states = _bitgens(bit_generators)
    try:
        for c in prange(chains, nogil=True, schedule="dynamic", chunksize=1,
                        num_threads=n_threads):
            failed += _switchpoint_chain(states[c], work[c], missing, cum[c], weight[c],
                                         alpha, beta, thin, burn, s_out[c], early_out[c],
                                         late_out[c], missing_out[c])
    finally:
        PyMem_Free(states)
    return failed
