/* The PCG64 stream of unit i of a call, derived in C from its spawn key: exactly
 *
 *     np.random.PCG64(np.random.SeedSequence(root.entropy,
 *                                            spawn_key=root.spawn_key + (i,),
 *                                            pool_size=root.pool_size))
 *
 * without building a Python object per unit (see src/fastkern/_seeding.py).
 *
 * NumPy's SeedSequence (numpy/random/bit_generator.pyx) reads its entropy as
 * 32-bit words, the "assembled entropy": the run entropy, padded with zeros to
 * pool_size words when there is a spawn key, then the spawn key's words (each
 * key element least significant word first; 0 is one word).  It hashes the first
 * pool_size words into the pool, mixes every pool word into every other, then
 * mixes each further word into every pool word.  generate_state(4, uint64) hashes
 * the pool's words in turn into 8 output words, and PCG64 seeds itself from them
 * (numpy's pcg64_set_seed).
 *
 * A child's assembled entropy is the root's words (padded run entropy, then the
 * root's spawn key: at least pool_size words) followed by the words of i.  So the
 * pool after the root's words is the same for every unit and is computed once
 * (fk_seedseq_root_init); a unit then only mixes in its one or two words
 * (fk_seedseq_pcg64).  The hash's multiplier does not depend on the data, only on
 * how many words were hashed, and the output reads at most the first 8 pool
 * words, so a root keeps those 8 words and the multiplier's advance per word.
 *
 * The tests compare streams with NumPy's for many roots and units.
 */
#ifndef FK_SEEDSEQ_H
#define FK_SEEDSEQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/fk_pcg64.h"

/* SeedSequence's hash constants. */
#define FK_SS_INIT_A 0x43b0d7e5u
#define FK_SS_MULT_A 0x931e8875u
#define FK_SS_INIT_B 0x8b51f9ddu
#define FK_SS_MULT_B 0x58f38dedu
#define FK_SS_MIX_MULT_L 0xca01f9ddu
#define FK_SS_MIX_MULT_R 0x4973f715u
#define FK_SS_XSHIFT 16

/* Pool words that generate_state(4, uint64) reads: 8 words, cycling the pool. */
#define FK_SS_KEPT 8

typedef struct {
    uint32_t pool[FK_SS_KEPT];  /* the pool's first n_kept words after the root's words */
    uint32_t n_kept;            /* min(pool_size, 8) */
    uint32_t hash_const;        /* hashmix's multiplier after the root's words */
    uint32_t hash_step;         /* MULT_A ** pool_size: its advance per word mixed in */
} fk_seedseq_root;

static inline uint32_t fk_ss_hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= FK_SS_MULT_A;
    value *= *hash_const;
    value ^= value >> FK_SS_XSHIFT;
    return value;
}

static inline uint32_t fk_ss_mix(uint32_t x, uint32_t y)
{
    uint32_t result = FK_SS_MIX_MULT_L * x - FK_SS_MIX_MULT_R * y;
    result ^= result >> FK_SS_XSHIFT;
    return result;
}

/* The root of a call from its assembled entropy words (n_words >= pool_size >= 1:
 * the padded run entropy and the root's spawn key).  Returns 0, or -1 if out of
 * memory (the pool, pool_size words, lives in the heap meanwhile). */
static int fk_seedseq_root_init(fk_seedseq_root *r, const uint32_t *words, size_t n_words,
                                size_t pool_size)
{
    uint32_t *pool = (uint32_t *)malloc(pool_size * sizeof(uint32_t));
    uint32_t hash_const = FK_SS_INIT_A, step = 1, a = FK_SS_MULT_A;
    size_t i, j, e;
    if (pool == NULL || n_words < pool_size) {
        free(pool);
        return -1;
    }
    for (i = 0; i < pool_size; i++)
        pool[i] = fk_ss_hashmix(words[i], &hash_const);
    for (i = 0; i < pool_size; i++)
        for (j = 0; j < pool_size; j++)
            if (i != j)
                pool[j] = fk_ss_mix(pool[j], fk_ss_hashmix(pool[i], &hash_const));
    for (i = pool_size; i < n_words; i++)
        for (j = 0; j < pool_size; j++)
            pool[j] = fk_ss_mix(pool[j], fk_ss_hashmix(words[i], &hash_const));
    r->n_kept = (uint32_t)(pool_size < FK_SS_KEPT ? pool_size : FK_SS_KEPT);
    for (i = 0; i < r->n_kept; i++)
        r->pool[i] = pool[i];
    free(pool);
    r->hash_const = hash_const;
    for (e = pool_size; e; e >>= 1, a *= a)       /* MULT_A ** pool_size, mod 2**32 */
        if (e & 1)
            step *= a;
    r->hash_step = step;
    return 0;
}

/* g = the PCG64 stream of unit i (spawn key root.spawn_key + (i,)). */
static inline void fk_seedseq_pcg64(const fk_seedseq_root *r, uint64_t i, fk_pcg64 *g)
{
    uint32_t pool[FK_SS_KEPT], key[2], hash_const = r->hash_const, h, v;
    uint64_t seed[4];
    uint32_t k, j, n_key = (i >> 32) ? 2 : 1;
    key[0] = (uint32_t)i;
    key[1] = (uint32_t)(i >> 32);
    for (j = 0; j < r->n_kept; j++)
        pool[j] = r->pool[j];
    /* mix the key's words into the kept pool words; the others are never read */
    for (k = 0; k < n_key; k++) {
        h = hash_const;
        for (j = 0; j < r->n_kept; j++)
            pool[j] = fk_ss_mix(pool[j], fk_ss_hashmix(key[k], &h));
        hash_const *= r->hash_step;
    }
    /* generate_state(4, np.uint64): 8 words, pairs read little-endian */
    h = FK_SS_INIT_B;
    for (j = 0; j < 2 * 4; j++) {
        v = pool[j % r->n_kept] ^ h;
        h *= FK_SS_MULT_B;
        v *= h;
        v ^= v >> FK_SS_XSHIFT;
        if (j & 1)
            seed[j / 2] |= (uint64_t)v << 32;
        else
            seed[j / 2] = v;
    }
    /* pcg64_set_seed(state = seed[0:2], inc = seed[2:4]), high half first:
     * inc = (initseq << 1) | 1, state = ((0 * M + inc) + initstate) * M + inc */
    g->inc_hi = (seed[2] << 1) | (seed[3] >> 63);
    g->inc_lo = (seed[3] << 1) | 1u;
    g->state_hi = g->inc_hi;
    g->state_lo = g->inc_lo;
    fk_u128_muladd(&g->state_hi, &g->state_lo, 0, 1, seed[0], seed[1]);   /* += initstate */
    fk_u128_muladd(&g->state_hi, &g->state_lo, FK_PCG64_MULT_HI, FK_PCG64_MULT_LO,
                   g->inc_hi, g->inc_lo);
    g->uinteger = 0;
    g->has_uint32 = 0;
}

/* Unit first + u's stream in a zero-filled table of them (calloc), derived the
 * first time it is asked for: a seeded PCG64's increment is odd, so a zero one
 * was never derived.  Each unit is asked for by one thread at a time. */
static inline fk_pcg64 *fk_seedseq_lazy(const fk_seedseq_root *r, fk_pcg64 *table,
                                        uint64_t first, size_t u)
{
    if (table[u].inc_lo == 0)
        fk_seedseq_pcg64(r, first + u, &table[u]);
    return &table[u];
}

#endif
