/* The random draws of the permutation-test kernels (see fk_permute.h). */
#include "fk_permute.h"

/* The bounded draws of the bootstrap (fk_pcg64_words, Lemire's threshold), compiled
 * into this extension too: each extension module is linked on its own, so the
 * one in fastkern._bootstrap cannot be called from here. */
#include "../bootstrap/fk_integers.c"

/* The exact loop, from the words w[0:m] and then those that follow in g: each
 * step's draw as NumPy's buffered_bounded_lemire_uint32. */
static void fk_shuffle_exact(fk_pcg64 *g, int64_t n, int64_t i0, const uint32_t *w,
                             ptrdiff_t m, int64_t *out)
{
    ptrdiff_t used = 0, k;
    for (k = 0; k < m; k++) {
        const uint32_t excl = (uint32_t)(n - i0 - k);
        const uint32_t threshold = fk_lemire32_threshold(excl - 1);
        uint64_t p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        while ((uint32_t)p < threshold)
            p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        out[k] = i0 + k + (int64_t)(p >> 32);
    }
}

void fk_shuffle_draws(fk_pcg64 *g, int64_t n, int64_t i0, ptrdiff_t m, int64_t *out)
{
    uint32_t w[FK_CHUNK + 1];
    uint32_t maybe_rejected = 0;
    ptrdiff_t k;
    if (m <= 0)
        return;
    if ((uint64_t)(n - i0) > 0xFFFFFFFFu) {
        /* bounds of 2**32 and above: NumPy's other paths, one step at a time */
        for (k = 0; k < m; k++) {
            uint64_t d;
            fk_pcg64_integers(g, (uint64_t)(n - i0 - k), 1, &d);
            out[k] = i0 + k + (int64_t)d;
        }
        return;
    }
    /* The common case: no word's low product half is below the step's bound, so
     * no word can be rejected; otherwise the chunk is redone exactly. */
    fk_pcg64_words(g, m, w);
    for (k = 0; k < m; k++) {
        const uint32_t excl = (uint32_t)(n - i0 - k);
        const uint64_t p = (uint64_t)w[k] * excl;
        out[k] = i0 + k + (int64_t)(p >> 32);
        maybe_rejected |= (uint32_t)p < excl;
    }
    if (maybe_rejected)
        fk_shuffle_exact(g, n, i0, w, m, out);
}

void fk_sign_bits(fk_pcg64 *g, ptrdiff_t cnt, uint64_t *out)
{
    ptrdiff_t k;
    for (k = 0; k < cnt; k++)
        out[k] = fk_pcg64_next64(g);
}
