"""nogil permutation-test kernels: the statistic of every permutation, block by
block, on several threads, without forming the permuted samples where the
statistic does not need them; and the permutations themselves, for a callable.

Validation, seeding, the exact test and the p-values live in
fastkern/resampling/permutation.py; this module assumes valid input.

The random stream, which a plain NumPy loop reproduces
------------------------------------------------------
Permutations are cut into the bootstrap's blocks (``BLOCK_SIZE``, with the same
streams: fastkern._bootstrap.BlockStreams), and a block's permutations are drawn
in order from its stream.  A block starts from the data in their given order and
each permutation continues from the one before it:

- "independent": the samples laid end to end, the largest last (the last of the
  largest), and Fisher-Yates steps i = 0 .. m-1, m = n - (the last one's size):
  step i swaps positions i and ``rng.integers(i, n)``.  The first m positions are
  then a uniform random choice, in random order, whatever the start.
- "pairings": every sample but the first (the only one, for one sample) in turn,
  each by a full Fisher-Yates shuffle, steps i = 0 .. n-2 as above.
- "samples": two samples (or x and -x for one): ``ceil(n / 64)`` 64-bit outputs
  (``random_raw``) per permutation, and pair i is swapped where bit i % 64 of
  output i // 64 is set; three or more: for each observation in turn, a
  Fisher-Yates shuffle of the samples (steps 0 .. K-2), from the given order.

The draws are made in C (csrc/permutation/fk_permute.h), as NumPy makes them.

Ctrl-C
------
Everything runs through fastkern._bootstrap._run_blocks, whose threads check for
an interrupt between stretches of permutations.
"""
from libc.math cimport INFINITY, NAN, copysign, sqrt
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from fastkern._bootstrap cimport (_BLOCK_SIZE, BlockStreams, _n_threads, _run_blocks,
                                  fk_pcg64)

cdef extern from "permutation/fk_permute.h" nogil:
    enum: FK_CHUNK
    void fk_shuffle_draws(fk_pcg64 *g, int64_t n, int64_t i0, Py_ssize_t m, int64_t *out)
    void fk_shuffle_words(fk_pcg64 *g, int64_t n, int64_t i0, Py_ssize_t m, uint32_t *w)
    int64_t fk_partner(uint32_t w, int64_t n, int64_t i)
    bint fk_draws_are_words(int64_t n, int64_t i0)
    void fk_sign_bits(fk_pcg64 *g, Py_ssize_t cnt, uint64_t *out)

# Statistic codes, shared with resampling/permutation.py.
cpdef enum Statistic:
    MEAN_DIFF = 0          # independent: mean(x) - mean(y)
    MEDIAN_DIFF = 1        # independent: median(x) - median(y)
    WELCH_T = 2            # independent: Welch's t
    PEARSONR = 3           # pairings: Pearson's r (of ranks: Spearman's rho)
    PAIRED_MEAN_DIFF = 4   # samples: mean(x) - mean(y) of pairs


cdef struct perm_job:
    int kind
    Py_ssize_t n           # positions (observations in all, or pairs)
    Py_ssize_t m           # Fisher-Yates steps per permutation
    Py_ssize_t na          # independent: the first sample of the layout's size (m)
    bint a_is_x            # independent: that sample is x (else y)
    const double *z        # independent: the layout; pairings: y; samples: x - y
    const double *w        # pairings: x (centred, like y)
    double total_s, total_q  # independent: the sums of z and of z * z
    double scale           # pairings: 1 / (|x| |y|)
    double *scratch        # per thread: stride doubles
    Py_ssize_t stride
    double *out


cdef inline void _swap_steps(fk_pcg64 *g, double *a, Py_ssize_t n, Py_ssize_t m,
                             const double *w, bint squares, double *s, double *q,
                             double *dot) noexcept nogil:
    """Fisher-Yates steps 0..m-1 on a[0:n]; s, q: the sums of the values that land
    in positions 0..m-1 and of their squares; dot: their sum times w[i].  Each sum
    on four chains, step i going to chain i % 4, added as (c0 + c1) + (c2 + c3):
    one chain would wait on its additions."""
    cdef uint32_t words[FK_CHUNK + 1]
    cdef int64_t js[FK_CHUNK]
    cdef Py_ssize_t i = 0, c
    cdef double s4[4]
    cdef double q4[4]
    memset(s4, 0, sizeof(s4))
    memset(q4, 0, sizeof(q4))
    while i < m:
        c = min(<Py_ssize_t>FK_CHUNK, m - i)
        if fk_draws_are_words(n, i):
            # the partners from the accepted words, as the steps go
            fk_shuffle_words(g, n, i, c, words)
            _steps(a, words, n, i, c, w, squares, s4, q4)
        else:
            fk_shuffle_draws(g, n, i, c, js)
            _steps(a, js, n, i, c, w, squares, s4, q4)
        i += c
    s[0] = (s4[0] + s4[1]) + (s4[2] + s4[3])
    q[0] = (q4[0] + q4[1]) + (q4[2] + q4[3])
    dot[0] = s[0]


# A chunk's draws: the words steps accept (fk_shuffle_words), or their partners.
ctypedef fused draws_t:
    uint32_t
    int64_t


cdef inline int64_t _partner(const draws_t *d, Py_ssize_t k, int64_t n,
                             int64_t i) noexcept nogil:
    """The partner of step i (draw k of its chunk)."""
    if draws_t is uint32_t:
        return fk_partner(d[k], n, i)
    else:
        return d[k]


cdef inline void _steps(double *a, const draws_t *d, Py_ssize_t n, Py_ssize_t i,
                        Py_ssize_t c, const double *w, bint squares, double *s4,
                        double *q4) noexcept nogil:
    if w != NULL:
        _steps_dot(a, d, n, i, c, w, s4)
    elif squares:
        _steps_squares(a, d, n, i, c, s4, q4)
    else:
        _steps_sum(a, d, n, i, c, s4)


# The steps i..i+c-1 of a chunk (i a multiple of 4, as FK_CHUNK is), draws d:
# swap, then add the value that lands in position i + k to chain k % 4.
cdef inline void _steps_sum(double *a, const draws_t *d, Py_ssize_t n, Py_ssize_t i,
                            Py_ssize_t c, double *s4) noexcept nogil:
    cdef Py_ssize_t k
    cdef int64_t j
    cdef double t, s0 = s4[0], s1 = s4[1], s2 = s4[2], s3 = s4[3]
    cdef double *p = a + i
    for k in range(0, c - 3, 4):
        j = _partner(d, k, n, i + k); t = a[j]; a[j] = p[k]; p[k] = t; s0 += t
        j = _partner(d, k + 1, n, i + k + 1); t = a[j]; a[j] = p[k + 1]; p[k + 1] = t; s1 += t
        j = _partner(d, k + 2, n, i + k + 2); t = a[j]; a[j] = p[k + 2]; p[k + 2] = t; s2 += t
        j = _partner(d, k + 3, n, i + k + 3); t = a[j]; a[j] = p[k + 3]; p[k + 3] = t; s3 += t
    for k in range(c - c % 4, c):
        j = _partner(d, k, n, i + k); t = a[j]; a[j] = p[k]; p[k] = t
        if k % 4 == 0:
            s0 += t
        elif k % 4 == 1:
            s1 += t
        else:
            s2 += t
    s4[0] = s0
    s4[1] = s1
    s4[2] = s2
    s4[3] = s3


cdef inline void _steps_squares(double *a, const draws_t *d, Py_ssize_t n, Py_ssize_t i,
                                Py_ssize_t c, double *s4, double *q4) noexcept nogil:
    cdef Py_ssize_t k
    cdef int64_t j
    cdef double t
    cdef double *p = a + i
    for k in range(c):
        j = _partner(d, k, n, i + k); t = a[j]; a[j] = p[k]; p[k] = t
        s4[k & 3] += t
        q4[k & 3] += t * t


cdef inline void _steps_dot(double *a, const draws_t *d, Py_ssize_t n, Py_ssize_t i,
                            Py_ssize_t c, const double *w, double *s4) noexcept nogil:
    cdef Py_ssize_t k
    cdef int64_t j
    cdef double t, s0 = s4[0], s1 = s4[1], s2 = s4[2], s3 = s4[3]
    cdef double *p = a + i
    cdef const double *v = w + i
    for k in range(0, c - 3, 4):
        j = _partner(d, k, n, i + k); t = a[j]; a[j] = p[k]; p[k] = t; s0 += v[k] * t
        j = _partner(d, k + 1, n, i + k + 1); t = a[j]; a[j] = p[k + 1]; p[k + 1] = t
        s1 += v[k + 1] * t
        j = _partner(d, k + 2, n, i + k + 2); t = a[j]; a[j] = p[k + 2]; p[k + 2] = t
        s2 += v[k + 2] * t
        j = _partner(d, k + 3, n, i + k + 3); t = a[j]; a[j] = p[k + 3]; p[k + 3] = t
        s3 += v[k + 3] * t
    for k in range(c - c % 4, c):
        j = _partner(d, k, n, i + k); t = a[j]; a[j] = p[k]; p[k] = t
        if k % 4 == 0:
            s0 += v[k] * t
        elif k % 4 == 1:
            s1 += v[k] * t
        else:
            s2 += v[k] * t
    s4[0] = s0
    s4[1] = s1
    s4[2] = s2
    s4[3] = s3


cdef inline double _select(double *v, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """The k-th smallest of v[0:n] (v is reordered): quickselect."""
    cdef Py_ssize_t lo = 0, hi = n - 1, i, j
    cdef double pivot, t
    while lo < hi:
        pivot = v[lo + (hi - lo) // 2]
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                t = v[i]
                v[i] = v[j]
                v[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return v[k]
    return v[k]


cdef inline double _median(double *v, Py_ssize_t n) noexcept nogil:
    """np.median of v[0:n] (v is reordered)."""
    cdef Py_ssize_t k = (n - 1) // 2, i
    cdef double lo = _select(v, n, k), hi
    if n % 2:
        return lo
    hi = v[k + 1]
    for i in range(k + 2, n):       # the smallest above rank k
        hi = min(hi, v[i])
    return (lo + hi) / 2


cdef double _signed_sum(fk_pcg64 *g, const double *d, Py_ssize_t n,
                        uint64_t *bits) noexcept nogil:
    """The sum of d[i] * (-1 if bit i of the stream's outputs is set else 1), bit i
    being bit i % 64 of output i // 64; on four chains (i % 4), added as
    (c0 + c1) + (c2 + c3)."""
    cdef double c0 = 0, c1 = 0, c2 = 0, c3 = 0
    cdef Py_ssize_t done = 0, words, q, k, base, cnt
    cdef uint64_t b
    cdef const double *v
    while done < n:
        words = min(<Py_ssize_t>FK_CHUNK, (n - done + 63) // 64)
        fk_sign_bits(g, words, bits)
        for q in range(words):
            base = done + q * 64
            cnt = min(<Py_ssize_t>64, n - base)
            b = bits[q]
            v = d + base
            for k in range(0, cnt - 3, 4):
                c0 += v[k] * (1.0 - 2.0 * <double>((b >> k) & 1))
                c1 += v[k + 1] * (1.0 - 2.0 * <double>((b >> (k + 1)) & 1))
                c2 += v[k + 2] * (1.0 - 2.0 * <double>((b >> (k + 2)) & 1))
                c3 += v[k + 3] * (1.0 - 2.0 * <double>((b >> (k + 3)) & 1))
            for k in range(cnt - cnt % 4, cnt):
                if k % 4 == 0:
                    c0 += v[k] * (1.0 - 2.0 * <double>((b >> k) & 1))
                elif k % 4 == 1:
                    c1 += v[k] * (1.0 - 2.0 * <double>((b >> k) & 1))
                else:
                    c2 += v[k] * (1.0 - 2.0 * <double>((b >> k) & 1))
        done += words * 64
    return (c0 + c1) + (c2 + c3)


cdef double _mean_diff_of(double sa, double sb, Py_ssize_t na, Py_ssize_t nb,
                          bint a_is_x) noexcept nogil:
    if a_is_x:
        return sa / na - sb / nb
    return sb / nb - sa / na


cdef double _welch_of(double sa, double qa, double sb, double qb, Py_ssize_t na,
                      Py_ssize_t nb, bint a_is_x) noexcept nogil:
    """Welch's t of x and y from the sums of the two samples (centred values)."""
    cdef double va = max(0.0, (qa - sa * sa / na) / (na - 1))
    cdef double vb = max(0.0, (qb - sb * sb / nb) / (nb - 1))
    cdef double den = sqrt(va / na + vb / nb)
    cdef double diff = sa / na - sb / nb
    if not a_is_x:
        diff = -diff
    if den == 0:                 # as scipy: NaN for 0 / 0, else an infinity
        return NAN if diff == 0 else copysign(INFINITY, diff)
    return diff / den


cdef void _permutations(void *p, fk_pcg64 *g, int thread, Py_ssize_t first,
                        Py_ssize_t stop) noexcept nogil:
    cdef perm_job *job = <perm_job *>p
    cdef double *a = job.scratch + thread * job.stride
    cdef double *v
    cdef Py_ssize_t r, i, n = job.n, na = job.na, nb = job.n - job.na
    cdef double s, q, dot, r_val
    cdef uint64_t bits[FK_CHUNK]
    cdef Py_ssize_t done, cnt, k
    for r in range(first, stop):
        if job.kind == PAIRED_MEAN_DIFF:
            # no state: fresh bits for every permutation
            job.out[r] = _signed_sum(g, job.z, n, bits) / n
            continue
        if r % _BLOCK_SIZE == 0:
            memcpy(a, job.z, n * sizeof(double))          # a block starts in order
        if job.kind == PEARSONR:
            _swap_steps(g, a, n, job.m, job.w, False, &s, &q, &dot)
            dot += job.w[n - 1] * a[n - 1]
            r_val = dot * job.scale
            job.out[r] = min(1.0, max(-1.0, r_val))
        elif job.kind == MEDIAN_DIFF:
            _swap_steps(g, a, n, job.m, NULL, False, &s, &q, &dot)
            v = a + n
            memcpy(v, a, n * sizeof(double))
            s = _median(v, na)
            q = _median(v + na, nb)
            job.out[r] = s - q if job.a_is_x else q - s
        elif job.kind == WELCH_T:
            _swap_steps(g, a, n, job.m, NULL, True, &s, &q, &dot)
            job.out[r] = _welch_of(s, q, job.total_s - s, job.total_q - q, na, nb,
                                   job.a_is_x)
        else:
            _swap_steps(g, a, n, job.m, NULL, False, &s, &q, &dot)
            job.out[r] = _mean_diff_of(s, job.total_s - s, na, nb, job.a_is_x)


#: The most samples of a "samples" test (a permutation of them per observation
#: is drawn on the stack).
MAX_SAMPLES_PERMUTED = FK_CHUNK


def _shuffle_draws(BlockStreams streams, Py_ssize_t n, Py_ssize_t i0, Py_ssize_t m):
    """The partners of Fisher-Yates steps i0..i0+m-1 over n positions, drawn from
    block 0's stream (for tests: compare with Generator.integers)."""
    cdef int64_t js[FK_CHUNK]
    cdef fk_pcg64 g = streams.start(0)
    out = []
    while m > 0:
        c = min(<Py_ssize_t>FK_CHUNK, m)
        fk_shuffle_draws(&g, n, i0, c, js)
        out += [js[k] for k in range(c)]
        i0 += c
        m -= c
    return out


def permutation_statistics(BlockStreams streams, int kind, const double[::1] z,
                           const double[::1] w, Py_ssize_t na, bint a_is_x,
                           double scale, double[::1] out, int n_threads):
    """out[r] = the statistic of permutation r, for r < len(out), block-aligned at
    the streams' first block.

    MEAN_DIFF, MEDIAN_DIFF, WELCH_T: z is the two samples end to end, the larger
    last, the first of size na (x if a_is_x); WELCH_T wants them centred on their
    common mean.  PEARSONR: z is y and w is x, both centred, scale 1/(|x| |y|).
    PAIRED_MEAN_DIFF: z is x - y.  w is ignored but for PEARSONR (pass z).
    """
    cdef Py_ssize_t n_out = out.shape[0], n = z.shape[0], i
    cdef perm_job job
    if n_out == 0:
        return
    n_threads = _n_threads(0, n_out, n_threads)
    job.kind = kind
    job.n = n
    job.na = na
    job.a_is_x = a_is_x
    job.m = n - 1 if kind == PEARSONR else na
    job.z = &z[0]
    job.w = &w[0]
    job.scale = scale
    job.out = &out[0]
    job.total_s = job.total_q = 0
    for i in range(n):
        job.total_s += z[i]
        job.total_q += z[i] * z[i]
    job.stride = 2 * n if kind == MEDIAN_DIFF else n
    job.scratch = <double *>malloc(n_threads * job.stride * sizeof(double))
    if job.scratch == NULL:
        raise MemoryError("permutation_test: could not allocate a copy of the data "
                          "per thread")
    try:
        _run_blocks(streams, 0, n_out, n_threads, max(job.m, 1), _permutations, &job)
    finally:
        free(job.scratch)


# ---------------------------------------------------------------------------
# Callable statistics: the permutations themselves, a batch of blocks at a time.

cdef struct index_job:
    int type               # 0 independent, 1 pairings, 2 samples
    Py_ssize_t n           # independent: positions; else observations per sample
    Py_ssize_t k           # samples
    Py_ssize_t m           # independent: Fisher-Yates steps
    Py_ssize_t r0          # the permutation of out's first row
    Py_ssize_t row         # out's row length
    int64_t *out


cdef void _shuffle_indices(fk_pcg64 *g, int64_t *a, Py_ssize_t n,
                           Py_ssize_t m) noexcept nogil:
    """Fisher-Yates steps 0..m-1 on a[0:n]."""
    cdef int64_t js[FK_CHUNK]
    cdef Py_ssize_t i = 0, c, k, j
    cdef int64_t t
    while i < m:
        c = min(<Py_ssize_t>FK_CHUNK, m - i)
        fk_shuffle_draws(g, n, i, c, js)
        for k in range(c):
            j = js[k]
            t = a[j]
            a[j] = a[i + k]
            a[i + k] = t
        i += c


cdef void _index_permutations(void *p, fk_pcg64 *g, int thread, Py_ssize_t first,
                              Py_ssize_t stop) noexcept nogil:
    cdef index_job *job = <index_job *>p
    cdef Py_ssize_t r, i, s, o, n = job.n, K = job.k, words, done, cnt, q
    cdef int64_t *at
    cdef int64_t *prev
    cdef int64_t js[FK_CHUNK]
    cdef int64_t t
    cdef uint64_t bits[FK_CHUNK]
    for r in range(first, stop):
        at = job.out + (r - job.r0) * job.row
        if job.type == 2:
            if K == 2:
                done = 0
                while done < n:
                    words = min(<Py_ssize_t>FK_CHUNK, (n - done + 63) // 64)
                    fk_sign_bits(g, words, bits)
                    cnt = min(n - done, words * 64)
                    for q in range(cnt):
                        t = (bits[q >> 6] >> (q & 63)) & 1
                        at[done + q] = t          # sample 0 takes x or y
                        at[n + done + q] = 1 - t  # sample 1 the other
                    done += cnt
            else:
                for o in range(n):
                    for s in range(K):
                        js[s] = s
                    _shuffle_indices(g, js, K, K - 1)
                    for s in range(K):
                        at[s * n + o] = js[s]
            continue
        if r % _BLOCK_SIZE == 0:
            for i in range(job.row):             # a block starts in order
                at[i] = i if job.type == 0 else i % n
        else:
            prev = at - job.row
            memcpy(at, prev, job.row * sizeof(int64_t))
        if job.type == 0:
            _shuffle_indices(g, at, n, job.m)
        else:
            for s in range(1 if K > 1 else 0, K):
                _shuffle_indices(g, at + s * n, n, n - 1)


def fill_permutations(BlockStreams streams, Py_ssize_t r0, int type, Py_ssize_t n,
                      Py_ssize_t k, Py_ssize_t m, int64_t[:, ::1] out, int n_threads):
    """Row i of out = permutation r0 + i, for r0 a multiple of BLOCK_SIZE and whole
    blocks (the last may be cut short at the end of the test).

    type 0 ("independent"): row of n positions into the layout, after m steps.
    type 1 ("pairings"): k rows of n end to end, row s the order of sample s.
    type 2 ("samples"): k rows of n end to end, row s at observation o the sample
    whose value sample s takes there; k <= FK_CHUNK (256).
    """
    cdef Py_ssize_t r1 = r0 + out.shape[0]
    cdef index_job job
    if out.shape[0] == 0:
        return
    if r0 % _BLOCK_SIZE:
        raise ValueError("fill_permutations starts at a block")
    if type == 2 and k > FK_CHUNK:
        raise ValueError("fill_permutations: at most 256 samples for 'samples'")
    job.type = type
    job.n = n
    job.k = k
    job.m = m
    job.r0 = r0
    job.row = out.shape[1]
    job.out = &out[0, 0]
    _run_blocks(streams, r0, r1, _n_threads(r0, r1, n_threads), max(job.row, 1),
                _index_permutations, &job)
