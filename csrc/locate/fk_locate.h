/* Grid-search amplitude source location: plain C core of fastkern.locate_events.
 *
 * The model.  Station s at distance r from a candidate position sees the
 * amplitude A * g, with the station term g = exp(-B r) / r.  The error of a
 * candidate (position p, amplitude A) for an event with observed amplitudes d
 * is, in float64 and in this order (the reference loop of locate.py):
 *
 *     err = 0.0
 *     for s in the event's recording stations, in increasing order:
 *         u = A * g[s][p] - d[s]
 *         err += u * u
 *
 * with r = sqrt((dx*dx + dy*dy) + dz*dz), d. = candidate - station, and
 * g = exp(-B * r) / r.  Nothing here contracts a multiply and an add into one
 * rounding (the extension is built with -ffp-contract=off), so these values
 * equal the reference loop's in Python, bit for bit.
 *
 * What is returned for an event is the candidate of smallest err, ties going
 * to the smallest position index, then the smallest amplitude index; a
 * candidate whose err is not finite (a recording station at zero distance:
 * g = inf) is never chosen.  The search does not evaluate every candidate:
 *
 * 1. Screening (vectorised over the positions of a tile, four events at a
 *    time where every station recorded them): the sums gd = sum g d and
 *    gg = sum g g over the recording stations, in any order and rounding
 *    (fused or not), give for every A a lower bound of err,
 *        L(A) = A*A*gg*(1-c) - 2*A*gd + dd*(1-c) - tiny,
 *    where dd = sum d d, c = (4 S + 64) 2**-52 and tiny = (8 S + 64) 2**-1074
 *    bound the rounding of both err and the sums (twice the worst case of a
 *    forward error analysis, so that L's own rounding is covered too).
 *    A position whose L exceeds the best err found so far even at L's
 *    minimiser (over all real A) is skipped: none of its candidates can win
 *    or tie.
 * 2. Exact step, for the positions that pass: L is a convex quadratic with
 *    minimiser m = gd / (gg (1-c)); its minimum over the sorted amplitudes is
 *    at a neighbour of m (binary search), and the candidates with L <= best
 *    form a contiguous run around them, walked outwards until L exceeds the
 *    best on the far side of m.  Each one left is evaluated the loop's way.
 *    For the least-squares amplitude, A = gde / gge (0 if not positive), with
 *    gde, gge summed the loop's way, is the only candidate of the position.
 *
 * Every candidate that is skipped has err > the best err found, so the result
 * is the loop's argmin whatever the tiles, the order of the work or the split
 * of the positions between threads: results do not depend on the threads.
 * Ties are settled by comparing (position, amplitude index), never by the
 * order of evaluation, so _locate.pyx is free to visit the tiles in an order
 * that finds a low best early (fewer positions then pass the screening).
 * Non-finite screening sums (overflow, g = inf) never skip anything: such a
 * position has all its amplitudes evaluated.
 */
#ifndef FK_LOCATE_H
#define FK_LOCATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Positions per tile: the station terms of a tile (S * FK_LOCATE_TILE doubles)
 * stay in cache while a block of events is screened against them. */
#define FK_LOCATE_TILE 256

/* The grid: positions p = (ix * ny + iy) * nz + iz, in the loop's order. */
typedef struct {
    ptrdiff_t n_pos;       /* positions, nx * ny * nz */
    ptrdiff_t n_sta;       /* stations S */
    ptrdiff_t n_amp;       /* candidate amplitudes K; 0: least-squares A >= 0 */
    const double *terms;   /* tile-major station terms, n_tiles * S * FK_LOCATE_TILE:
                              terms[(t * S + s) * TILE + q] is g of station s at
                              position t * TILE + q, 0 past the last position */
    const double *gg_all;  /* n_tiles * TILE: sum over all stations of g*g */
    const double *amp;     /* (K,) strictly increasing, NULL when K == 0 */
} fk_locate_grid;

/* The events, as locate.py prepares them. */
typedef struct {
    ptrdiff_t n_sta;       /* S: row length of d and sta */
    const double *d;       /* (E, S): event e's recorded amplitudes first, in station order */
    const int64_t *sta;    /* (E, S): their station indices */
    const int64_t *n_rec;  /* (E,): recording stations, 1..S */
    const double *dd;      /* (E,): sum of d*d, the loop's way */
} fk_locate_events;

/* An event's best candidate so far: err = +inf and pos = -1 before any. */
typedef struct {
    double err;
    double amp;
    int64_t pos;
    int64_t k;             /* amplitude index; -1 for the least-squares amplitude */
} fk_locate_best;

/* Station terms of tile t: writes terms for positions t*TILE .. (t+1)*TILE - 1
 * (zeros past n_pos) at terms_tile (S * TILE) and their sums of squares at
 * gg_tile (TILE).  stations is (S, 3), row-major; B >= 0. */
void fk_locate_terms_tile(const double *stations, ptrdiff_t n_sta,
                          const double *xs, ptrdiff_t nx, const double *ys, ptrdiff_t ny,
                          const double *zs, ptrdiff_t nz, double attenuation, ptrdiff_t t,
                          double *terms_tile, double *gg_tile);

/* Events e0..e1-1 against the positions of tile t; best[e - e0] holds the
 * event's best so far and is updated.  Returns the (event, position) pairs
 * that the screening passed (a measure of its work). */
ptrdiff_t fk_locate_scan_tile(const fk_locate_grid *grid, const fk_locate_events *ev,
                              ptrdiff_t e0, ptrdiff_t e1, ptrdiff_t t, fk_locate_best *best);

/* The loop's sum of d*d over n values. */
double fk_locate_sum_squares(const double *d, ptrdiff_t n);

#ifdef __cplusplus
}
#endif

#endif
