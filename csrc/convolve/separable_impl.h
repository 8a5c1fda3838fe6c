/* Separable correlation core, included once per element type by correlate2d.c
 * (after correlate2d_impl.h, whose gather it uses) with FK_T and FK_SUFFIX
 * defined.  See fk_correlate2d.h, fk_sepcorr2d_tile_*. */

#define FK_CAT_(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT_(a, b)
#define FK_FN(name) FK_CAT(name, FK_SUFFIX)

/* Elements of a tile's gather buffer, at most, where the filter allows (one
 * column of a window's rows is the least): 32 MiB of doubles */
#ifndef FK_SEP_GATHER
#define FK_SEP_GATHER ((ptrdiff_t)1 << 22)
#endif

/* Elements of one register block: 256 bytes, 4 AVX-512 or 8 AVX2 registers */
#define FK_SEP_CHUNK ((ptrdiff_t)(256 / sizeof(FK_T)))

/* t[j] = sum_p col[p] * buf[p*ld + j] for j in [j0, n), from zero, summed over p
 * in order. */
static void FK_FN(sep_column_pass_tail)(const FK_T *FK_RESTRICT buf, ptrdiff_t ld,
                                        const FK_T *FK_RESTRICT col, ptrdiff_t kr,
                                        ptrdiff_t j0, ptrdiff_t n, FK_T *FK_RESTRICT t)
{
    for (ptrdiff_t j = j0; j < n; ++j) t[j] = 0;
    for (ptrdiff_t p = 0; p < kr; ++p) {
        const FK_T c = col[p];
        const FK_T *FK_RESTRICT g = buf + p * ld;
        for (ptrdiff_t j = j0; j < n; ++j) t[j] += c * g[j];
    }
}

/* t[j] = sum_p col[p] * buf[p*ld + j], j < n, from zero, summed over p in order;
 * each block of FK_SEP_CHUNK outputs stays in registers through every p. */
FK_SIMD_CLONES
static void FK_FN(sep_column_pass)(const FK_T *FK_RESTRICT buf, ptrdiff_t ld,
                                   const FK_T *FK_RESTRICT col, ptrdiff_t kr, ptrdiff_t n,
                                   FK_T *FK_RESTRICT t)
{
    ptrdiff_t j0 = 0;
    for (; j0 + FK_SEP_CHUNK <= n; j0 += FK_SEP_CHUNK) {
        FK_T acc[FK_SEP_CHUNK];
        for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK; ++jj) acc[jj] = 0;
        for (ptrdiff_t p = 0; p < kr; ++p) {
            const FK_T c = col[p];
            const FK_T *FK_RESTRICT g = buf + p * ld + j0;
            for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK; ++jj) acc[jj] += c * g[jj];
        }
        for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK; ++jj) t[j0 + jj] = acc[jj];
    }
    FK_FN(sep_column_pass_tail)(buf, ld, col, kr, j0, n, t);
}

/* The column pass for four output rows at once, whose windows start step rows
 * apart (step < kr): t[k*n + j] = sum_p col[p] * buf[(k*step + p)*ld + j], k < 4.
 * Each image row is loaded once for the four; every output is summed over p in
 * order, as sep_column_pass sums it, so either gives the same result. */
#define FK_SEP_CHUNK4 ((ptrdiff_t)(512 / sizeof(FK_T)))
FK_SIMD_CLONES
static void FK_FN(sep_column_pass4)(const FK_T *FK_RESTRICT buf, ptrdiff_t ld,
                                    const FK_T *FK_RESTRICT col, ptrdiff_t kr, ptrdiff_t step,
                                    ptrdiff_t n, FK_T *FK_RESTRICT t)
{
    const ptrdiff_t rows = 3 * step + kr;
    ptrdiff_t j0 = 0;
    for (; j0 + FK_SEP_CHUNK4 <= n; j0 += FK_SEP_CHUNK4) {
        FK_T a0[FK_SEP_CHUNK4], a1[FK_SEP_CHUNK4], a2[FK_SEP_CHUNK4], a3[FK_SEP_CHUNK4];
        for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) a0[jj] = a1[jj] = a2[jj] = a3[jj] = 0;
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const FK_T *FK_RESTRICT g = buf + i * ld + j0;
            const ptrdiff_t p0 = i, p1 = i - step, p2 = i - 2 * step, p3 = i - 3 * step;
            if (p3 >= 0 && p0 < kr) {  /* all four windows hold row i */
                const FK_T c0 = col[p0], c1 = col[p1], c2 = col[p2], c3 = col[p3];
                for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) {
                    const FK_T v = g[jj];
                    a0[jj] += c0 * v;
                    a1[jj] += c1 * v;
                    a2[jj] += c2 * v;
                    a3[jj] += c3 * v;
                }
                continue;
            }
            if (p0 < kr) {
                const FK_T c = col[p0];
                for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) a0[jj] += c * g[jj];
            }
            if (p1 >= 0 && p1 < kr) {
                const FK_T c = col[p1];
                for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) a1[jj] += c * g[jj];
            }
            if (p2 >= 0 && p2 < kr) {
                const FK_T c = col[p2];
                for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) a2[jj] += c * g[jj];
            }
            if (p3 >= 0 && p3 < kr) {
                const FK_T c = col[p3];
                for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) a3[jj] += c * g[jj];
            }
        }
        for (ptrdiff_t jj = 0; jj < FK_SEP_CHUNK4; ++jj) {
            t[j0 + jj] = a0[jj];
            t[n + j0 + jj] = a1[jj];
            t[2 * n + j0 + jj] = a2[jj];
            t[3 * n + j0 + jj] = a3[jj];
        }
    }
    if (j0 < n)
        for (ptrdiff_t k = 0; k < 4; ++k)
            FK_FN(sep_column_pass_tail)(buf + k * step * ld, ld, col, kr, j0, n, t + k * n);
}

/* acc[b] = sum_q row[q] * t[b*step + q], b < n, summed over q in order. */
FK_SIMD_CLONES
static void FK_FN(sep_row_pass)(const FK_T *FK_RESTRICT t, const FK_T *FK_RESTRICT row,
                                ptrdiff_t kc, ptrdiff_t step, ptrdiff_t n,
                                FK_T *FK_RESTRICT acc)
{
    if (step == 1) {
        ptrdiff_t b0 = 0;
        for (; b0 + FK_SEP_CHUNK <= n; b0 += FK_SEP_CHUNK) {
            FK_T a[FK_SEP_CHUNK];
            for (ptrdiff_t bb = 0; bb < FK_SEP_CHUNK; ++bb) a[bb] = row[0] * t[b0 + bb];
            for (ptrdiff_t q = 1; q < kc; ++q) {
                const FK_T r = row[q];
                const FK_T *FK_RESTRICT s = t + b0 + q;
                for (ptrdiff_t bb = 0; bb < FK_SEP_CHUNK; ++bb) a[bb] += r * s[bb];
            }
            for (ptrdiff_t bb = 0; bb < FK_SEP_CHUNK; ++bb) acc[b0 + bb] = a[bb];
        }
        for (ptrdiff_t b = b0; b < n; ++b) acc[b] = row[0] * t[b];
        for (ptrdiff_t q = 1; q < kc; ++q) {
            const FK_T r = row[q];
            for (ptrdiff_t b = b0; b < n; ++b) acc[b] += r * t[b + q];
        }
    } else {
        for (ptrdiff_t b = 0; b < n; ++b) acc[b] = row[0] * t[b * step];
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
    /* the gather buffer holds at most FK_SEP_GATHER elements where the filter
     * allows: the tile's rows at once, or one window's rows in column chunks */
    const ptrdiff_t whole_rows = (n_rows - 1) * g->step0 + kr;
    const int whole = g->step0 < kr && whole_rows <= FK_SEP_GATHER / nq;
    ptrdiff_t cw = nq;  /* columns gathered at once, one window at a time */
    if (!whole && kr > FK_SEP_GATHER / nq) cw = FK_SEP_GATHER / kr > 0 ? FK_SEP_GATHER / kr : 1;
    const ptrdiff_t n_buf = whole ? whole_rows * nq : kr * cw;
    FK_T *buf = (FK_T *)malloc((size_t)(n_buf + 4 * nq + n_cols) * sizeof(FK_T));
    if (buf == NULL) return -1;
    FK_T *t = buf + n_buf, *acc = t + 4 * nq;  /* t: four rows of nq */
    /* a tile whose rows and columns all lie inside a unit-stride image is read
     * in place; others are gathered with the boundary rule */
    const ptrdiff_t r_lo = g->off0 + row_begin * g->step0;
    const ptrdiff_t r_span = (n_rows - 1) * g->step0 + kr;
    const int inside = g->in_s1 == 1 && r_lo >= 0 && r_span <= g->in_rows - r_lo
                       && q_lo >= 0 && nq <= g->in_cols - q_lo;
    if (whole && !inside) FK_FN(gather)(g, img, fill, r_lo, whole_rows, q_lo, nq, buf);
    for (ptrdiff_t a = 0; a < n_rows; ) {
        const FK_T *rows;
        ptrdiff_t ld = nq;
        if (inside) {
            rows = img + (r_lo + a * g->step0) * g->in_s0 + q_lo;
            ld = g->in_s0;
        } else if (whole) {
            rows = buf + a * g->step0 * nq;
        } else {
            rows = NULL;  /* gathered below, chunk by chunk */
        }
        /* four output rows at once where their windows overlap */
        const ptrdiff_t group = (inside || whole) && a + 4 <= n_rows ? 4 : 1;
        if (group == 4) {
            FK_FN(sep_column_pass4)(rows, ld, col, kr, g->step0, nq, t);
        } else if (rows) {
            FK_FN(sep_column_pass)(rows, ld, col, kr, nq, t);
        } else {
            for (ptrdiff_t j0 = 0; j0 < nq; j0 += cw) {
                const ptrdiff_t w = cw < nq - j0 ? cw : nq - j0;
                FK_FN(gather)(g, img, fill, r_lo + a * g->step0, kr, q_lo + j0, w, buf);
                FK_FN(sep_column_pass)(buf, w, col, kr, w, t + j0);
            }
        }
        for (ptrdiff_t k = 0; k < group; ++k, ++a) {
            FK_T *dst = out + (row_begin + a) * g->out_s0 + col_begin * g->out_s1;
            if (store == FK_STORE_SET && g->out_s1 == 1) {  /* straight into the output */
                FK_FN(sep_row_pass)(t + k * nq, row, kc, g->step1, n_cols, dst);
                continue;
            }
            FK_FN(sep_row_pass)(t + k * nq, row, kc, g->step1, n_cols, acc);
            if (store == FK_STORE_SET) {
                for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] = acc[b];
            } else if (store == FK_STORE_ADD) {
                for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] += acc[b];
            } else {
                for (ptrdiff_t b = 0; b < n_cols; ++b) dst[b * g->out_s1] -= acc[b];
            }
        }
    }
    free(buf);
    return 0;
}

#undef FK_SEP_CHUNK
#undef FK_SEP_CHUNK4
#undef FK_FN
#undef FK_CAT
#undef FK_CAT_
