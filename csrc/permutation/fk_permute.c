/* The random draws of the permutation-test kernels (see fk_permute.h). */
#include "fk_permute.h"

/* The bounded draws of the bootstrap (fk_pcg64_words, Lemire's threshold), compiled
 * into this extension too: each extension module is linked on its own, so the
 * one in fastkern._bootstrap cannot be called from here. */
#include "../bootstrap/fk_integers.c"
#include "../common/fk_simd.h"

/* The exact loop, from the words w[0:m] and then those that follow in g: each
 * step's draw as NumPy's buffered_bounded_lemire_uint32.  w[k] becomes the word
 * step k accepts (in place: that word is w[used - 1], used > k, and later steps
 * read only from w[used] on). */
static void fk_shuffle_exact(fk_pcg64 *g, int64_t n, int64_t i0, uint32_t *w,
                             ptrdiff_t m)
{
    ptrdiff_t used = 0, k;
    for (k = 0; k < m; k++) {
        const uint32_t excl = (uint32_t)(n - i0 - k);
        const uint32_t threshold = fk_lemire32_threshold(excl - 1);
        uint32_t word = used < m ? w[used++] : fk_pcg64_next32(g);
        while ((uint32_t)((uint64_t)word * excl) < threshold)
            word = used < m ? w[used++] : fk_pcg64_next32(g);
        w[k] = word;
    }
}

/* Nonzero if a word of w[0:m] may be rejected: its low product half with its
 * step's bound n0 - k is below that bound (the threshold is smaller still). */
FK_SIMD_CLONES
static uint32_t fk_maybe_rejected(const uint32_t *w, uint32_t n0, ptrdiff_t m)
{
    uint32_t any = 0;
    ptrdiff_t k;
    for (k = 0; k < m; k++) {
        const uint32_t excl = n0 - (uint32_t)k;
        any |= w[k] * excl < excl;          /* the low half, mod 2**32 */
    }
    return any;
}

void fk_shuffle_words(fk_pcg64 *g, int64_t n, int64_t i0, ptrdiff_t m, uint32_t *w)
{
    if (m <= 0)
        return;
    /* The common case: no word can be rejected; otherwise the chunk is redone
     * exactly, from the same words. */
    fk_pcg64_words(g, m, w);
    if (fk_maybe_rejected(w, (uint32_t)(n - i0), m))
        fk_shuffle_exact(g, n, i0, w, m);
}

void fk_shuffle_draws(fk_pcg64 *g, int64_t n, int64_t i0, ptrdiff_t m, int64_t *out)
{
    uint32_t w[FK_CHUNK + 1];
    ptrdiff_t k;
    if (m <= 0)
        return;
    if (!fk_draws_are_words(n, i0)) {
        /* bounds of 2**32 and above: NumPy's other paths, one step at a time */
        for (k = 0; k < m; k++) {
            uint64_t d;
            fk_pcg64_integers(g, (uint64_t)(n - i0 - k), 1, &d);
            out[k] = i0 + k + (int64_t)d;
        }
        return;
    }
    fk_shuffle_words(g, n, i0, m, w);
    for (k = 0; k < m; k++)
        out[k] = fk_partner(w[k], n, i0 + k);
}

void fk_sign_bits(fk_pcg64 *g, ptrdiff_t cnt, uint64_t *out)
{
    ptrdiff_t k;
    for (k = 0; k < cnt; k++)
        out[k] = fk_pcg64_next64(g);
}
