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

/* acc[j] = sum_{a, b} t[a*ld + j*step + b] * ker[a*kc + b] for j < n, summed over
 * a and then b: the kernel for strided output and for blocks narrower than one
 * SIMD block, one copy per SIMD target. */
FK_SIMD_CLONES
static void FK_FN(correlate_row)(const FK_T *FK_RESTRICT t, ptrdiff_t ld,
                                 const FK_T *FK_RESTRICT ker, ptrdiff_t kr, ptrdiff_t kc,
                                 ptrdiff_t step, ptrdiff_t n, FK_T *FK_RESTRICT acc)
{
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

/* Output rows [row_begin, row_end), all of whose windows lie inside the image
 * rows or none of whose do, by columns [col_begin, col_end), column block
 * boundaries, with scratch buf (fk_correlate2d_scratch elements). */
static void FK_FN(rows_part)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *ker,
                             FK_T fill, FK_T *out, ptrdiff_t row_begin, ptrdiff_t row_end,
                             ptrdiff_t col_begin, ptrdiff_t col_end, int store, FK_T *buf)
{
    const ptrdiff_t nrows = row_end - row_begin;
    const ptrdiff_t nr = (nrows - 1) * g->step0 + g->k_rows;  /* image rows touched */
    const ptrdiff_t max_nc = fk_col_block(g) < col_end - col_begin ? fk_col_block(g)
                                                                    : col_end - col_begin;
    FK_T *acc = buf;                 /* 4 rows of max_nc elements */
    FK_T *tilebuf = buf + 4 * max_nc;  /* nr x nq elements */
    const int isa = FK_FN(simd_isa)(g->isa);
    const ptrdiff_t simd_cols = fk_isa_width(isa, sizeof(FK_T));

    for (ptrdiff_t c0 = col_begin, c1; c0 < col_end; c0 = c1) {
        c1 = fk_correlate2d_col_end(g, c0);
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

        /* The kernel that computes an output depends on the column block alone,
         * never on the row tiles, so results do not depend on the thread count. */
        const int simd = g->step1 == 1 && simd_cols > 0 && nc >= simd_cols;
        const ptrdiff_t os = g->out_s1;
        if (simd && store == FK_STORE_SET && os == 1) {
            FK_FN(simd_rows)(isa, tile, ld, nr, g->step0, ker, g->k_rows, g->k_cols, nrows, nc,
                             out + row_begin * g->out_s0 + c0, g->out_s0);
            continue;
        }
        for (ptrdiff_t i = row_begin, m; i < row_end; i += m) {
            const FK_T *row = tile + (i - row_begin) * g->step0 * ld;
            m = 1;
            if (simd) {
                m = row_end - i < 4 ? row_end - i : 4;
                FK_FN(simd_rows)(isa, row, ld, nr - (i - row_begin) * g->step0, g->step0, ker,
                                 g->k_rows, g->k_cols, m, nc, acc, max_nc);
            } else if (store == FK_STORE_SET && os == 1) {
                FK_FN(correlate_row)(row, ld, ker, g->k_rows, g->k_cols, g->step1, nc,
                                     out + i * g->out_s0 + c0);
                continue;
            } else {
                FK_FN(correlate_row)(row, ld, ker, g->k_rows, g->k_cols, g->step1, nc, acc);
            }
            for (ptrdiff_t r = 0; r < m; ++r) {
                FK_T *o = out + (i + r) * g->out_s0 + c0 * os;
                const FK_T *s = acc + r * max_nc;
                if (store == FK_STORE_SET) {
                    for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] = s[j];
                } else if (store == FK_STORE_ADD) {
                    for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] += s[j];
                } else {
                    for (ptrdiff_t j = 0; j < nc; ++j) o[j * os] -= s[j];
                }
            }
        }
    }
}

int FK_FN(fk_correlate2d_tile)(const fk_corr2d_geom *g, const FK_T *img, const FK_T *ker,
                               FK_T fill, FK_T *out, ptrdiff_t row_begin, ptrdiff_t row_end,
                               ptrdiff_t col_begin, ptrdiff_t col_end, int store)
{
    if (row_end <= row_begin || col_end <= col_begin) return 0;
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
        FK_FN(rows_part)(g, img, ker, fill, out, r0, r1, col_begin, col_end, store, buf);
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
