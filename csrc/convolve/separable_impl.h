/* Separable correlation core, included once per element type by correlate2d.c
 * (after correlate2d_impl.h, whose gather it uses) with FK_T and FK_SUFFIX
 * defined.  See fk_correlate2d.h, fk_sepcorr2d_tile_*. */

#define FK_CAT_(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT_(a, b)
#define FK_FN(name) FK_CAT(name, FK_SUFFIX)

/* t[j] = sum_p col[p] * buf[p*ld + j], j < n, summed over p in order. */
FK_SIMD_CLONES
static void FK_FN(sep_column_pass)(const FK_T *FK_RESTRICT buf, ptrdiff_t ld,
                                   const FK_T *FK_RESTRICT col, ptrdiff_t kr, ptrdiff_t n,
                                   FK_T *FK_RESTRICT t)
{
    const FK_T c0 = col[0];
    for (ptrdiff_t j = 0; j < n; ++j) t[j] = c0 * buf[j];
    for (ptrdiff_t p = 1; p < kr; ++p) {
        const FK_T c = col[p];
        const FK_T *FK_RESTRICT g = buf + p * ld;
        for (ptrdiff_t j = 0; j < n; ++j) t[j] += c * g[j];
    }
}

/* acc[b] = sum_q row[q] * t[b*step + q], b < n, summed over q in order. */
FK_SIMD_CLONES
static void FK_FN(sep_row_pass)(const FK_T *FK_RESTRICT t, const FK_T *FK_RESTRICT row,
                                ptrdiff_t kc, ptrdiff_t step, ptrdiff_t n,
                                FK_T *FK_RESTRICT acc)
{
    const FK_T r0 = row[0];
    if (step == 1) {
        for (ptrdiff_t b = 0; b < n; ++b) acc[b] = r0 * t[b];
        for (ptrdiff_t q = 1; q < kc; ++q) {
            const FK_T r = row[q];
            const FK_T *FK_RESTRICT s = t + q;
            for (ptrdiff_t b = 0; b < n; ++b) acc[b] += r * s[b];
        }
    } else {
        for (ptrdiff_t b = 0; b < n; ++b) acc[b] = r0 * t[b * step];
        for (ptrdiff_t q = 1; q < kc; ++q) {
            const FK_T r = row[q];
            const FK_T *FK_RESTRICT s = t + q;
            for (ptrdiff_t b = 0; b < n; ++b) acc[b] += r * s[b * step];
        }
    }
}

int FK_FN(fk_sepcorr2d_tile)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *col,
                             const FK_T *row, FK_T fill, FK_T *out, ptrdiff_t row_begin,
                             ptrdiff_t row_end, ptrdiff_t col_begin, ptrdiff_t col_end,
                             int store)
{
    if (row_end <= row_begin || col_end <= col_begin) return 0;
    const ptrdiff_t n_rows = row_end - row_begin, n_cols = col_end - col_begin;
    const ptrdiff_t kr = g->k_rows, kc = g->k_cols;
    /* the image columns the tile reads, and its rows: all of them at once where
     * windows of neighbouring output rows overlap, else one window per row */
    const ptrdiff_t nq = (n_cols - 1) * g->step1 + kc;
    const ptrdiff_t q_lo = g->off1 + col_begin * g->step1;
    const int whole = g->step0 < kr;
    const ptrdiff_t nr = whole ? (n_rows - 1) * g->step0 + kr : kr;
    FK_T *buf = (FK_T *)malloc((size_t)(nr * nq + nq + n_cols) * sizeof(FK_T));
    if (buf == NULL) return -1;
    FK_T *t = buf + nr * nq, *acc = t + nq;
    if (whole) FK_FN(gather)(g, img, fill, g->off0 + row_begin * g->step0, nr, q_lo, nq, buf);
    for (ptrdiff_t a = 0; a < n_rows; ++a) {
        const FK_T *rows;
        if (whole) {
            rows = buf + a * g->step0 * nq;
        } else {
            FK_FN(gather)(g, img, fill, g->off0 + (row_begin + a) * g->step0, kr, q_lo, nq, buf);
            rows = buf;
        }
        FK_FN(sep_column_pass)(rows, nq, col, kr, nq, t);
        FK_FN(sep_row_pass)(t, row, kc, g->step1, n_cols, acc);
        FK_T *dst = out + (row_begin + a) * g->out_s0 + col_begin * g->out_s1;
        if (store == FK_STORE_SET) {
            for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] = acc[b];
        } else if (store == FK_STORE_ADD) {
            for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] += acc[b];
        } else {
            for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] -= acc[b];
        }
    }
    free(buf);
    return 0;
}

#undef FK_FN
#undef FK_CAT
#undef FK_CAT_
