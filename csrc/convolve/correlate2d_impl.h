/* Body of the 2-D correlation core, included once per element type by
 * correlate2d.c with FK_T (the type) and FK_SUFFIX (the name suffix) defined. */

#define FK_CAT_(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT_(a, b)
#define FK_FN(name) FK_CAT(name, FK_SUFFIX)

/* Copy image rows [r_lo, r_lo + nr) x columns [q_lo, q_lo + nq), extended past the
 * edges by the boundary rule, into buf (row length nq). */
static void FK_FN(gather)(const fk_corr2d_geom *g, const FK_T *img, FK_T fill,
                          ptrdiff_t r_lo, ptrdiff_t nr, ptrdiff_t q_lo, ptrdiff_t nq,
                          FK_T *buf)
{
    /* columns [c_a, c_b) of the buffer lie inside the image */
    ptrdiff_t c_a = q_lo < 0 ? -q_lo : 0;
    ptrdiff_t c_b = g->in_cols - q_lo < nq ? g->in_cols - q_lo : nq;
    if (c_a > nq) c_a = nq;
    if (c_b < c_a) c_b = c_a;

    for (ptrdiff_t r = 0; r < nr; ++r) {
        FK_T *dst = buf + r * nq;
        ptrdiff_t src_r = fk_map_index(r_lo + r, g->in_rows, g->boundary);
        if (src_r < 0) {
            for (ptrdiff_t c = 0; c < nq; ++c) dst[c] = fill;
            continue;
        }
        const FK_T *src = img + src_r * g->in_s0;
        for (ptrdiff_t c = 0; c < c_a; ++c) {
            ptrdiff_t q = fk_map_index(q_lo + c, g->in_cols, g->boundary);
            dst[c] = q < 0 ? fill : src[q * g->in_s1];
        }
        if (g->in_s1 == 1) {
            if (c_b > c_a) memcpy(dst + c_a, src + q_lo + c_a, (size_t)(c_b - c_a) * sizeof(FK_T));
        } else {
            for (ptrdiff_t c = c_a; c < c_b; ++c) dst[c] = src[(q_lo + c) * g->in_s1];
        }
        for (ptrdiff_t c = c_b; c < nq; ++c) {
            ptrdiff_t q = fk_map_index(q_lo + c, g->in_cols, g->boundary);
            dst[c] = q < 0 ? fill : src[q * g->in_s1];
        }
    }
}

#ifdef FK_VECTOR_EXT
/* GCC/clang vector of FK_VEC_BYTES bytes: one AVX-512 register, two AVX2 or four
 * SSE2 ones, as the SIMD clone decides.  Loads through it may be unaligned. */
typedef FK_T FK_FN(vec) __attribute__((vector_size(FK_VEC_BYTES), aligned(sizeof(FK_T)),
                                       may_alias));
#endif

/* acc[j] = sum_{a, b} t[a*ld + j*step + b] * ker[a*kc + b] for j < n: the hot loop,
 * one copy per SIMD target.  For unit step, blocks of 4 vectors of outputs are
 * accumulated in registers over all taps; the rest (and strided output) runs as
 * unit-stride passes over acc, which compilers vectorise. */
FK_SIMD_CLONES
static void FK_FN(correlate_row)(const FK_T *FK_RESTRICT t, ptrdiff_t ld,
                                 const FK_T *FK_RESTRICT ker, ptrdiff_t kr, ptrdiff_t kc,
                                 ptrdiff_t step, ptrdiff_t n, FK_T *FK_RESTRICT acc)
{
    ptrdiff_t j0 = 0;
#ifdef FK_VECTOR_EXT
    if (step == 1) {
        typedef FK_FN(vec) vec;
        enum { VW = FK_VEC_BYTES / sizeof(FK_T) };
        for (; j0 + 4 * VW <= n; j0 += 4 * VW) {
            vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            for (ptrdiff_t a = 0; a < kr; ++a) {
                const FK_T *row = t + a * ld + j0;
                const FK_T *k = ker + a * kc;
                for (ptrdiff_t b = 0; b < kc; ++b) {
                    const vec kb = (vec){0} + k[b];
                    const FK_T *r = row + b;
                    s0 += *(const vec *)(r) * kb;
                    s1 += *(const vec *)(r + VW) * kb;
                    s2 += *(const vec *)(r + 2 * VW) * kb;
                    s3 += *(const vec *)(r + 3 * VW) * kb;
                }
            }
            *(vec *)(acc + j0) = s0;
            *(vec *)(acc + j0 + VW) = s1;
            *(vec *)(acc + j0 + 2 * VW) = s2;
            *(vec *)(acc + j0 + 3 * VW) = s3;
        }
    }
#endif
    if (j0 >= n) return;
    t += j0 * step;
    acc += j0;
    n -= j0;
    for (ptrdiff_t j = 0; j < n; ++j) acc[j] = 0;
    for (ptrdiff_t a = 0; a < kr; ++a) {
        const FK_T *row = t + a * ld;
        const FK_T *k = ker + a * kc;
        for (ptrdiff_t b = 0; b < kc; ++b) {
            const FK_T kb = k[b];
            const FK_T *r = row + b;
            if (step == 1) {
                for (ptrdiff_t j = 0; j < n; ++j) acc[j] += r[j] * kb;
            } else {
                for (ptrdiff_t j = 0; j < n; ++j) acc[j] += r[j * step] * kb;
            }
        }
    }
}

int FK_FN(fk_correlate2d_rows)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *ker,
                               FK_T fill, FK_T *out, ptrdiff_t row_begin, ptrdiff_t row_end,
                               int store)
{
    if (row_end <= row_begin) return 0;
    const ptrdiff_t nrows = row_end - row_begin;
    const ptrdiff_t nr = (nrows - 1) * g->step0 + g->k_rows;  /* image rows touched */

    const ptrdiff_t max_nc = fk_col_block(g) < g->out_cols ? fk_col_block(g) : g->out_cols;

    FK_T *buf = (FK_T *)malloc((size_t)fk_correlate2d_scratch(g, nrows) * sizeof(FK_T));
    if (buf == NULL) return -1;
    FK_T *acc = buf;                 /* max_nc elements */
    FK_T *tilebuf = buf + max_nc;    /* nr x nq elements */

    for (ptrdiff_t c0 = 0, c1; c0 < g->out_cols; c0 = c1) {
        c1 = fk_col_block_end(g, c0);
        const ptrdiff_t nc = c1 - c0;
        const ptrdiff_t r_lo = g->off0 + row_begin * g->step0;
        const ptrdiff_t q_lo = g->off1 + c0 * g->step1;
        const ptrdiff_t nq = (nc - 1) * g->step1 + g->k_cols;

        const FK_T *tile;
        ptrdiff_t ld;
        if (r_lo >= 0 && r_lo + nr <= g->in_rows && q_lo >= 0 && q_lo + nq <= g->in_cols
            && g->in_s1 == 1) {
            /* interior block of a row-contiguous image: read it in place */
            tile = img + r_lo * g->in_s0 + q_lo;
            ld = g->in_s0;
        } else {
            FK_FN(gather)(g, img, fill, r_lo, nr, q_lo, nq, tilebuf);
            tile = tilebuf;
            ld = nq;
        }

        for (ptrdiff_t i = row_begin; i < row_end; ++i) {
            FK_T *o = out + i * g->out_s0 + c0 * g->out_s1;
            const ptrdiff_t os = g->out_s1;
            const FK_T *row = tile + (i - row_begin) * g->step0 * ld;
            if (store == FK_STORE_SET && os == 1) {
                FK_FN(correlate_row)(row, ld, ker, g->k_rows, g->k_cols, g->step1, nc, o);
                continue;
            }
            FK_FN(correlate_row)(row, ld, ker, g->k_rows, g->k_cols, g->step1, nc, acc);
            if (store == FK_STORE_SET) {
                for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] = acc[j];
            } else if (store == FK_STORE_ADD) {
                for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] += acc[j];
            } else {
                for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] -= acc[j];
            }
        }
    }
    free(buf);
    return 0;
}

#undef FK_FN
#undef FK_CAT
#undef FK_CAT_
