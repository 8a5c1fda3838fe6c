/* Uniform random indices from NumPy's PCG64 stream, exactly as NumPy draws them.
 *
 * fk_pcg64_integers(g, n, cnt, out) writes what
 * `np.random.Generator(pcg64).integers(0, n, size=cnt)` returns and leaves g where
 * the generator would be: NumPy's random_bounded_uint64_fill with Lemire's method
 * (32-bit draws for n <= 2**32, 64-bit draws above).  For n < 2**32 it works a
 * chunk of FK_CHUNK draws at a time: the LCG as two interleaved chains, whose
 * multiplies overlap, then the bounded draws with SIMD multiplies, with the rare
 * chunk that may reject a draw redone exactly.
 */
#ifndef FK_INTEGERS_H
#define FK_INTEGERS_H

#include <stddef.h>
#include <stdint.h>

#include "fk_pcg64.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Draws per pass of the fast path (its stack buffer). */
#define FK_CHUNK 256

/* out[0:cnt] = Generator.integers(0, n, size=cnt) drawn from g; n >= 1, cnt >= 0. */
void fk_pcg64_integers(fk_pcg64 *g, uint64_t n, ptrdiff_t cnt, uint64_t *out);

/* out[0:cnt] = the next cnt 64-bit outputs (random_raw), by the 128-bit type where
 * the compiler has one (portable = 0) or by 64-bit halves (portable = 1): a test
 * hook for both forms of the arithmetic. */
void fk_pcg64_raw(fk_pcg64 *g, int portable, ptrdiff_t cnt, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
