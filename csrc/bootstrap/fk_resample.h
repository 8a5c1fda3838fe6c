/* The inner loops of the bootstrap kernels: the n draws of one resample, from
 * stream g exactly as fk_pcg64_integers(g, n, n) draws them, reduced as they are
 * drawn, without storing the resample.
 *
 * The draws come a chunk (FK_CHUNK) at a time, and the next chunk's 32-bit words
 * are drawn in the same loop that reduces the current chunk: the LCG's multiplies
 * and the reduction's loads from the sample then overlap in the CPU, where one
 * phase after the other would add their times.
 *
 * Sums are taken on four chains of additions, draw k going to chain k mod 4 of
 * its chunk, and the chains are added as (c0 + c1) + (c2 + c3) after each chunk:
 * a fixed order, so results do not depend on anything but the stream.
 */
#ifndef FK_RESAMPLE_H
#define FK_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "fk_integers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sum = the sum of x[i], and sum2 that of x[i] * x[i] (0 unless squares), over n
 * draws of i uniform in [0, n); n >= 1.  (Sums of squares want centred values:
 * the caller centres and scales x once, rather than every draw here.) */
void fk_resample_sums_f64(fk_pcg64 *g, const double *x, ptrdiff_t n, int squares,
                          double *sum, double *sum2);
void fk_resample_sums_f32(fk_pcg64 *g, const float *x, ptrdiff_t n, int squares,
                          double *sum, double *sum2);

/* counts[inverse[i]] += 1 for n draws of i uniform in [0, n); n >= 1. */
void fk_resample_counts(fk_pcg64 *g, const int64_t *inverse, ptrdiff_t n, int64_t *counts);

#ifdef __cplusplus
}
#endif
#endif
