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

/* acc[j] = sum_{a, b} t[a*ld + j + b] * ker[a*kc + b] for j < n, summed over a
 * and then b: the kernel for blocks narrower than one SIMD block, one copy per
 * SIMD target. */
FK_SIMD_CLONES
static void FK_FN(correlate_row)(const FK_T *FK_RESTRICT t, ptrdiff_t ld,
                                 const FK_T *FK_RESTRICT ker, ptrdiff_t kr, ptrdiff_t kc,
                                 ptrdiff_t n, FK_T *FK_RESTRICT acc)
{
    for (ptrdiff_t j = 0; j < n; ++j) acc[j] = 0;
    for (ptrdiff_t a = 0; a < kr; ++a) {
        const FK_T *row = t + a * ld;
        const FK_T *k = ker + a * kc;
        for (ptrdiff_t b = 0; b < kc; ++b) {
            const FK_T kb = k[b];
            const FK_T *r = row + b;
            for (ptrdiff_t j = 0; j < n; ++j) acc[j] += r[j] * kb;
        }
    }
}

/* acc[j] = sum_{a, b} E[a][j*s + b] * ker[a*kc + b] for j < n, summed over a and
 * then b as correlate_row, from rows split by split_phases (ph: the window's
 * first row): the strided kernel for blocks narrower than one SIMD block. */
FK_SIMD_CLONES
static void FK_FN(correlate_row_phased)(const FK_T *FK_RESTRICT ph, ptrdiff_t len,
                                        ptrdiff_t n_ph, ptrdiff_t s,
                                        const FK_T *FK_RESTRICT ker, ptrdiff_t kr,
                                        ptrdiff_t kc, ptrdiff_t n, FK_T *FK_RESTRICT acc)
{
    for (ptrdiff_t j = 0; j < n; ++j) acc[j] = 0;
    for (ptrdiff_t a = 0; a < kr; ++a) {
        for (ptrdiff_t b = 0, p = 0, q = 0; b < kc; ++b) {
            const FK_T kb = ker[a * kc + b];
            const FK_T *r = ph + (a * n_ph + p) * len + q;   /* p = b % s, q = b / s */
            if (++p == s) p = 0, ++q;
            for (ptrdiff_t j = 0; j < n; ++j) acc[j] += r[j] * kb;
        }
    }
}

/* The SIMD kernels of this type.  64-bit integer multiplies are single
 * instructions only in AVX-512; elsewhere they are emulated, slower than the
 * plain loop, so integers get the AVX-512 kernel alone. */
#if defined(FK_VECTOR_EXT) && !defined(FK_INTEGER)
#define FK_WITH_BASE 1
#define FK_ISA base
#define FK_ISA_ATTR
#define FK_ISA_BYTES 16
#define FK_ISA_V FK_BASE_V
#include "correlate2d_simd.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_ISA_BYTES
#undef FK_ISA_V
#endif
#if defined(FK_X86_DISPATCH) && !defined(FK_INTEGER)
#define FK_WITH_AVX2 1
#define FK_ISA avx2
#define FK_ISA_ATTR __attribute__((target("arch=x86-64-v3")))
#define FK_ISA_BYTES 32
#define FK_ISA_V FK_AVX2_V
#include "correlate2d_simd.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_ISA_BYTES
#undef FK_ISA_V
#endif
#if defined(FK_X86_DISPATCH)
#define FK_WITH_AVX512 1
#define FK_ISA avx512
#define FK_ISA_ATTR __attribute__((target("arch=x86-64-v4")))
#define FK_ISA_BYTES 64
#define FK_ISA_V FK_AVX512_V
#include "correlate2d_simd.h"
#undef FK_ISA
#undef FK_ISA_ATTR
#undef FK_ISA_BYTES
#undef FK_ISA_V
#endif

/* The kernel family this type uses under the selected ISA. */
static int FK_FN(simd_isa)(int isa)
{
    switch (isa) {
#ifdef FK_WITH_AVX512
    case FK_ISA_AVX512: return isa;
#endif
#ifdef FK_WITH_AVX2
    case FK_ISA_AVX2: return isa;
#endif
#ifdef FK_WITH_BASE
    case FK_ISA_BASE: return isa;
#endif
    default: return FK_ISA_SCALAR;
    }
}

/* The unit-column-step kernel of simd_isa's choice (not scalar): see fk_rows. */
static void FK_FN(simd_rows)(int isa, const FK_T *t, ptrdiff_t ld, ptrdiff_t t_rows,
                             ptrdiff_t rstep, const FK_T *ker, ptrdiff_t kr, ptrdiff_t kc,
                             ptrdiff_t m, ptrdiff_t n, FK_T *out, ptrdiff_t os)
{
    switch (isa) {
#ifdef FK_WITH_AVX512
    case FK_ISA_AVX512:
        FK_CAT(FK_FN(fk_rows), avx512)(t, ld, t_rows, rstep, ker, kr, kc, m, n, out, os);
        return;
#endif
#ifdef FK_WITH_AVX2
    case FK_ISA_AVX2:
        FK_CAT(FK_FN(fk_rows), avx2)(t, ld, t_rows, rstep, ker, kr, kc, m, n, out, os);
        return;
#endif
#ifdef FK_WITH_BASE
    case FK_ISA_BASE:
        FK_CAT(FK_FN(fk_rows), base)(t, ld, t_rows, rstep, ker, kr, kc, m, n, out, os);
        return;
#endif
    default:
        return;
    }
}

/* The strided kernel of simd_isa's choice (not scalar): see fk_row_phased. */
static void FK_FN(simd_row_phased)(int isa, const FK_T *ph, ptrdiff_t len, ptrdiff_t n_ph,
                                   ptrdiff_t s, const FK_T *ker, ptrdiff_t kr, ptrdiff_t kc,
                                   int nf, ptrdiff_t n, FK_T *const *dst)
{
    switch (isa) {
#ifdef FK_WITH_AVX512
    case FK_ISA_AVX512:
        FK_CAT(FK_FN(fk_row_phased), avx512)(ph, len, n_ph, s, ker, kr, kc, nf, n, dst);
        return;
#endif
#ifdef FK_WITH_AVX2
    case FK_ISA_AVX2:
        FK_CAT(FK_FN(fk_row_phased), avx2)(ph, len, n_ph, s, ker, kr, kc, nf, n, dst);
        return;
#endif
#ifdef FK_WITH_BASE
    case FK_ISA_BASE:
        FK_CAT(FK_FN(fk_row_phased), base)(ph, len, n_ph, s, ker, kr, kc, nf, n, dst);
        return;
#endif
    default:
        return;
    }
}

/* Strided output (column step s > 1) reads every s-th image element.  The
 * tile's rows are first split by phase, column q going to phase q % s at
 * position q / s, for the phases p < n_ph = min(s, kc) that the taps read:
 *   ph[(r*n_ph + p)*len + j] = t[r*ld + j*s + p]      (j*s + p < nq)
 * so that tap b of output j reads phase b % s at position j + b / s: unit
 * stride again, for vector loads.  The split is made once per tile and serves
 * every kernel of a bank.  Rows no window reads (with row step s0 >= kr, those
 * with r % s0 >= kr) are skipped. */
static void FK_FN(split_phases)(int isa, const FK_T *FK_RESTRICT t, ptrdiff_t ld,
                                ptrdiff_t nr, ptrdiff_t nq, ptrdiff_t step0, ptrdiff_t kr,
                                ptrdiff_t s, ptrdiff_t n_ph, ptrdiff_t len,
                                FK_T *FK_RESTRICT ph)
{
    for (ptrdiff_t r = 0; r < nr; ++r) {
        if (r % step0 >= kr) continue;
        const FK_T *src = t + r * ld;
        FK_T *dst = ph + r * n_ph * len;
        /* whole groups of s columns first, read in order; then the last group */
        const ptrdiff_t whole = nq / s < len ? nq / s : len;
        ptrdiff_t done = 0;
#ifdef FK_WITH_AVX512
        if (isa == FK_ISA_AVX512)
            done = FK_CAT(FK_FN(fk_split_row), avx512)(src, whole, s, n_ph, len, dst);
#endif
        (void)isa;
        for (ptrdiff_t j = done; j < whole; ++j) {
            const FK_T *g = src + j * s;
            for (ptrdiff_t p = 0; p < n_ph; ++p) dst[p * len + j] = g[p];
        }
        for (ptrdiff_t p = 0; p < n_ph; ++p)
            if (whole < len && whole * s + p < nq) dst[p * len + whole] = src[whole * s + p];
    }
}

/* o[j * os] = acc[j], += or -= (store), for j < n. */
static void FK_FN(store_row)(FK_T *o, ptrdiff_t os, const FK_T *acc, ptrdiff_t n, int store)
{
    if (store == FK_STORE_SET) {
        for (ptrdiff_t j = 0; j < n; ++j) o[j * os] = acc[j];
    } else if (store == FK_STORE_ADD) {
        for (ptrdiff_t j = 0; j < n; ++j) o[j * os] += acc[j];
    } else {
        for (ptrdiff_t j = 0; j < n; ++j) o[j * os] -= acc[j];
    }
}

/* Output rows [row_begin, row_end), all of whose windows lie inside the image
 * rows or none of whose do, by columns [col_begin, col_end), column block
 * boundaries, for each of the n_ker kernels (ker + f * kr * kc, into
 * out + f * out_step), with scratch buf (fk_correlate2d_scratch elements).  Each
 * block of the image is read (gathered, split) once for the whole bank. */
static void FK_FN(rows_part)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *ker,
                             ptrdiff_t n_ker, FK_T fill, FK_T *out, ptrdiff_t out_step,
                             ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                             ptrdiff_t col_end, int store, FK_T *buf)
{
    const ptrdiff_t nrows = row_end - row_begin;
    const ptrdiff_t kr = g->k_rows, kc = g->k_cols, s = g->step1;
    const ptrdiff_t nr = (nrows - 1) * g->step0 + kr;  /* image rows touched */
    const ptrdiff_t max_nc = fk_col_block(g) < col_end - col_begin ? fk_col_block(g)
                                                                    : col_end - col_begin;
    const ptrdiff_t n_ph = s < kc ? s : kc;
    FK_T *acc = buf;                                    /* 4 rows of max_nc elements */
    FK_T *tilebuf = acc + 4 * max_nc;                   /* nr x nq elements */
    FK_T *ph = tilebuf + nr * ((max_nc - 1) * s + kc);  /* strided: nr x n_ph x len */
    const int isa = FK_FN(simd_isa)(g->isa);
    const ptrdiff_t simd_cols = fk_isa_width(isa, sizeof(FK_T));

    for (ptrdiff_t c0 = col_begin, c1; c0 < col_end; c0 = c1) {
        c1 = fk_correlate2d_col_end(g, c0);
        const ptrdiff_t nc = c1 - c0;
        const ptrdiff_t r_lo = g->off0 + row_begin * g->step0;
        const ptrdiff_t q_lo = g->off1 + c0 * s;
        const ptrdiff_t nq = (nc - 1) * s + kc;
        const ptrdiff_t len = nc + (kc - 1) / s;

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

        /* The kernel that computes an output depends on the column block alone,
         * never on the row tiles, so results do not depend on the thread count. */
        const int simd = simd_cols > 0 && nc >= simd_cols;
        const ptrdiff_t os = g->out_s1;
        const int direct = store == FK_STORE_SET && os == 1;
        if (s > 1) {
            FK_FN(split_phases)(isa, tile, ld, nr, nq, g->step0, kr, s, n_ph, len, ph);
            /* up to four kernels at once, sharing each vector of the image */
            for (ptrdiff_t f0 = 0; f0 < n_ker; f0 += 4) {
                const int nf = n_ker - f0 < 4 ? (int)(n_ker - f0) : 4;
                const FK_T *kf = ker + f0 * kr * kc;
                for (ptrdiff_t i = row_begin; i < row_end; ++i) {
                    const FK_T *pi = ph + (i - row_begin) * g->step0 * n_ph * len;
                    FK_T *dst[4];
                    for (int f = 0; f < nf; ++f)
                        dst[f] = direct ? out + (f0 + f) * out_step + i * g->out_s0 + c0
                                        : acc + f * max_nc;
                    if (simd) {
                        FK_FN(simd_row_phased)(isa, pi, len, n_ph, s, kf, kr, kc, nf, nc, dst);
                    } else {
                        for (int f = 0; f < nf; ++f)
                            FK_FN(correlate_row_phased)(pi, len, n_ph, s, kf + f * kr * kc, kr,
                                                        kc, nc, dst[f]);
                    }
                    if (direct) continue;
                    for (int f = 0; f < nf; ++f)
                        FK_FN(store_row)(out + (f0 + f) * out_step + i * g->out_s0 + c0 * os,
                                         os, acc + f * max_nc, nc, store);
                }
            }
            continue;
        }
        for (ptrdiff_t f = 0; f < n_ker; ++f) {
            const FK_T *kf = ker + f * kr * kc;
            FK_T *of = out + f * out_step;
            if (simd && direct) {
                FK_FN(simd_rows)(isa, tile, ld, nr, g->step0, kf, kr, kc, nrows, nc,
                                 of + row_begin * g->out_s0 + c0, g->out_s0);
                continue;
            }
            for (ptrdiff_t i = row_begin, m; i < row_end; i += m) {
                const ptrdiff_t r = (i - row_begin) * g->step0;  /* the window's first row */
                m = 1;
                if (simd) {
                    m = row_end - i < 4 ? row_end - i : 4;
                    FK_FN(simd_rows)(isa, tile + r * ld, ld, nr - r, g->step0, kf, kr, kc, m,
                                     nc, acc, max_nc);
                } else if (direct) {
                    FK_FN(correlate_row)(tile + r * ld, ld, kf, kr, kc, nc,
                                         of + i * g->out_s0 + c0);
                    continue;
                } else {
                    FK_FN(correlate_row)(tile + r * ld, ld, kf, kr, kc, nc, acc);
                }
                for (ptrdiff_t q = 0; q < m; ++q)
                    FK_FN(store_row)(of + (i + q) * g->out_s0 + c0 * os, os, acc + q * max_nc,
                                     nc, store);
            }
        }
    }
}

int FK_FN(fk_correlate2d_tile)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *ker,
                               ptrdiff_t n_ker, FK_T fill, FK_T *out, ptrdiff_t out_step,
                               ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                               ptrdiff_t col_end, int store)
{
    if (row_end <= row_begin || col_end <= col_begin || n_ker <= 0) return 0;
    FK_T *buf = (FK_T *)malloc((size_t)fk_correlate2d_scratch(g, row_end - row_begin,
                                                              col_end - col_begin)
                               * sizeof(FK_T));
    if (buf == NULL) return -1;
    /* output rows [i_lo, i_hi) have windows inside the image: apart from the
     * rows outside it, so that their blocks are read in place, not gathered */
    ptrdiff_t i_lo, i_hi;
    fk_inside(g->off0, g->step0, g->in_rows, g->k_rows, &i_lo, &i_hi);
    for (ptrdiff_t r0 = row_begin, r1; r0 < row_end; r0 = r1) {
        r1 = row_end;
        if (r0 < i_lo && i_lo < r1) r1 = i_lo;
        if (r0 < i_hi && i_hi < r1) r1 = i_hi;
        FK_FN(rows_part)(g, img, ker, n_ker, fill, out, out_step, r0, r1, col_begin, col_end,
                         store, buf);
    }
    free(buf);
    return 0;
}

#undef FK_WITH_BASE
#undef FK_WITH_AVX2
#undef FK_WITH_AVX512
#undef FK_FN
#undef FK_CAT
#undef FK_CAT_
