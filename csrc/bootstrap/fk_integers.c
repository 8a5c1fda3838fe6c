/* Uniform random indices from NumPy's PCG64 stream (see fk_integers.h). */
#include "fk_integers.h"

#include "../common/fk_simd.h"

/* An AVX-512 copy of the bounded draws' multiplies, chosen at run time, where
 * the SIMD clones are (GCC or clang on x86-64 Linux; see fk_simd.h). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) \
    && !defined(FK_NO_SIMD_CLONES)
#define FK_AVX512_PRODUCTS 1
#include <immintrin.h>
/* 0 turns the copy off (fk_pcg64_use_avx512, for tests). */
static int fk_allow_avx512 = 1;
#else
#define FK_AVX512_PRODUCTS 0
#endif

/* Lemire's bounded draw in [0, rng], 0 < rng < 2**32 - 1, from 32-bit words is
 * NumPy's buffered_bounded_lemire_uint32: a word w gives (w * (rng + 1)) >> 32,
 * unless the low half of the product is below threshold = 2**32 mod (rng + 1);
 * then w is rejected and the next word is tried.  NumPy tests the low half against
 * rng + 1 before it computes the threshold; as threshold < rng + 1, the outcome
 * is the same. */
static uint32_t fk_lemire32_threshold(uint32_t rng)
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
#if FK_HAVE_UINT128
    return (uint64_t)(((fk_u128)x * excl) >> 64);
#else
    return fk_mulhi64_portable(x, excl);
#endif
}

/* The next 2 * pairs 64-bit outputs of chains c, each as two words (low half
 * first), into w[0 : 4 * pairs]; returns the chains after them.  Everything by
 * value, so that no pointer but w takes a register in the loop: with one more,
 * the compiler spills a chain to the stack, which adds a store and a load to its
 * latency. */
FK_SIMD_CLONES
static fk_pcg64_chains fk_output_pairs(fk_pcg64_chains c, ptrdiff_t pairs, uint32_t *w)
{
    for (; pairs > 0; pairs--, w += 4)
        fk_chains_next4(&c, w);
    return c;
}

void fk_pcg64_words(fk_pcg64 *g, ptrdiff_t m, uint32_t *w)
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
    if (steps >= 2) {
        fk_pcg64_chains c;
        fk_chains_begin(&c, g);
        c = fk_output_pairs(c, steps / 2, w + start);
        fk_chains_end(&c, g);
    }
    if (steps % 2)
        fk_store_words(w + start + 2 * (steps - 1), fk_pcg64_next64(g));
    if (start + 2 * steps > m) {             /* one word too many: the new spare */
        g->has_uint32 = 1;
        g->uinteger = w[m];
    }
}

/* out[0:m] from the words w[0:m] and, after rejections, the words that follow
 * them in g: the exact loop. */
static void fk_bounded32_exact(fk_pcg64 *g, uint32_t rng, const uint32_t *w,
                               ptrdiff_t m, uint32_t *out)
{
    const uint64_t excl = (uint64_t)rng + 1;
    const uint32_t threshold = fk_lemire32_threshold(rng);
    ptrdiff_t used = 0, i;
    for (i = 0; i < m; i++) {
        uint64_t p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        while ((uint32_t)p < threshold)
            p = (uint64_t)(used < m ? w[used++] : fk_pcg64_next32(g)) * excl;
        out[i] = (uint32_t)(p >> 32);
    }
}

/* out[0:m] = the high halves of w[0:m] * excl, and the lowest low half. */
static uint32_t fk_bounded32_products(const uint32_t *w, ptrdiff_t m, uint32_t excl,
                                      uint32_t *out)
{
    uint32_t lowest = UINT32_MAX;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const uint64_t p = (uint64_t)w[i] * excl;  /* 32x32 bits: vectorises */
        const uint32_t low = (uint32_t)p;
        out[i] = (uint32_t)(p >> 32);
        lowest = low < lowest ? low : lowest;
    }
    return lowest;
}

#if FK_AVX512_PRODUCTS
/* The same with AVX-512's 32x32-bit multiply, 16 words at a time: from the loop
 * above, compilers widen the words and use the 64-bit vpmullq, which takes three
 * times the work (the whole pass then costs about 20% of a mean's bootstrap). */
__attribute__((target("avx512f")))
static uint32_t fk_bounded32_products_avx512(const uint32_t *w, ptrdiff_t m,
                                             uint32_t excl, uint32_t *out)
{
    const __m512i e = _mm512_set1_epi64(excl);
    __m512i lows = _mm512_set1_epi32(-1);
    uint32_t lowest;
    ptrdiff_t i = 0;
    for (; i + 16 <= m; i += 16) {
        const __m512i v = _mm512_loadu_si512(w + i);
        const __m512i even = _mm512_mul_epu32(v, e);                        /* w[i + 2j] */
        const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(v, 32), e);  /* w[i + 2j + 1] */
        /* back in word order: even products in the even 32-bit lanes, odd in the odd */
        _mm512_storeu_si512(out + i, _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32),
                                                             odd));
        lows = _mm512_min_epu32(lows, _mm512_mask_blend_epi32(0xAAAA, even,
                                                              _mm512_slli_epi64(odd, 32)));
    }
    lowest = (uint32_t)_mm512_reduce_min_epu32(lows);
    if (i < m) {
        const uint32_t rest = fk_bounded32_products(w + i, m - i, excl, out + i);
        lowest = rest < lowest ? rest : lowest;
    }
    return lowest;
}
#endif

/* The common case, where no word's low product half is below rng + 1 (so none
 * can be rejected; a chunk has one with probability about m * (rng + 1) / 2**32),
 * is one vectorised pass; a chunk that has one is redone by the exact loop. */
FK_SIMD_CLONES
void fk_pcg64_bounded32(fk_pcg64 *g, uint32_t rng, const uint32_t *w, ptrdiff_t m,
                        uint32_t *out)
{
    const uint32_t excl = rng + 1;
    uint32_t lowest;
#if FK_AVX512_PRODUCTS
    if (fk_allow_avx512 && __builtin_cpu_supports("avx512f"))
        lowest = fk_bounded32_products_avx512(w, m, excl, out);
    else
#endif
        lowest = fk_bounded32_products(w, m, excl, out);
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
        uint32_t w[FK_CHUNK + 1], draws[FK_CHUNK];
        for (i = 0; i < cnt; i += FK_CHUNK) {
            const ptrdiff_t m = cnt - i < FK_CHUNK ? cnt - i : FK_CHUNK;
            ptrdiff_t k;
            fk_pcg64_words(g, m, w);
            fk_pcg64_bounded32(g, (uint32_t)rng, w, m, draws);
            for (k = 0; k < m; k++)
                out[i + k] = draws[k];
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

int fk_pcg64_use_avx512(int use)
{
#if FK_AVX512_PRODUCTS
    if (use >= 0)
        fk_allow_avx512 = use;
    return fk_allow_avx512 && __builtin_cpu_supports("avx512f");
#else
    (void)use;
    return 0;
#endif
}

void fk_pcg64_raw(fk_pcg64 *g, int portable, ptrdiff_t cnt, uint64_t *out)
{
    ptrdiff_t i;
    for (i = 0; i < cnt; i++) {
        if (portable) {
            fk_u128_muladd_portable(&g->state_hi, &g->state_lo, FK_PCG64_MULT_HI,
                                    FK_PCG64_MULT_LO, g->inc_hi, g->inc_lo);
            out[i] = fk_pcg64_output(g->state_hi, g->state_lo);
        } else {
            out[i] = fk_pcg64_next64(g);
        }
    }
}
