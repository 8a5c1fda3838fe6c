/* NumPy's PCG64 bit generator, inline, with its exact stream.
 *
 * PCG64 is PCG XSL-RR 128/64: a 128-bit linear congruential generator
 *
 *     state = state * M + inc        (mod 2**128, inc odd, M = FK_PCG64_MULT)
 *
 * stepped before each output, and the output of a state (hi, lo) is the 64-bit
 * rotate right of hi ^ lo by hi >> 58.  32-bit draws (NumPy's next_uint32) take
 * the low half of an output first and keep its high half, the spare, for the next
 * 32-bit draw; 64-bit draws neither use nor clear the spare.
 *
 * An fk_pcg64 holds what `np.random.PCG64().state` holds: state['state']['state']
 * and ['inc'] split into 64-bit halves, 'has_uint32' and 'uinteger'.  Loaded from
 * that dict, it continues NumPy's stream exactly (the tests compare it with
 * `random_raw()` and with Generator.integers).
 *
 * 128-bit arithmetic works on 64-bit halves, with unsigned __int128 for the
 * widening multiply where the compiler has it (GCC, clang) and 64-bit pieces
 * elsewhere (MSVC).  The portable form is always compiled, so that the tests can
 * check it too.
 */
#ifndef FK_PCG64_H
#define FK_PCG64_H

#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
#endif

#if defined(__SIZEOF_INT128__) && !defined(FK_NO_UINT128)
#define FK_HAVE_UINT128 1
typedef unsigned __int128 fk_u128;
#else
#define FK_HAVE_UINT128 0
#endif

/* M and M**2 (mod 2**128), as 64-bit halves. */
#define FK_PCG64_MULT_HI 0x2360ED051FC65DA4ULL
#define FK_PCG64_MULT_LO 0x4385DF649FCCF645ULL
#define FK_PCG64_MULT2_HI 0x17BCE35BDF69743CULL
#define FK_PCG64_MULT2_LO 0x529ED9EB20E0AE99ULL

typedef struct {
    uint64_t state_hi, state_lo;   /* the 128-bit LCG state */
    uint64_t inc_hi, inc_lo;       /* the 128-bit increment (odd) */
    uint32_t uinteger;             /* the spare high half, valid when has_uint32 */
    int has_uint32;
} fk_pcg64;

/* The high 64 bits of the 128-bit product a * b, without a 128-bit type. */
static inline uint64_t fk_mulhi64_portable(uint64_t a, uint64_t b)
{
#if defined(_MSC_VER) && defined(_M_X64)
    return __umulh(a, b);
#else
    const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32;
    const uint64_t b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const uint64_t w0 = a0 * b0;
    const uint64_t t = a1 * b0 + (w0 >> 32);
    const uint64_t w1 = (t & 0xFFFFFFFFu) + a0 * b1;
    return a1 * b1 + (t >> 32) + (w1 >> 32);
#endif
}

/* (hi, lo) = (hi, lo) * (m_hi, m_lo) + (c_hi, c_lo)  (mod 2**128): one widening
 * multiply and two low ones.  The portable form. */
static inline void fk_u128_muladd_portable(uint64_t *hi, uint64_t *lo, uint64_t m_hi,
                                           uint64_t m_lo, uint64_t c_hi, uint64_t c_lo)
{
    const uint64_t l = *lo, h = *hi;
    const uint64_t p_lo = l * m_lo, new_lo = p_lo + c_lo;
    *hi = fk_mulhi64_portable(l, m_lo) + h * m_lo + l * m_hi + c_hi + (new_lo < p_lo);
    *lo = new_lo;
}

/* The same, with the 128-bit type where there is one. */
static inline void fk_u128_muladd(uint64_t *hi, uint64_t *lo, uint64_t m_hi, uint64_t m_lo,
                                  uint64_t c_hi, uint64_t c_lo)
{
#if FK_HAVE_UINT128
    const uint64_t l = *lo, h = *hi;
    const fk_u128 t = (fk_u128)l * m_lo + (((fk_u128)c_hi << 64) | c_lo);
    *hi = (uint64_t)(t >> 64) + h * m_lo + l * m_hi;
    *lo = (uint64_t)t;
#else
    fk_u128_muladd_portable(hi, lo, m_hi, m_lo, c_hi, c_lo);
#endif
}

/* rotr64(hi ^ lo, hi >> 58): the output of state (hi, lo). */
static inline uint64_t fk_pcg64_output(uint64_t hi, uint64_t lo)
{
    const uint64_t x = hi ^ lo;
    const unsigned rot = (unsigned)(hi >> 58);
    return (x >> rot) | (x << ((64u - rot) & 63u));
}

/* The next 64-bit output (NumPy's next_uint64 / random_raw). */
static inline uint64_t fk_pcg64_next64(fk_pcg64 *g)
{
    fk_u128_muladd(&g->state_hi, &g->state_lo, FK_PCG64_MULT_HI, FK_PCG64_MULT_LO,
                   g->inc_hi, g->inc_lo);
    return fk_pcg64_output(g->state_hi, g->state_lo);
}

/* The next 32-bit draw (NumPy's next_uint32): the spare if there is one, else the
 * low half of a new output, keeping its high half as the spare. */
static inline uint32_t fk_pcg64_next32(fk_pcg64 *g)
{
    uint64_t next;
    if (g->has_uint32) {
        g->has_uint32 = 0;
        return g->uinteger;
    }
    next = fk_pcg64_next64(g);
    g->has_uint32 = 1;
    g->uinteger = (uint32_t)(next >> 32);
    return (uint32_t)next;
}

/* w[0] = the low half of r, w[1] = the high half: the order of next_uint32. */
static inline void fk_store_words(uint32_t *w, uint64_t r)
{
#if (defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) \
    || defined(_M_X64) || defined(_M_ARM64)
    memcpy(w, &r, sizeof r);   /* one (unaligned) 64-bit store */
#else
    w[0] = (uint32_t)r;
    w[1] = (uint32_t)(r >> 32);
#endif
}

/* Two steps at a time, as two interleaved chains, one of the odd and one of the
 * even steps s[1], s[2], ... after the state s[0]:
 *
 *     s[i + 2] = s[i] * M**2 + inc * (M + 1)    (mod 2**128).
 *
 * The chains' multiplies are independent and overlap in the CPU, where stepping
 * one at a time waits for each multiply in turn; the outputs are the same.  Use
 * as a local variable (the compiler then keeps it in registers):
 *
 *     fk_pcg64_chains c;
 *     fk_chains_begin(&c, g);
 *     for (...) fk_chains_next4(&c, w), w += 4;    // two outputs, four words
 *     fk_chains_end(&c, g);
 */
typedef struct {
    uint64_t even_hi, even_lo;     /* s[2k], the state after the outputs so far */
    uint64_t odd_hi, odd_lo;       /* s[2k + 1] */
    uint64_t inc2_hi, inc2_lo;     /* inc * (M + 1) */
} fk_pcg64_chains;

static inline void fk_chains_begin(fk_pcg64_chains *c, const fk_pcg64 *g)
{
    uint64_t hi = g->inc_hi, lo = g->inc_lo;          /* inc * (M + 1) */
    fk_u128_muladd(&hi, &lo, FK_PCG64_MULT_HI, FK_PCG64_MULT_LO, g->inc_hi, g->inc_lo);
    c->inc2_hi = hi;
    c->inc2_lo = lo;
    c->even_hi = c->odd_hi = g->state_hi;
    c->even_lo = c->odd_lo = g->state_lo;
    fk_u128_muladd(&c->odd_hi, &c->odd_lo, FK_PCG64_MULT_HI, FK_PCG64_MULT_LO, g->inc_hi,
                   g->inc_lo);
}

/* Outputs s[2k + 1] and s[2k + 2] as words w[0:4]; then even = s[2k + 2]. */
static inline void fk_chains_next4(fk_pcg64_chains *c, uint32_t *w)
{
    fk_store_words(w, fk_pcg64_output(c->odd_hi, c->odd_lo));
    fk_u128_muladd(&c->even_hi, &c->even_lo, FK_PCG64_MULT2_HI, FK_PCG64_MULT2_LO,
                   c->inc2_hi, c->inc2_lo);
    fk_store_words(w + 2, fk_pcg64_output(c->even_hi, c->even_lo));
    fk_u128_muladd(&c->odd_hi, &c->odd_lo, FK_PCG64_MULT2_HI, FK_PCG64_MULT2_LO,
                   c->inc2_hi, c->inc2_lo);                    /* one ahead */
}

static inline void fk_chains_end(const fk_pcg64_chains *c, fk_pcg64 *g)
{
    g->state_hi = c->even_hi;
    g->state_lo = c->even_lo;
}

#endif
