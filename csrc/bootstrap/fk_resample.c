/* The inner loops of the bootstrap kernels (see fk_resample.h). */
#include "fk_resample.h"

#include "../common/fk_simd.h"

/* The buffers of a kernel's loop, side by side so that draw k and new word k are
 * at fixed offsets from each other (one register indexes both), and in the
 * caller's frame (a kernel with vector-aligned arrays of its own loses a register
 * to the frame pointer, and then spills). */
typedef struct {
    uint32_t draws[FK_CHUNK];      /* the chunk in use */
    uint32_t words[FK_CHUNK + 2];  /* the next chunk's: its spare, then new words */
    uint64_t wide[FK_CHUNK];       /* the chunk in use, for n >= 2**32 - 1 */
} fk_resample_buffers;

/* No fused multiply-adds: the SIMD clones (fk_simd.h) would fuse d * d + q where
 * the CPU has FMA and round it differently from the baseline, and a result must
 * not depend on the machine.  No auto-vectorisation either: it finds nothing
 * worth doing in these loops (the clones are for BMI2's flexible multiply and
 * shifts), but its vector spills realign the stack, which costs the loop a
 * register. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off", "no-tree-vectorize")
#endif

/* The sums of x[i] over the draws, and of x[i] * x[i]: chain j in s[j] and q[j],
 * added into the totals after each chunk. */
#define FK_LOCALS \
    double s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0}, total_s = 0, total_q = 0;
#define FK_CHUNK_END \
    total_s += (s[0] + s[1]) + (s[2] + s[3]); \
    total_q += (q[0] + q[1]) + (q[2] + q[3]); \
    s[0] = s[1] = s[2] = s[3] = q[0] = q[1] = q[2] = q[3] = 0;
#define FK_END \
    *sum = total_s; \
    *sum2 = total_q;

#define FK_TAKE(i, j) (s[j] += x[i])
#define FK_NAME fk_sums_f64
#define FK_PARAMS , const double *x, double *sum, double *sum2
#include "fk_resample_impl.h"
#undef FK_NAME
#undef FK_PARAMS
#define FK_NAME fk_sums_f32
#define FK_PARAMS , const float *x, double *sum, double *sum2
#include "fk_resample_impl.h"
#undef FK_NAME
#undef FK_PARAMS
#undef FK_TAKE

#define FK_TAKE(i, j) \
    do { \
        const double d_ = x[i]; \
        s[j] += d_; \
        q[j] += d_ * d_; \
    } while (0)
#define FK_NAME fk_sums_squares_f64
#define FK_PARAMS , const double *x, double *sum, double *sum2
#include "fk_resample_impl.h"
#undef FK_NAME
#undef FK_PARAMS
#define FK_NAME fk_sums_squares_f32
#define FK_PARAMS , const float *x, double *sum, double *sum2
#include "fk_resample_impl.h"
#undef FK_NAME
#undef FK_PARAMS
#undef FK_TAKE

#undef FK_LOCALS
#undef FK_CHUNK_END
#undef FK_END

void fk_resample_sums_f64(fk_pcg64 *g, const double *x, ptrdiff_t n, int squares,
                          double *sum, double *sum2)
{
    fk_resample_buffers b;
    if (squares)
        fk_sums_squares_f64(&b, g, n, x, sum, sum2);
    else
        fk_sums_f64(&b, g, n, x, sum, sum2);
}

void fk_resample_sums_f32(fk_pcg64 *g, const float *x, ptrdiff_t n, int squares,
                          double *sum, double *sum2)
{
    fk_resample_buffers b;
    if (squares)
        fk_sums_squares_f32(&b, g, n, x, sum, sum2);
    else
        fk_sums_f32(&b, g, n, x, sum, sum2);
}

/* The histogram of the draws' values. */
#define FK_NAME fk_counts
#define FK_PARAMS , const int64_t *inverse, int64_t *counts
#define FK_LOCALS
#define FK_TAKE(i, j) (counts[inverse[i]] += 1)
#define FK_CHUNK_END
#define FK_END
#include "fk_resample_impl.h"

void fk_resample_counts(fk_pcg64 *g, const int64_t *inverse, ptrdiff_t n, int64_t *counts)
{
    fk_resample_buffers b;
    fk_counts(&b, g, n, inverse, counts);
}
