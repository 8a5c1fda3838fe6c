/* One resample kernel (see fk_resample.h), included by fk_resample.c once per
 * reduction.  Define before including:
 *
 *   FK_NAME         the function's name
 *   FK_PARAMS       its parameters after (fk_resample_buffers *b, fk_pcg64 *g,
 *                   ptrdiff_t n), with a leading comma
 *   FK_LOCALS       the reduction's variables, declared and initialised
 *   FK_TAKE(i, j)   use draw i, on chain j (0 to 3) of the reduction
 *   FK_CHUNK_END    after each chunk (fold the chains into the totals)
 *   FK_END          at the end (store the totals)
 */

/* Draws d[k : k + 4] on chains 0 to 3. */
#define FK_TAKE4(d, k) \
    do { \
        FK_TAKE((d)[(k)], 0); \
        FK_TAKE((d)[(k) + 1], 1); \
        FK_TAKE((d)[(k) + 2], 2); \
        FK_TAKE((d)[(k) + 3], 3); \
    } while (0)

/* Draws d[k : cnt], from k on, four at a time and the rest on chain 0. */
#define FK_TAKE_REST(d, k, cnt) \
    do { \
        for (; (k) + 4 <= (cnt); (k) += 4) \
            FK_TAKE4(d, k); \
        for (; (k) < (cnt); (k)++) \
            FK_TAKE((d)[(k)], 0); \
    } while (0)

/* New words of the next chunk, b->words[1 + k : 1 + end], from chains c while
 * using draws b->draws[k : end], four of each at a time. */
#define FK_DRAW_AND_TAKE(end) \
    do { \
        for (; k < (end); k += 4) { \
            fk_chains_next4(&c, b->words + 1 + k); \
            FK_TAKE4(b->draws, k); \
        } \
    } while (0)

FK_SIMD_CLONES
static void FK_NAME(fk_resample_buffers *b, fk_pcg64 *g, ptrdiff_t n FK_PARAMS)
{
    uint32_t *next_words = b->words;
    const uint32_t rng = (uint32_t)(n - 1);
    ptrdiff_t cnt = n < FK_CHUNK ? n : FK_CHUNK, left = n - cnt, k;
    FK_LOCALS

    if (n < 2 || (uint64_t)n - 1 >= 0xFFFFFFFFu) {
        /* no 32-bit words: a chunk of fk_pcg64_integers at a time */
        for (left = n; left > 0; left -= cnt) {
            cnt = left < FK_CHUNK ? left : FK_CHUNK;
            fk_pcg64_integers(g, (uint64_t)n, cnt, b->wide);
            k = 0;
            FK_TAKE_REST(b->wide, k, cnt);
            FK_CHUNK_END
        }
        FK_END
        return;
    }

    fk_pcg64_words(g, cnt, b->words);
    fk_pcg64_bounded32(g, rng, b->words, cnt, b->draws);
    while (cnt > 0) {
        const ptrdiff_t next = left < FK_CHUNK ? left : FK_CHUNK;
        k = 0;
        if (next > 0) {
            /* Draw the next chunk's new words four at a time while using this
             * chunk's draws four at a time, then any words still needed.  A spare
             * goes to words[0], new words from words[1] on. */
            ptrdiff_t start = 0;
            const ptrdiff_t quads = next / 4 < cnt / 4 ? next / 4 : cnt / 4;
            fk_pcg64_chains c;
            if (g->has_uint32) {
                b->words[0] = g->uinteger;
                g->has_uint32 = 0;
                start = 1;
            }
            fk_chains_begin(&c, g);
            if (quads == FK_CHUNK / 4)
                FK_DRAW_AND_TAKE(FK_CHUNK);  /* a constant bound frees a register */
            else
                FK_DRAW_AND_TAKE(4 * quads);
            fk_chains_end(&c, g);
            if (k > next - start) {       /* a word too many: the new spare */
                g->has_uint32 = 1;
                g->uinteger = b->words[1 + next - start];
            } else {
                fk_pcg64_words(g, next - start - k, b->words + 1 + k);
            }
            next_words = b->words + 1 - start;
        }
        FK_TAKE_REST(b->draws, k, cnt);
        FK_CHUNK_END
        cnt = next;
        left -= next;
        if (cnt > 0)
            fk_pcg64_bounded32(g, rng, next_words, cnt, b->draws);
    }
    FK_END
}

#undef FK_TAKE4
#undef FK_TAKE_REST
#undef FK_DRAW_AND_TAKE
