/* Uniform random indices from NumPy's PCG64 stream, exactly as NumPy draws them.
 *
 * fk_pcg64_integers(g, n, cnt, out) writes what
 * `np.random.Generator(pcg64).integers(0, n, size=cnt)` returns and leaves g where
 * the generator would be: NumPy's random_bounded_uint64_fill with Lemire's method
 * (32-bit draws for n <= 2**32, 64-bit draws above).  For n < 2**32 it works a
 * chunk of FK_CHUNK draws at a time: the 32-bit words from two interleaved LCG
 * chains, whose multiplies overlap, then the bounded draws with SIMD multiplies;
 * a chunk that may reject a word is redone exactly.
 */
#ifndef FK_INTEGERS_H
#define FK_INTEGERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/fk_pcg64.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Draws per chunk of the 32-bit path. */
#define FK_CHUNK 256

/* out[0:cnt] = Generator.integers(0, n, size=cnt) drawn from g; n >= 1, cnt >= 0. */
void fk_pcg64_integers(fk_pcg64 *g, uint64_t n, ptrdiff_t cnt, uint64_t *out);

/* The two steps of the 32-bit path, 2 <= n < 2**32 (rng = n - 1):
 * fk_pcg64_words: w[0:m] = the next m 32-bit draws of g (next_uint32), w with
 *   room for m + 1; successive calls continue the stream (a half-used output
 *   leaves its high half as g's spare).
 * fk_pcg64_bounded32: out[0:m] = the draws in [0, rng] that the words w[0:m]
 *   give, for m <= FK_CHUNK, where g stands right after the words (rejected
 *   words are replaced by the words that follow). */
void fk_pcg64_words(fk_pcg64 *g, ptrdiff_t m, uint32_t *w);
void fk_pcg64_bounded32(fk_pcg64 *g, uint32_t rng, const uint32_t *w, ptrdiff_t m,
                        uint32_t *out);

/* Whether fk_pcg64_bounded32 multiplies with AVX-512 (where the build has that
 * copy and the CPU runs it): use = 0 turns it off, 1 back on, -1 only asks.
 * For tests of both copies; change it only while no kernel runs. */
int fk_pcg64_use_avx512(int use);

/* out[0:cnt] = the next cnt 64-bit outputs (random_raw), by the 128-bit type where
 * the compiler has one (portable = 0) or by 64-bit pieces (portable = 1): a test
 * hook for both forms of the arithmetic. */
void fk_pcg64_raw(fk_pcg64 *g, int portable, ptrdiff_t cnt, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
