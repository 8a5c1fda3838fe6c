/* Correlation kernels for one instruction set (unit column step, and strided
 * output from rows split by phase), included by correlate2d_impl.h once per ISA
 * with these defined:
 *   FK_ISA        name suffix (base, avx2, avx512)
 *   FK_ISA_ATTR   function attributes: empty, or the target() that the ISA needs
 *   FK_ISA_BYTES  bytes per SIMD register (16, 32, 64)
 *   FK_ISA_V      registers per output row in a block
 * Each ISA gets its own vector width: a vector wider than the target's registers
 * would be split and spilled by the compiler.
 *
 * Every output is summed in one order, over kernel rows a and then columns b,
 * starting from zero, in every kernel below and in correlate_row and
 * correlate_row_phased.  Which kernel
 * computes an output depends on its column block alone, never on the row tiles,
 * so results do not depend on the number of threads.  Within a block, every
 * vector lane computes its output alike, wherever the block's vectors start (the
 * last one overlaps the one before it), so a block cut into pieces at least one
 * SIMD block wide gives the same results, bit for bit (fk_correlate2d_col_end). */

#define FK_ICAT_(a, b, c) a##_##b##_##c
#define FK_ICAT(a, b, c) FK_ICAT_(a, b, c)
#define FK_IFN(name) FK_ICAT(name, FK_SUFFIX, FK_ISA)

typedef FK_T FK_IFN(fk_vec) __attribute__((vector_size(FK_ISA_BYTES), aligned(sizeof(FK_T)),
                                           may_alias));

/* Keep a loaded vector in a register.  Without this the compiler folds the load
 * into each multiply-add that uses it, repeating the (unaligned) load once per
 * output row of the block. */
#if defined(__x86_64__)
#define FK_KEEP(x) __asm__("" : "+v"(x))
#elif defined(__i386__) && defined(__SSE2__)
#define FK_KEEP(x) __asm__("" : "+x"(x))
#elif defined(__aarch64__)
#define FK_KEEP(x) __asm__("" : "+w"(x))
#else
#define FK_KEEP(x) ((void)0)
#endif

/* One image row against the taps, for the block's output rows lo..hi (constants
 * once inlined): s[r][v] += row[b + v*VW] * k[b - (r - lo)*kc] over b, where k
 * is the tap row of output row lo. */
FK_ISA_ATTR __attribute__((always_inline))
static inline void FK_IFN(fk_pass)(const FK_T *FK_RESTRICT row, const FK_T *FK_RESTRICT k,
                                   ptrdiff_t kc, const int lo, const int hi,
                                   FK_IFN(fk_vec) *FK_RESTRICT s)
{
    typedef FK_IFN(fk_vec) vec;
    enum { VW = FK_ISA_BYTES / sizeof(FK_T), V = FK_ISA_V };
    for (ptrdiff_t b = 0; b < kc; ++b) {
        vec x[V];
        for (int v = 0; v < V; ++v) {
            x[v] = *(const vec *)(row + b + v * VW);
            FK_KEEP(x[v]);
        }
        for (int r = lo; r <= hi; ++r) {
            const vec kb = k[b - (r - lo) * kc] - (vec){0};   /* broadcast; x - 0 == x exactly */
            for (int v = 0; v < V; ++v) s[r * V + v] += x[v] * kb;
        }
    }
}

/* Four output rows dst[0..3], columns [0, n) with n >= V*VW:
 *   dst[r][j] = sum_{a, b} t[(r + a) * ld + j + b] * ker[a * kc + b].
 * Image row ir is loaded once per shift b and used by every output row whose
 * window holds it.  Rows t + (kr + 3 .. kr + 6) * ld, those the next block of four
 * reads first, are prefetched when fewer than `ahead` (rows readable from t).
 * The last column block overlaps the one before it. */
FK_ISA_ATTR
static void FK_IFN(fk_rows4)(const FK_T *FK_RESTRICT t, ptrdiff_t ld, ptrdiff_t ahead,
                             const FK_T *FK_RESTRICT ker, ptrdiff_t kr, ptrdiff_t kc,
                             ptrdiff_t n, FK_T *const *dst)
{
    typedef FK_IFN(fk_vec) vec;
    enum { VW = FK_ISA_BYTES / sizeof(FK_T), V = FK_ISA_V, W = V * VW };
    ptrdiff_t n_pf = ahead - (kr + 3);
    if (n_pf > 4) n_pf = 4;
    for (ptrdiff_t j0 = 0;; j0 += W) {
        if (j0 + W > n) j0 = n - W;
        for (ptrdiff_t q = 0; q < n_pf; ++q) {
            const char *p = (const char *)(t + (kr + 3 + q) * ld + j0);
            for (size_t c = 0; c < W * sizeof(FK_T); c += 64) __builtin_prefetch(p + c, 0, 2);
        }
        vec s[4 * V];
        for (int i = 0; i < 4 * V; ++i) s[i] = (vec){0};
        for (ptrdiff_t ir = 0; ir < kr + 3; ++ir) {
            const FK_T *row = t + ir * ld + j0;
            /* output rows lo..hi of the block have image row ir in their window,
             * output row r at tap row ir - r */
            const int lo = ir - kr + 1 > 0 ? (int)(ir - kr + 1) : 0;
            const int hi = ir < 3 ? (int)ir : 3;
            const FK_T *k = ker + (ir - lo) * kc;
            switch (lo * 4 + hi) {
            case 0: FK_IFN(fk_pass)(row, k, kc, 0, 0, s); break;
            case 1: FK_IFN(fk_pass)(row, k, kc, 0, 1, s); break;
            case 2: FK_IFN(fk_pass)(row, k, kc, 0, 2, s); break;
            case 3: FK_IFN(fk_pass)(row, k, kc, 0, 3, s); break;
            case 5: FK_IFN(fk_pass)(row, k, kc, 1, 1, s); break;
            case 6: FK_IFN(fk_pass)(row, k, kc, 1, 2, s); break;
            case 7: FK_IFN(fk_pass)(row, k, kc, 1, 3, s); break;
            case 10: FK_IFN(fk_pass)(row, k, kc, 2, 2, s); break;
            case 11: FK_IFN(fk_pass)(row, k, kc, 2, 3, s); break;
            default: FK_IFN(fk_pass)(row, k, kc, 3, 3, s); break;
            }
        }
        for (int r = 0; r < 4; ++r)
            for (int v = 0; v < V; ++v) *(vec *)(dst[r] + j0 + v * VW) = s[r * V + v];
        if (j0 + W >= n) break;
    }
}

/* One output row, columns [0, n) with n >= V*VW: rows4 for a single row. */
FK_ISA_ATTR
static void FK_IFN(fk_row1)(const FK_T *FK_RESTRICT t, ptrdiff_t ld,
                            const FK_T *FK_RESTRICT ker, ptrdiff_t kr, ptrdiff_t kc,
                            ptrdiff_t n, FK_T *FK_RESTRICT dst)
{
    typedef FK_IFN(fk_vec) vec;
    enum { VW = FK_ISA_BYTES / sizeof(FK_T), V = FK_ISA_V, W = V * VW };
    for (ptrdiff_t j0 = 0;; j0 += W) {
        if (j0 + W > n) j0 = n - W;
        vec s[V];
        for (int v = 0; v < V; ++v) s[v] = (vec){0};
        for (ptrdiff_t a = 0; a < kr; ++a)
            FK_IFN(fk_pass)(t + a * ld + j0, ker + a * kc, kc, 0, 0, s);
        for (int v = 0; v < V; ++v) *(vec *)(dst + j0 + v * VW) = s[v];
        if (j0 + W >= n) break;
    }
}

/* Output rows [0, m) of a tile, unit column step, written to out + i * os
 * (m >= 1, n >= V*VW).  Output row i reads image rows from t + i * rstep * ld;
 * t_rows image rows are readable from t.  With rstep 1, blocks of four rows (the
 * last overlapping the one before it), else single rows. */
FK_ISA_ATTR
static void FK_IFN(fk_rows)(const FK_T *t, ptrdiff_t ld, ptrdiff_t t_rows, ptrdiff_t rstep,
                            const FK_T *ker, ptrdiff_t kr, ptrdiff_t kc, ptrdiff_t m,
                            ptrdiff_t n, FK_T *out, ptrdiff_t os)
{
    if (m < 4 || rstep != 1) {
        for (ptrdiff_t i = 0; i < m; ++i)
            FK_IFN(fk_row1)(t + i * rstep * ld, ld, ker, kr, kc, n, out + i * os);
        return;
    }
    for (ptrdiff_t i = 0;; i += 4) {
        if (i + 4 > m) i = m - 4;
        FK_T *const d[4] = {out + i * os, out + (i + 1) * os, out + (i + 2) * os,
                            out + (i + 3) * os};
        FK_IFN(fk_rows4)(t + i * ld, ld, t_rows - i, ker, kr, kc, n, d);
        if (i + 4 >= m) break;
    }
}

/* Strided output from rows split by phase (correlate2d_impl.h, split_phases),
 * for nf kernels and nb blocks of V vectors at once (constants once inlined,
 * nf * nb <= 4: 4 to 16 independent sums, enough to hide the latency of the
 * multiply-adds):
 *   sum[f][c][v] += r[c*V*VW + v*VW] * k_f[a, b]
 * over the taps, where r, tap (a, b)'s row, is phase b % s of the window's row a
 * at position j0 + b / s.  Each vector loaded serves every kernel. */
FK_ISA_ATTR __attribute__((always_inline))
static inline void FK_IFN(fk_phased_taps)(const FK_T *FK_RESTRICT ph, ptrdiff_t len,
                                          ptrdiff_t n_ph, ptrdiff_t s,
                                          const FK_T *FK_RESTRICT ker, ptrdiff_t kr,
                                          ptrdiff_t kc, const int nf, const int nb,
                                          ptrdiff_t j0, FK_IFN(fk_vec) *FK_RESTRICT sum)
{
    typedef FK_IFN(fk_vec) vec;
    enum { VW = FK_ISA_BYTES / sizeof(FK_T), V = FK_ISA_V, W = V * VW };
    const ptrdiff_t taps = kr * kc;
    for (ptrdiff_t a = 0; a < kr; ++a) {
        /* tap b reads phase p = b % s at q = b / s, stepped without a division */
        for (ptrdiff_t b = 0, p = 0, q = 0; b < kc; ++b) {
            const FK_T *r = ph + (a * n_ph + p) * len + q + j0;
            if (++p == s) p = 0, ++q;
            vec x[4 * V];
            for (int c = 0; c < nb; ++c)
                for (int v = 0; v < V; ++v) {
                    x[c * V + v] = *(const vec *)(r + c * W + v * VW);
                    if (nf > 1) FK_KEEP(x[c * V + v]);   /* used nf times: one load */
                }
            for (int f = 0; f < nf; ++f) {
                const vec kb = ker[f * taps + a * kc + b] - (vec){0};   /* broadcast */
                for (int i = 0; i < nb * V; ++i) sum[f * nb * V + i] += x[i] * kb;
            }
        }
    }
}

/* One output row of strided output for nf <= 4 kernels (ker + f * kr * kc, into
 * dst[f]), columns [0, n) with n >= V*VW, in blocks of nb * V vectors (the widest
 * that n and nf allow); the last block overlaps the one before it.  Every output
 * is summed over a and then b from zero, whatever its block. */
FK_ISA_ATTR
static void FK_IFN(fk_row_phased)(const FK_T *ph, ptrdiff_t len, ptrdiff_t n_ph, ptrdiff_t s,
                                  const FK_T *ker, ptrdiff_t kr, ptrdiff_t kc, int nf,
                                  ptrdiff_t n, FK_T *const *dst)
{
    typedef FK_IFN(fk_vec) vec;
    enum { VW = FK_ISA_BYTES / sizeof(FK_T), V = FK_ISA_V, W = V * VW };
    int nb = 4 / nf;
    while (nb > 1 && n < nb * W) nb /= 2;
    const ptrdiff_t width = nb * W;
    for (ptrdiff_t j0 = 0;; j0 += width) {
        if (j0 + width > n) j0 = n - width;
        vec sum[4 * V];
        for (int i = 0; i < 4 * V; ++i) sum[i] = (vec){0};
        switch (nf * 8 + nb) {
#define FK_PHASED_CASE(NF, NB)                                                              \
        case NF * 8 + NB:                                                                   \
            FK_IFN(fk_phased_taps)(ph, len, n_ph, s, ker, kr, kc, NF, NB, j0, sum);        \
            break;
        FK_PHASED_CASE(1, 4)
        FK_PHASED_CASE(1, 2)
        FK_PHASED_CASE(1, 1)
        FK_PHASED_CASE(2, 2)
        FK_PHASED_CASE(2, 1)
        FK_PHASED_CASE(3, 1)
        default: FK_IFN(fk_phased_taps)(ph, len, n_ph, s, ker, kr, kc, 4, 1, j0, sum); break;
#undef FK_PHASED_CASE
        }
        for (int f = 0; f < nf; ++f)
            for (int i = 0; i < nb * V; ++i)
                *(vec *)(dst[f] + j0 + i * VW) = sum[f * nb * V + i];
        if (j0 + width >= n) break;
    }
}

#if FK_ISA_BYTES == 64
/* The phase split of one row (correlate2d_impl.h, split_phases) for AVX-512, in
 * blocks of VW groups of S columns (S constant once inlined, so that the block's
 * vectors stay in registers): the block's S vectors are loaded once, and phase
 * p's VW elements, element j at column j*S + p, are picked from them by one
 * masked permute per vector. */
FK_ISA_ATTR __attribute__((always_inline))
static inline ptrdiff_t FK_IFN(fk_split_blocks)(const FK_T *src, ptrdiff_t whole,
                                                const int S, ptrdiff_t n_ph, ptrdiff_t len,
                                                FK_T *dst)
{
    enum { VW = 64 / sizeof(FK_T) };
    __m512i idx[8];
    uint16_t mask[8][8];
    for (ptrdiff_t p = 0; p < n_ph; ++p) {
        int32_t l32[16];
        int64_t l64[8];
        for (int k = 0; k < S; ++k) mask[p][k] = 0;
        for (int j = 0; j < VW; ++j) {
            const int e = j * S + (int)p;   /* the element's place in the block */
            l32[j] = e % VW;
            l64[j % 8] = e % VW;
            mask[p][e / VW] |= (uint16_t)(1u << j);
        }
        idx[p] = sizeof(FK_T) == 4 ? _mm512_loadu_si512(l32) : _mm512_loadu_si512(l64);
    }
    ptrdiff_t j0 = 0;
    for (; j0 + VW <= whole; j0 += VW) {
        const FK_T *block = src + j0 * S;
        __m512i v[8];
        for (int k = 0; k < S; ++k) v[k] = _mm512_loadu_si512(block + k * VW);
        for (ptrdiff_t p = 0; p < n_ph; ++p) {
            __m512i r = _mm512_setzero_si512();
            for (int k = 0; k < S; ++k) {
                if (sizeof(FK_T) == 4)
                    r = _mm512_mask_permutexvar_epi32(r, (__mmask16)mask[p][k], idx[p], v[k]);
                else
                    r = _mm512_mask_permutexvar_epi64(r, (__mmask8)mask[p][k], idx[p], v[k]);
            }
            _mm512_storeu_si512(dst + p * len + j0, r);
        }
    }
    return j0;
}

/* fk_split_blocks for strides 2 to 8; returns the groups done (a multiple of
 * VW), and the caller copies the rest (all of them for other strides). */
FK_ISA_ATTR
static ptrdiff_t FK_IFN(fk_split_row)(const FK_T *src, ptrdiff_t whole, ptrdiff_t s,
                                      ptrdiff_t n_ph, ptrdiff_t len, FK_T *dst)
{
    switch (s) {
    case 2: return FK_IFN(fk_split_blocks)(src, whole, 2, n_ph, len, dst);
    case 3: return FK_IFN(fk_split_blocks)(src, whole, 3, n_ph, len, dst);
    case 4: return FK_IFN(fk_split_blocks)(src, whole, 4, n_ph, len, dst);
    case 5: return FK_IFN(fk_split_blocks)(src, whole, 5, n_ph, len, dst);
    case 6: return FK_IFN(fk_split_blocks)(src, whole, 6, n_ph, len, dst);
    case 7: return FK_IFN(fk_split_blocks)(src, whole, 7, n_ph, len, dst);
    case 8: return FK_IFN(fk_split_blocks)(src, whole, 8, n_ph, len, dst);
    default: return 0;
    }
}
#endif

#undef FK_KEEP
#undef FK_IFN
#undef FK_ICAT
#undef FK_ICAT_
