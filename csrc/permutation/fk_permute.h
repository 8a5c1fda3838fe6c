/* The random draws of the permutation-test kernels, exactly as NumPy draws them.
 *
 * fk_shuffle_draws gives the partners of Fisher-Yates steps: step i over n
 * positions swaps position i with position j = Generator.integers(i, n), one
 * scalar call per step (NumPy's random_bounded_uint64 with Lemire's method: one
 * 32-bit word per draw, more on a rejection, for n - i < 2**32).  So the steps
 * i0..i0+m-1 are what `rng.integers(np.arange(i0, i0 + m), n)` returns.
 *
 * fk_shuffle_words gives the same draws as the words they come from, for
 * loops that compute the partners as they swap (fk_partner).
 *
 * fk_sign_bits gives the next 64-bit outputs of the stream, as
 * `rng.bit_generator.random_raw(cnt)` (the spare 32-bit half is not used).
 */
#ifndef FK_PERMUTE_H
#define FK_PERMUTE_H

#include <stddef.h>
#include <stdint.h>

#include "bootstrap/fk_integers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether steps from i0 on over n positions draw one 32-bit word each (bounds
 * n - i0 and below, all under 2**32), so that fk_shuffle_words serves them. */
static inline int fk_draws_are_words(int64_t n, int64_t i0)
{
    return (uint64_t)(n - i0) <= 0xFFFFFFFFu;
}

/* The same draws as words, where fk_draws_are_words(n, i0) (else use
 * fk_shuffle_draws): w[k] is the 32-bit word that step i0 + k accepts, and its
 * partner is fk_partner(w[k], n, i0 + k).  w has room for FK_CHUNK + 1 words
 * (the draw of a spare); needs 0 <= m <= FK_CHUNK and i0 + m <= n - 1. */
void fk_shuffle_words(fk_pcg64 *g, int64_t n, int64_t i0, ptrdiff_t m, uint32_t *w);

/* Step i's partner from its accepted word: i + (w * (n - i)) / 2**32. */
static inline int64_t fk_partner(uint32_t w, int64_t n, int64_t i)
{
    return i + (int64_t)(((uint64_t)w * (uint64_t)(n - i)) >> 32);
}

/* out[k] = i0 + k + (a draw uniform in [0, n - i0 - k)) for k < m, each draw as
 * Generator.integers(i0 + k, n) makes it; needs 0 <= m <= FK_CHUNK and
 * i0 + m <= n - 1 (every step has at least two positions to choose from). */
void fk_shuffle_draws(fk_pcg64 *g, int64_t n, int64_t i0, ptrdiff_t m, int64_t *out);

/* out[0:cnt] = the next cnt 64-bit outputs of g (random_raw). */
void fk_sign_bits(fk_pcg64 *g, ptrdiff_t cnt, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
