/* Grid-search amplitude source location: see fk_locate.h for the model, the
 * screening bound and why the result is the reference loop's argmin. */
#include <math.h>

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

/* Screening of one event against one tile (fk_locate.h, step 1): gd and gg
 * of every position, and pass[q] = 1 where L may reach U on [lo, hi].
 * Returns the number of positions passed (of the first nq). */
FK_SIMD_CLONES
static ptrdiff_t screen(const double *FK_RESTRICT terms, const double *FK_RESTRICT gg_all,
                        const double *FK_RESTRICT d, const int64_t *FK_RESTRICT sta,
                        ptrdiff_t n, int all_stations, ptrdiff_t nq, double dd1, double U,
                        double lo, double hi, double c1, double *FK_RESTRICT gd,
                        double *FK_RESTRICT gg, unsigned char *FK_RESTRICT pass)
{
    for (ptrdiff_t q = 0; q < TILE; ++q) gd[q] = 0.0;
    if (all_stations) {
        for (ptrdiff_t i = 0; i < n; ++i) {
            const double *FK_RESTRICT g = terms + sta[i] * TILE;
            const double di = d[i];
            for (ptrdiff_t q = 0; q < TILE; ++q) gd[q] += g[q] * di;
        }
        for (ptrdiff_t q = 0; q < TILE; ++q) gg[q] = gg_all[q];
    } else {
        for (ptrdiff_t q = 0; q < TILE; ++q) gg[q] = 0.0;
        for (ptrdiff_t i = 0; i < n; ++i) {
            const double *FK_RESTRICT g = terms + sta[i] * TILE;
            const double di = d[i];
            for (ptrdiff_t q = 0; q < TILE; ++q) {
                gd[q] += g[q] * di;
                gg[q] += g[q] * g[q];
            }
        }
    }
    /* Skip a position only where its bound is a finite number above U: a NaN
     * or an overflow anywhere passes it to the exact step. */
    const double lhs = dd1 - U;
    const double llo0 = dd1 - U, lo2 = lo * lo, hi2 = hi * hi;
    ptrdiff_t count = 0;
    for (ptrdiff_t q = 0; q < nq; ++q) {
        const double x = gd[q], den = gg[q] * c1;
        const double v_lo = lo2 * den - 2.0 * lo * x + llo0;        /* L(lo) - U */
        const double v_hi = hi2 * den - 2.0 * hi * x + llo0;        /* L(hi) - U */
        const double v_mid = (den == 0.0 && x == 0.0) ? lhs : lhs * den - x * x;
        const double v = x < lo * den ? v_lo : (x > hi * den ? v_hi : v_mid);
        const int skip = v > 0.0 && v - v == 0.0;
        pass[q] = (unsigned char)!skip;
        count += !skip;
    }
    return count;
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

ptrdiff_t fk_locate_scan_tile(const fk_locate_grid *grid, const fk_locate_events *ev,
                              ptrdiff_t e0, ptrdiff_t e1, ptrdiff_t t, fk_locate_best *best)
{
    double gd[TILE], gg[TILE];
    unsigned char pass[TILE];
    const ptrdiff_t S = grid->n_sta, K = grid->n_amp;
    const ptrdiff_t left = grid->n_pos - t * TILE, nq = left < TILE ? left : TILE;
    const double c = bound_c(S), c1 = 1.0 - c, tiny = bound_tiny(S);
    const double lo = K > 0 ? grid->amp[0] : 0.0, hi = K > 0 ? grid->amp[K - 1] : INFINITY;
    const double *terms = grid->terms + t * S * TILE;
    const double *gg_all = grid->gg_all + t * TILE;
    ptrdiff_t exact = 0;
    for (ptrdiff_t e = e0; e < e1; ++e) {
        fk_locate_best *b = best + (e - e0);
        const double *d = ev->d + e * ev->n_sta;
        const int64_t *sta = ev->sta + e * ev->n_sta;
        const ptrdiff_t n = (ptrdiff_t)ev->n_rec[e];
        const double dd1 = ev->dd[e] * c1 - tiny;
        const ptrdiff_t n_pass = screen(terms, gg_all, d, sta, n, n == S, nq, dd1, b->err, lo,
                                        hi, c1, gd, gg, pass);
        if (n_pass == 0) continue;
        exact += n_pass;
        for (ptrdiff_t q = 0; q < nq; ++q) {
            if (!pass[q]) continue;
            const int64_t p = (int64_t)(t * TILE + q);
            if (K > 0) exact_discrete(grid, terms, q, p, d, sta, n, gd[q], gg[q] * c1, dd1, b);
            else exact_least_squares(terms, q, p, d, sta, n,
                                     least_squares_bound(gd[q], gg[q] * c1, dd1), b);
        }
    }
    return exact;
}
