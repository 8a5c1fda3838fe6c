/* Uniform random indices from NumPy's PCG64 stream (see fk_integers.h). */
#include "fk_integers.h"

#include <string.h>

#include "../common/fk_simd.h"

#if defined(__GNUC__)
#define FK_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FK_ALWAYS_INLINE __forceinline
#else
#define FK_ALWAYS_INLINE inline
#endif

/* Lemire's bounded draw in [0, rng], 0 < rng < 2**32 - 1, from 32-bit words: NumPy's
 * buffered_bounded_lemire_uint32.  A word w gives (w * (rng + 1)) >> 32 unless the
 * low half of the product is below threshold = 2**32 mod (rng + 1), in which case
 * it is rejected and the next word is tried.  NumPy first tests the low half
 * against rng + 1 and only then computes the threshold; as threshold < rng + 1,
 * the outcome is the same. */
static inline uint32_t fk_lemire32_threshold(uint32_t rng)
{
    return (UINT32_MAX - rng) % (rng + 1);
}

/* The same in [0, rng] for rng >= 2**32 from 64-bit outputs: NumPy's
 * bounded_lemire_uint64. */
static uint64_t fk_lemire64(fk_pcg64 *g, uint64_t rng)
{
    const uint64_t excl = rng + 1;
    uint64_t x = fk_pcg64_next64(g);
    uint64_t leftover = x * excl;            /* the low half of the product */
    if (leftover < excl) {
        const uint64_t threshold = (UINT64_MAX - rng) % excl;
        while (leftover < threshold) {
            x = fk_pcg64_next64(g);
            leftover = x * excl;
        }
    }
    return fk_mulhi64(x, excl);
}

/* w[0] = the low half of r, w[1] = the high half: the order of next_uint32. */
static inline void fk_store_words(uint32_t *w, uint64_t r)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ \
    || defined(_M_X64) || defined(_M_ARM64)
    memcpy(w, &r, sizeof r);   /* one (unaligned) 64-bit store */
#else
    w[0] = (uint32_t)r;
    w[1] = (uint32_t)(r >> 32);
#endif
}

#if FK_HAVE_UINT128
/* (hi, lo) = (hi, lo) * (m_hi, m_lo) + (c_hi, c_lo) (mod 2**128), on 64-bit halves:
 * one widening multiply and two low ones.  Halves, rather than a 128-bit value,
 * let GCC keep two chains in registers in fk_outputs' loop. */
static FK_ALWAYS_INLINE void fk_lcg_step(uint64_t *hi, uint64_t *lo, uint64_t m_hi,
                                         uint64_t m_lo, uint64_t c_hi, uint64_t c_lo)
{
    const uint64_t l = *lo, h = *hi;
    const fk_u128 t = (fk_u128)l * m_lo + (((fk_u128)c_hi << 64) | c_lo);
    *hi = (uint64_t)(t >> 64) + h * m_lo + l * m_hi;
    *lo = (uint64_t)t;
}
#endif

/* The next `steps` 64-bit outputs of g, each stored as two words (low half
 * first) at w[0 : 2 * steps].
 *
 * With a 128-bit type, the LCG runs as two interleaved chains, one for the odd
 * and one for the even steps:
 *
 *     s[i + 2] = s[i] * M**2 + inc * (M + 1)    (mod 2**128).
 *
 * The chains' multiplies are independent and overlap, where stepping one at a
 * time waits for each multiply in turn; the stream is the same.  The loop is
 * kept lean so that the compiler holds it all in registers: more chains, or more
 * live values, spill to the stack and lose the gain.  Without a 128-bit type,
 * the outputs are made one at a time. */
FK_SIMD_CLONES
static void fk_outputs(fk_pcg64 *g, ptrdiff_t steps, uint32_t *w)
{
    uint32_t *const stop = w + 2 * steps;
#if FK_HAVE_UINT128
    {
        const fk_u128 mult = ((fk_u128)FK_PCG64_MULT_HI << 64) | FK_PCG64_MULT_LO;
        const fk_u128 mult2 = mult * mult;   /* a constant */
        const fk_u128 inc = ((fk_u128)g->inc_hi << 64) | g->inc_lo;
        const fk_u128 inc2 = inc * (mult + 1);
        const fk_u128 s1 = (((fk_u128)g->state_hi << 64) | g->state_lo) * mult + inc;
        const uint64_t m_hi = (uint64_t)(mult2 >> 64), m_lo = (uint64_t)mult2;
        const uint64_t c_hi = (uint64_t)(inc2 >> 64), c_lo = (uint64_t)inc2;
        /* s[2k] and s[2k + 1], in 64-bit halves that the compiler keeps in registers */
        uint64_t even_hi = g->state_hi, even_lo = g->state_lo;
        uint64_t odd_hi = (uint64_t)(s1 >> 64), odd_lo = (uint64_t)s1;
        ptrdiff_t pairs;
        for (pairs = steps / 2; pairs > 0; pairs--, w += 4) {
            fk_store_words(w, fk_pcg64_output(odd_hi, odd_lo));
            fk_lcg_step(&even_hi, &even_lo, m_hi, m_lo, c_hi, c_lo);
            fk_store_words(w + 2, fk_pcg64_output(even_hi, even_lo));
            fk_lcg_step(&odd_hi, &odd_lo, m_hi, m_lo, c_hi, c_lo);  /* one ahead */
        }
        g->state_hi = even_hi;
        g->state_lo = even_lo;
    }
#endif
    for (; w < stop; w += 2)                 /* the rest, one at a time */
        fk_store_words(w, fk_pcg64_next64(g));
}

/* The next m 32-bit words of g, in next_uint32 order, into w[0:m] (w has room for
 * m + 1).  Successive calls continue the stream: a call that ends half-way
 * through a 64-bit output leaves its high half as g's spare, and the next call
 * starts with it. */
static void fk_words(fk_pcg64 *g, ptrdiff_t m, uint32_t *w)
{
    ptrdiff_t start = 0, steps;
    if (m <= 0)
        return;
    if (g->has_uint32) {                     /* the spare comes first */
        w[0] = g->uinteger;
        g->has_uint32 = 0;
        start = 1;
    }
    steps = (m - start + 1) / 2;             /* 64-bit outputs still needed */
    fk_outputs(g, steps, w + start);
    if (start + 2 * steps > m) {             /* one word too many: the new spare */
        g->has_uint32 = 1;
        g->uinteger = w[m];
    }
}

/* out[0:m] from the words w[0:m] of stream g and, after rejections, the words
 * that follow them in g: the exact loop, for chunks where some word may be
 * rejected. */
static void fk_bounded32_exact(fk_pcg64 *g, uint32_t rng, const uint32_t *w,
                               ptrdiff_t m, uint64_t *out)
{
    const uint64_t excl = (uint64_t)rng + 1;
    const uint32_t threshold = fk_lemire32_threshold(rng);
    ptrdiff_t used = 0, i;
    for (i = 0; i < m; i++) {
        uint64_t p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        while ((uint32_t)p < threshold)
            p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        out[i] = p >> 32;
    }
}

/* The bounded draws of words w[0:m] (m <= FK_CHUNK) into out, for
 * 0 < rng < 2**32 - 1, where g is the stream right after the words.  The common
 * case, no word whose low product half is below rng + 1 (so none can be rejected;
 * a chunk has one with probability about m * (rng + 1) / 2**32), is one
 * vectorised pass; a chunk that has one is redone by the exact loop. */
FK_SIMD_CLONES
static void fk_bounded32_words(fk_pcg64 *g, uint32_t rng, const uint32_t *w, ptrdiff_t m,
                               uint64_t *out)
{
    const uint64_t excl = (uint64_t)rng + 1;
    uint32_t lowest = UINT32_MAX;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const uint64_t p = (uint64_t)w[i] * excl;
        const uint32_t low = (uint32_t)p;
        out[i] = p >> 32;
        lowest = low < lowest ? low : lowest;
    }
    if (lowest < excl)
        fk_bounded32_exact(g, rng, w, m, out);
}

void fk_pcg64_integers(fk_pcg64 *g, uint64_t n, ptrdiff_t cnt, uint64_t *out)
{
    const uint64_t rng = n - 1;
    ptrdiff_t i;
    if (rng == 0) {
        for (i = 0; i < cnt; i++)
            out[i] = 0;
    } else if (rng < 0xFFFFFFFFu) {
        uint32_t w[FK_CHUNK + 1];
        for (i = 0; i < cnt; i += FK_CHUNK) {
            const ptrdiff_t m = cnt - i < FK_CHUNK ? cnt - i : FK_CHUNK;
            fk_words(g, m, w);
            fk_bounded32_words(g, (uint32_t)rng, w, m, out + i);
        }
    } else if (rng == 0xFFFFFFFFu) {     /* Lemire's 32-bit method excludes it */
        for (i = 0; i < cnt; i++)
            out[i] = fk_pcg64_next32(g);
    } else if (rng == UINT64_MAX) {      /* and the 64-bit one this */
        for (i = 0; i < cnt; i++)
            out[i] = fk_pcg64_next64(g);
    } else {
        for (i = 0; i < cnt; i++)
            out[i] = fk_lemire64(g, rng);
    }
}

void fk_pcg64_raw(fk_pcg64 *g, int portable, ptrdiff_t cnt, uint64_t *out)
{
    ptrdiff_t i;
    for (i = 0; i < cnt; i++) {
        if (portable) {
            fk_pcg64_step_halves(&g->state_hi, &g->state_lo, g->inc_hi, g->inc_lo);
            out[i] = fk_pcg64_output(g->state_hi, g->state_lo);
        } else {
            out[i] = fk_pcg64_next64(g);
        }
    }
}
