/* Grid-search amplitude source location: see fk_locate.h for the model, the
 * screening bound and why the result is the reference loop's argmin. */
#include <math.h>
#include <string.h>

#include "common/fk_simd.h"
#include "fk_locate.h"

#define TILE FK_LOCATE_TILE

/* The screening bound's constants for S stations (fk_locate.h): about twice a
 * forward error analysis of err (2 S + 13 units of 2**-53) plus that of the
 * sums gd, gg, dd (3 S + 3), so that the rounding of L itself is covered. */
static double bound_c(ptrdiff_t n_sta) { return (4.0 * (double)n_sta + 64.0) * 0x1p-52; }
static double bound_tiny(ptrdiff_t n_sta) { return (8.0 * (double)n_sta + 64.0) * 0x1p-1074; }

double fk_locate_sum_squares(const double *d, ptrdiff_t n)
{
    double s = 0.0;
    for (ptrdiff_t i = 0; i < n; ++i) s += d[i] * d[i];
    return s;
}

void fk_locate_terms_tile(const double *stations, ptrdiff_t n_sta,
                          const double *xs, ptrdiff_t nx, const double *ys, ptrdiff_t ny,
                          const double *zs, ptrdiff_t nz, double attenuation, ptrdiff_t t,
                          double *terms_tile, double *gg_tile)
{
    const ptrdiff_t n_pos = nx * ny * nz;
    for (ptrdiff_t q = 0; q < TILE; ++q) {
        const ptrdiff_t p = t * TILE + q;
        if (p >= n_pos) {
            for (ptrdiff_t s = 0; s < n_sta; ++s) terms_tile[s * TILE + q] = 0.0;
            gg_tile[q] = 0.0;
            continue;
        }
        const double x = xs[p / (ny * nz)], y = ys[(p / nz) % ny], z = zs[p % nz];
        double gg = 0.0;
        for (ptrdiff_t s = 0; s < n_sta; ++s) {
            const double dx = x - stations[3 * s], dy = y - stations[3 * s + 1],
                         dz = z - stations[3 * s + 2];
            const double r = sqrt(dx * dx + dy * dy + dz * dz);
            const double g = exp(-attenuation * r) / r;   /* inf at r == 0 */
            terms_tile[s * TILE + q] = g;
            gg += g * g;
        }
        gg_tile[q] = gg;
    }
}

/* The screening (screen_isa.h), by instruction set: 16-byte vectors wherever
 * GCC/clang vector extensions exist, and AVX2+FMA and AVX-512 versions chosen at
 * run time on x86-64 Linux.  FK_LOCATE_TILE is a multiple of their blocks.
 * Events recorded by every station are screened FK_GROUP at a time. */
#define FK_GROUP 4

#if defined(__GNUC__)
typedef double fk_v2d __attribute__((vector_size(16)));
#define FK_ISA base
#define FK_ISA_ATTR
#define FK_VEC fk_v2d
#define FK_VW 2
#define FK_MULADD(a, b, c) ((a) * (b) + (c))
#define FK_SET1(x) ((fk_v2d){(x), (x)})
#include "screen_isa.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_VEC
#undef FK_VW
#undef FK_MULADD
#undef FK_SET1
#else
#define FK_ISA base
#define FK_ISA_ATTR
#define FK_VEC double
#define FK_VW 1
#define FK_MULADD(a, b, c) ((a) * (b) + (c))
#define FK_SET1(x) (x)
#include "screen_isa.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_VEC
#undef FK_VW
#undef FK_MULADD
#undef FK_SET1
#endif

#if defined(__GNUC__) && defined(FK_SIMD_DISPATCH)
#define FK_LOCATE_DISPATCH 1
#include <immintrin.h>
typedef double fk_v4d __attribute__((vector_size(32)));
typedef double fk_v8d __attribute__((vector_size(64)));

#define FK_ISA avx2
#define FK_ISA_ATTR __attribute__((target("arch=x86-64-v3")))
#define FK_VEC fk_v4d
#define FK_VW 4
#define FK_MULADD(a, b, c) ((fk_v4d)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
#define FK_SET1(x) ((fk_v4d)_mm256_set1_pd(x))
#include "screen_isa.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_VEC
#undef FK_VW
#undef FK_MULADD
#undef FK_SET1

#define FK_ISA avx512
#define FK_ISA_ATTR __attribute__((target("arch=x86-64-v4")))
#define FK_VEC fk_v8d
#define FK_VW 8
#define FK_MULADD(a, b, c) ((fk_v8d)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
#define FK_SET1(x) ((fk_v8d)_mm512_set1_pd(x))
#include "screen_isa.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_VEC
#undef FK_VW
#undef FK_MULADD
#undef FK_SET1
#endif

typedef struct {
    void (*sums)(const double *, const double *, const double *, const int64_t *, ptrdiff_t,
                 int, ptrdiff_t, double *, double *);
    ptrdiff_t (*filter)(const double *, const double *, ptrdiff_t, double, double, double,
                        unsigned char *);
    void (*sums_group)(const double *, ptrdiff_t, const double *const *, ptrdiff_t,
                       double *const *);
} fk_screen_isa;

static fk_screen_isa screen_for_cpu(void)
{
#ifdef FK_LOCATE_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return (fk_screen_isa){sums_avx512, filter_avx512, sums_group_avx512};
    if (__builtin_cpu_supports("x86-64-v3"))
        return (fk_screen_isa){sums_avx2, filter_avx2, sums_group_avx2};
#endif
    return (fk_screen_isa){sums_base, filter_base, sums_group_base};
}

static inline double exact_err(const double *terms, ptrdiff_t q, const double *d,
                               const int64_t *sta, ptrdiff_t n, double amp)
{
    double err = 0.0;
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double u = amp * terms[sta[i] * TILE + q] - d[i];
        err += u * u;
    }
    return err;
}

/* Keep (err, p, k) if it beats the best: smaller err, or equal and first in the
 * loop's order.  A non-finite err never becomes the best. */
static inline void offer(fk_locate_best *b, double err, double amp, int64_t p, int64_t k)
{
    if (err < b->err ||
        (err == b->err && b->pos >= 0 && (p < b->pos || (p == b->pos && k < b->k)))) {
        b->err = err;
        b->amp = amp;
        b->pos = p;
        b->k = k;
    }
}

/* First index j with amp[j] > m (K if none). */
static ptrdiff_t upper_bound(const double *amp, ptrdiff_t K, double m)
{
    ptrdiff_t lo = 0, hi = K;
    while (lo < hi) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if (amp[mid] > m) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* The exact step (fk_locate.h, step 2) for the discrete amplitudes. */
static void exact_discrete(const fk_locate_grid *grid, const double *terms, ptrdiff_t q,
                           int64_t p, const double *d, const int64_t *sta, ptrdiff_t n,
                           double x, double den, double dd1, fk_locate_best *b)
{
    const double *amp = grid->amp;
    const ptrdiff_t K = grid->n_amp;
    if (!(isfinite(x) && isfinite(den) && isfinite(dd1))) {
        for (ptrdiff_t k = 0; k < K; ++k) offer(b, exact_err(terms, q, d, sta, n, amp[k]), amp[k], p, k);
        return;
    }
    if (den == 0.0 && x == 0.0) {
        /* every recording station's term exactly 0: err is sum d*d whatever A,
         * and the first amplitude wins the tie */
        ptrdiff_t i = 0;
        while (i < n && terms[sta[i] * TILE + q] == 0.0) ++i;
        if (i == n) {
            offer(b, exact_err(terms, q, d, sta, n, amp[0]), amp[0], p, 0);
            return;
        }
    }
    double m;
    if (den > 0.0) m = x / den;
    else m = x > 0.0 ? INFINITY : (x < 0.0 ? -INFINITY : amp[0]);
    /* beyond these, L grows monotonically away from its minimiser (whatever
     * the rounding of m, which is far below 1e-6 relative) */
    const double m_left = isfinite(m) ? m - 1e-6 * fabs(m) : m;
    const double m_right = isfinite(m) ? m + 1e-6 * fabs(m) : m;
    const ptrdiff_t j = upper_bound(amp, K, m);
    for (ptrdiff_t k = j - 1; k >= 0; --k) {
        const double a = amp[k], L = a * a * den - 2.0 * a * x + dd1;
        if (isfinite(L) && L > b->err) {
            if (a < m_left) break;
            continue;
        }
        offer(b, exact_err(terms, q, d, sta, n, a), a, p, k);
    }
    for (ptrdiff_t k = j; k < K; ++k) {
        const double a = amp[k], L = a * a * den - 2.0 * a * x + dd1;
        if (isfinite(L) && L > b->err) {
            if (a > m_right) break;
            continue;
        }
        offer(b, exact_err(terms, q, d, sta, n, a), a, p, k);
    }
}

/* The exact step for the least-squares amplitude A >= 0, from sums taken the
 * loop's way; lower is the screening's bound of L over A >= 0. */
static void exact_least_squares(const double *terms, ptrdiff_t q, int64_t p, const double *d,
                                const int64_t *sta, ptrdiff_t n, double lower,
                                fk_locate_best *b)
{
    double gd = 0.0, gg = 0.0;
    if (isfinite(lower) && lower > b->err) return;  /* the best moved on since screening */
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double g = terms[sta[i] * TILE + q];
        gd += g * d[i];
        gg += g * g;
    }
    const double a = (gd > 0.0 && gg > 0.0) ? gd / gg : 0.0;
    offer(b, exact_err(terms, q, d, sta, n, a), a, p, -1);
}

/* min over A >= 0 of L(A) = A*A*den - 2*A*x + dd1 (NaN passes as "unknown"). */
static double least_squares_bound(double x, double den, double dd1)
{
    if (!(x > 0.0)) return x == x ? dd1 : x;
    return den > 0.0 ? dd1 - x * (x / den) : -INFINITY;
}

/* The exact step for the positions of event e that passed. */
static void exact_step(const fk_locate_grid *grid, const double *terms, ptrdiff_t t,
                       const double *d, const int64_t *sta, ptrdiff_t n, ptrdiff_t nq,
                       const unsigned char *pass, const double *gd, const double *gg,
                       double c1, double dd1, fk_locate_best *b)
{
    for (ptrdiff_t q = 0; q < nq; ++q) {
        if (!pass[q]) continue;
        /* the screening's test again, against the best as it is now */
        const double den = gg[q] * c1, x = gd[q], lhs = dd1 - b->err;
        const double v = (den == 0.0 && x == 0.0) ? lhs : lhs * den - x * x;
        if (v > 0.0 && v - v == 0.0) continue;
        const int64_t p = (int64_t)(t * TILE + q);
        if (grid->n_amp > 0)
            exact_discrete(grid, terms, q, p, d, sta, n, gd[q], gg[q] * c1, dd1, b);
        else
            exact_least_squares(terms, q, p, d, sta, n,
                                least_squares_bound(gd[q], gg[q] * c1, dd1), b);
    }
}

ptrdiff_t fk_locate_scan_tile(const fk_locate_grid *grid, const fk_locate_events *ev,
                              ptrdiff_t e0, ptrdiff_t e1, ptrdiff_t t, fk_locate_best *best)
{
    double gd[FK_GROUP][TILE], gg[TILE];
    unsigned char pass[TILE];
    const ptrdiff_t S = grid->n_sta;
    const ptrdiff_t left = grid->n_pos - t * TILE, nq = left < TILE ? left : TILE;
    const double c = bound_c(S), c1 = 1.0 - c, tiny = bound_tiny(S);
    const double *terms = grid->terms + t * S * TILE;
    const double *gg_all = grid->gg_all + t * TILE;
    const fk_screen_isa isa = screen_for_cpu();
    ptrdiff_t exact = 0, group[FK_GROUP], n_group = 0;
    for (ptrdiff_t e = e0; e <= e1; ++e) {
        /* events every station recorded wait for a full group; the others, and
         * what is left at the end, go one by one */
        if (e < e1 && ev->n_rec[e] == S) {
            group[n_group++] = e;
            if (n_group < FK_GROUP) continue;
            const double *rows[FK_GROUP];
            double *outs[FK_GROUP];
            for (int j = 0; j < FK_GROUP; ++j) {
                rows[j] = ev->d + group[j] * ev->n_sta;
                outs[j] = gd[j];
            }
            isa.sums_group(terms, S, rows, nq, outs);
        } else {
            if (e < e1) group[n_group++] = e;
            for (ptrdiff_t j = 0; j < n_group; ++j) {
                const ptrdiff_t f = group[j];
                isa.sums(terms, gg_all, ev->d + f * ev->n_sta, ev->sta + f * ev->n_sta,
                         (ptrdiff_t)ev->n_rec[f], ev->n_rec[f] == S, nq, gd[j], gg);
            }
        }
        /* the group's sums are in gd[0 .. n_group-1] (gg: all stations', or the
         * one event's own) */
        for (ptrdiff_t j = 0; j < n_group; ++j) {
            const ptrdiff_t f = group[j];
            fk_locate_best *b = best + (f - e0);
            const ptrdiff_t n = (ptrdiff_t)ev->n_rec[f];
            const double *ggf = n == S ? gg_all : gg;
            const double dd1 = ev->dd[f] * c1 - tiny;
            const ptrdiff_t n_pass = isa.filter(gd[j], ggf, nq, dd1, b->err, c1, pass);
            if (n_pass == 0) continue;
            exact += n_pass;
            exact_step(grid, terms, t, ev->d + f * ev->n_sta, ev->sta + f * ev->n_sta, n, nq,
                       pass, gd[j], ggf, c1, dd1, b);
        }
        n_group = 0;
    }
    return exact;
}
