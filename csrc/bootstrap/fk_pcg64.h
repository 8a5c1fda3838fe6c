/* NumPy's PCG64 bit generator, inline, with its exact stream.
 *
 * PCG64 is PCG XSL-RR 128/64: a 128-bit linear congruential generator
 *
 *     state = state * FK_PCG64_MULT + inc        (mod 2**128, inc odd)
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
 * 128-bit arithmetic uses unsigned __int128 where the compiler has it (GCC,
 * clang), else two 64-bit halves (MSVC); both are always compiled, so that the
 * tests can check the portable one too.
 */
#ifndef FK_PCG64_H
#define FK_PCG64_H

#include <stdint.h>

#if defined(_MSC_VER) && defined(_M_X64)
#include <intrin.h>
#endif

#if defined(__SIZEOF_INT128__) && !defined(FK_NO_UINT128)
#define FK_HAVE_UINT128 1
typedef unsigned __int128 fk_u128;
#else
#define FK_HAVE_UINT128 0
#endif

#define FK_PCG64_MULT_HI 0x2360ED051FC65DA4ULL
#define FK_PCG64_MULT_LO 0x4385DF649FCCF645ULL

typedef struct {
    uint64_t state_hi, state_lo;   /* the 128-bit LCG state */
    uint64_t inc_hi, inc_lo;       /* the 128-bit increment (odd) */
    uint32_t uinteger;             /* the spare high half, valid when has_uint32 */
    int has_uint32;
} fk_pcg64;

/* The high 64 bits of the 128-bit product a * b. */
static inline uint64_t fk_mulhi64(uint64_t a, uint64_t b)
{
#if FK_HAVE_UINT128
    return (uint64_t)(((fk_u128)a * b) >> 64);
#elif defined(_MSC_VER) && defined(_M_X64)
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

/* rotr64(hi ^ lo, hi >> 58): the output of state (hi, lo). */
static inline uint64_t fk_pcg64_output(uint64_t hi, uint64_t lo)
{
    const uint64_t x = hi ^ lo;
    const unsigned rot = (unsigned)(hi >> 58);
    return (x >> rot) | (x << ((64u - rot) & 63u));
}

/* One LCG step on (hi, lo) with two 64-bit halves: the portable form. */
static inline void fk_pcg64_step_halves(uint64_t *hi, uint64_t *lo, uint64_t inc_hi,
                                        uint64_t inc_lo)
{
    const uint64_t l = *lo, h = *hi;
    const uint64_t prod_lo = l * FK_PCG64_MULT_LO;
    const uint64_t prod_hi = fk_mulhi64(l, FK_PCG64_MULT_LO) + h * FK_PCG64_MULT_LO
                             + l * FK_PCG64_MULT_HI;
    const uint64_t new_lo = prod_lo + inc_lo;
    *hi = prod_hi + inc_hi + (new_lo < prod_lo);
    *lo = new_lo;
}

/* The next 64-bit output (NumPy's next_uint64 / random_raw). */
static inline uint64_t fk_pcg64_next64(fk_pcg64 *g)
{
#if FK_HAVE_UINT128
    const fk_u128 mult = ((fk_u128)FK_PCG64_MULT_HI << 64) | FK_PCG64_MULT_LO;
    const fk_u128 inc = ((fk_u128)g->inc_hi << 64) | g->inc_lo;
    const fk_u128 s = (((fk_u128)g->state_hi << 64) | g->state_lo) * mult + inc;
    g->state_hi = (uint64_t)(s >> 64);
    g->state_lo = (uint64_t)s;
#else
    fk_pcg64_step_halves(&g->state_hi, &g->state_lo, g->inc_hi, g->inc_lo);
#endif
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

#endif
