/* The FFT route's tile, for one precision: FK_T is float or double, FK_SUFFIX
 * f32 or f64 (included twice by fftconv.c).  See fk_fftconv.h. */

#define FK_CAT2(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT2(a, b)
#define FK_FN(name) FK_CAT(fk_fftconv_##name, FK_SUFFIX)

/* Columns of one strip of a batched transform: 1 KiB of each plane's row */
#ifndef FK_STRIP_BYTES
#define FK_STRIP_BYTES 512
#endif
#define FK_STRIP ((ptrdiff_t)(FK_STRIP_BYTES / sizeof(FK_T)))

/* n rows of w elements (row length ld), in place: radix-2 decimation in
 * frequency, natural order in, bit-reversed order out, with stages fused in
 * pairs (each pass over the rows does two; the arithmetic is radix-2's).  The
 * table holds w_n^u = exp(-2 pi i u / n) for u < n/2. */
/* the rows a butterfly loop reads and writes never overlap */
#if defined(__clang__)
#define FK_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FK_IVDEP _Pragma("GCC ivdep")
#else
#define FK_IVDEP
#endif
#define FK_CMUL(xr, xi, cr, ci, outr, outi) \
    do { const FK_T r_ = (xr) * (cr) - (xi) * (ci); outi = (xr) * (ci) + (xi) * (cr); outr = r_; } while (0)

/* The radix-2 stage of span 1, whose twiddles are all 1 (the same forward and
 * inverse): rows b and b + 1 become their sum and difference, b even. */
static inline void FK_FN(unit_stage)(FK_T *re, FK_T *im, ptrdiff_t n, ptrdiff_t ld,
                                     ptrdiff_t w)
{
    for (ptrdiff_t b = 0; b < n; b += 2) {
        FK_T *FK_RESTRICT r0 = re + b * ld, *FK_RESTRICT i0 = im + b * ld;
        FK_T *FK_RESTRICT r1 = re + (b + 1) * ld, *FK_RESTRICT i1 = im + (b + 1) * ld;
        FK_IVDEP
        for (ptrdiff_t j = 0; j < w; ++j) {
            const FK_T xr = r0[j], xi = i0[j], yr = r1[j], yi = i1[j];
            r0[j] = xr + yr;
            i0[j] = xi + yi;
            r1[j] = xr - yr;
            i1[j] = xi - yi;
        }
    }
}

FK_SIMD_CLONES
static void FK_FN(dif_strip)(FK_T *re, FK_T *im, ptrdiff_t n, ptrdiff_t ld, ptrdiff_t w,
                             const FK_T *twr, const FK_T *twi)
{
    ptrdiff_t s = n / 2;
    for (; s >= 2; s /= 4) {
        const ptrdiff_t q = s / 2, ta = n / (2 * s), tb = n / s;
        for (ptrdiff_t b = 0; b < n; b += 2 * s) {
            for (ptrdiff_t t = 0; t < q; ++t) {
                FK_T *FK_RESTRICT r0 = re + (b + t) * ld, *FK_RESTRICT i0 = im + (b + t) * ld;
                FK_T *FK_RESTRICT r1 = re + (b + t + q) * ld, *FK_RESTRICT i1 = im + (b + t + q) * ld;
                FK_T *FK_RESTRICT r2 = re + (b + t + s) * ld, *FK_RESTRICT i2 = im + (b + t + s) * ld;
                FK_T *FK_RESTRICT r3 = re + (b + t + s + q) * ld;
                FK_T *FK_RESTRICT i3 = im + (b + t + s + q) * ld;
                const FK_T a0r = twr[t * ta], a0i = twi[t * ta];
                const FK_T a1r = twr[(t + q) * ta], a1i = twi[(t + q) * ta];
                const FK_T br = twr[t * tb], bi = twi[t * tb];
                FK_IVDEP
                for (ptrdiff_t j = 0; j < w; ++j) {
                    FK_T u0r = r0[j] + r2[j], u0i = i0[j] + i2[j];
                    FK_T u1r = r1[j] + r3[j], u1i = i1[j] + i3[j];
                    FK_T u2r, u2i, u3r, u3i, vr, vi;
                    FK_CMUL(r0[j] - r2[j], i0[j] - i2[j], a0r, a0i, u2r, u2i);
                    FK_CMUL(r1[j] - r3[j], i1[j] - i3[j], a1r, a1i, u3r, u3i);
                    r0[j] = u0r + u1r;
                    i0[j] = u0i + u1i;
                    FK_CMUL(u0r - u1r, u0i - u1i, br, bi, vr, vi);
                    r1[j] = vr;
                    i1[j] = vi;
                    r2[j] = u2r + u3r;
                    i2[j] = u2i + u3i;
                    FK_CMUL(u2r - u3r, u2i - u3i, br, bi, vr, vi);
                    r3[j] = vr;
                    i3[j] = vi;
                }
            }
        }
    }
    if (s == 1) FK_FN(unit_stage)(re, im, n, ld, w);  /* an odd number of stages */
}

/* The same over columns [0, w) in strips of FK_STRIP: each strip's rows stay in
 * cache through every stage. */
static void FK_FN(dif)(FK_T *re, FK_T *im, ptrdiff_t n, ptrdiff_t ld, ptrdiff_t w,
                       const FK_T *twr, const FK_T *twi)
{
    for (ptrdiff_t j0 = 0; j0 < w; j0 += FK_STRIP) {
        const ptrdiff_t sw = w - j0 < FK_STRIP ? w - j0 : FK_STRIP;
        FK_FN(dif_strip)(re + j0, im + j0, n, ld, sw, twr, twi);
    }
}
/* The inverse of dif, unnormalised (n times the inverse transform): radix-2
 * decimation in time with conjugate twiddles, bit-reversed order in, natural
 * order out, stages fused in pairs. */
FK_SIMD_CLONES
static void FK_FN(dit_strip)(FK_T *re, FK_T *im, ptrdiff_t n, ptrdiff_t ld, ptrdiff_t w,
                             const FK_T *twr, const FK_T *twi)
{
    int stages = 0;
    while (((ptrdiff_t)1 << stages) < n) ++stages;
    ptrdiff_t s = 1;
    if (stages & 1) {  /* the first stage alone */
        FK_FN(unit_stage)(re, im, n, ld, w);
        s = 2;
    }
    for (; s < n; s *= 4) {
        const ptrdiff_t ta = n / (2 * s), tb = n / (4 * s);
        for (ptrdiff_t b = 0; b < n; b += 4 * s) {
            for (ptrdiff_t t = 0; t < s; ++t) {
                FK_T *FK_RESTRICT r0 = re + (b + t) * ld, *FK_RESTRICT i0 = im + (b + t) * ld;
                FK_T *FK_RESTRICT r1 = re + (b + t + s) * ld, *FK_RESTRICT i1 = im + (b + t + s) * ld;
                FK_T *FK_RESTRICT r2 = re + (b + t + 2 * s) * ld;
                FK_T *FK_RESTRICT i2 = im + (b + t + 2 * s) * ld;
                FK_T *FK_RESTRICT r3 = re + (b + t + 3 * s) * ld;
                FK_T *FK_RESTRICT i3 = im + (b + t + 3 * s) * ld;
                const FK_T ar = twr[t * ta], ai = -twi[t * ta];
                const FK_T b0r = twr[t * tb], b0i = -twi[t * tb];
                const FK_T b1r = twr[(t + s) * tb], b1i = -twi[(t + s) * tb];
                FK_IVDEP
                for (ptrdiff_t j = 0; j < w; ++j) {
                    FK_T pr, pi, u0r, u0i, u1r, u1i, u2r, u2i, u3r, u3i;
                    FK_CMUL(r1[j], i1[j], ar, ai, pr, pi);
                    u0r = r0[j] + pr;
                    u0i = i0[j] + pi;
                    u1r = r0[j] - pr;
                    u1i = i0[j] - pi;
                    FK_CMUL(r3[j], i3[j], ar, ai, pr, pi);
                    u2r = r2[j] + pr;
                    u2i = i2[j] + pi;
                    u3r = r2[j] - pr;
                    u3i = i2[j] - pi;
                    FK_CMUL(u2r, u2i, b0r, b0i, pr, pi);
                    r0[j] = u0r + pr;
                    i0[j] = u0i + pi;
                    r2[j] = u0r - pr;
                    i2[j] = u0i - pi;
                    FK_CMUL(u3r, u3i, b1r, b1i, pr, pi);
                    r1[j] = u1r + pr;
                    i1[j] = u1i + pi;
                    r3[j] = u1r - pr;
                    i3[j] = u1i - pi;
                }
            }
        }
    }
}

/* The same over columns [0, w) in strips of FK_STRIP: each strip's rows stay in
 * cache through every stage. */
static void FK_FN(dit)(FK_T *re, FK_T *im, ptrdiff_t n, ptrdiff_t ld, ptrdiff_t w,
                       const FK_T *twr, const FK_T *twi)
{
    for (ptrdiff_t j0 = 0; j0 < w; j0 += FK_STRIP) {
        const ptrdiff_t sw = w - j0 < FK_STRIP ? w - j0 : FK_STRIP;
        FK_FN(dit_strip)(re + j0, im + j0, n, ld, sw, twr, twi);
    }
}

/* dst[c][r] = src[r][c] for r < rows, c < cols; dst rows are dst_ld long, and
 * entries r in [rows, dst_ld) are zeroed. */
static void FK_FN(transpose)(const FK_T *FK_RESTRICT src, ptrdiff_t rows, ptrdiff_t cols,
                             ptrdiff_t src_ld, FK_T *FK_RESTRICT dst, ptrdiff_t dst_ld)
{
    enum { B = 16 };
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += B) {
        const ptrdiff_t r1 = r0 + B < rows ? r0 + B : rows;
        for (ptrdiff_t c0 = 0; c0 < cols; c0 += B) {
            const ptrdiff_t c1 = c0 + B < cols ? c0 + B : cols;
            for (ptrdiff_t c = c0; c < c1; ++c)
                for (ptrdiff_t r = r0; r < r1; ++r)
                    dst[c * dst_ld + r] = src[r * src_ld + c];
        }
    }
    for (ptrdiff_t c = 0; c < cols; ++c)
        for (ptrdiff_t r = rows; r < dst_ld; ++r) dst[c * dst_ld + r] = 0;
}

/* The other direction, without padding: dst[r][c] = src[c][r]. */
static void FK_FN(untranspose)(const FK_T *FK_RESTRICT src, ptrdiff_t rows, ptrdiff_t cols,
                               ptrdiff_t src_ld, FK_T *FK_RESTRICT dst, ptrdiff_t dst_ld)
{
    enum { B = 16 };
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += B) {
        const ptrdiff_t r1 = r0 + B < rows ? r0 + B : rows;
        for (ptrdiff_t c0 = 0; c0 < cols; c0 += B) {
            const ptrdiff_t c1 = c0 + B < cols ? c0 + B : cols;
            for (ptrdiff_t r = r0; r < r1; ++r)
                for (ptrdiff_t c = c0; c < c1; ++c)
                    dst[r * dst_ld + c] = src[c * src_ld + r];
        }
    }
}

/* The workspace's planes. */
typedef struct {
    FK_T *zr, *zi;  /* half x cols: the tile's even and odd rows */
    FK_T *xr, *xi;  /* (half + 1) x cols: the columns' spectra */
    FK_T *yr, *yi;  /* cols x width: transposed, then the 2-D spectrum */
} FK_FN(planes);

static FK_FN(planes) FK_FN(split_ws)(const fk_fftconv_plan *p, FK_T *ws)
{
    FK_FN(planes) q;
    const ptrdiff_t h = p->half, c = p->cols;
    q.zr = ws;
    q.zi = q.zr + h * c;
    q.xr = q.zi + h * c;
    q.xi = q.xr + (h + 1) * c;
    q.yr = q.xi + (h + 1) * c;
    q.yi = q.yr + c * p->width;
    return q;
}

/* The tile in q.zr/q.zi (even/odd rows) -> its spectrum in q.yr/q.yi, times 2. */
FK_SIMD_CLONES
static void FK_FN(forward)(const fk_fftconv_plan *p, FK_FN(planes) q)
{
    const ptrdiff_t h = p->half, c = p->cols, w = p->width;
    const FK_T *sr = (const FK_T *)p->tw_split_re, *si = (const FK_T *)p->tw_split_im;
    FK_FN(dif)(q.zr, q.zi, h, c, c, (const FK_T *)p->tw_col_re, (const FK_T *)p->tw_col_im);
    /* 2 X[k] = 2 E[k] + w^k 2 O[k] with E, O the transforms of the even and odd
     * rows: 2E = Z[k] + conj(Z[h-k]), 2O = -i (Z[k] - conj(Z[h-k])); Z[k] sits in
     * row rev[k] */
    for (ptrdiff_t k = 0; k <= h; ++k) {
        const ptrdiff_t ka = p->rev_col[k % h], kb = p->rev_col[(h - k) % h];
        const FK_T cr = sr[k], ci = si[k];
        const FK_T *FK_RESTRICT ar = q.zr + ka * c, *FK_RESTRICT ai = q.zi + ka * c;
        const FK_T *FK_RESTRICT br = q.zr + kb * c, *FK_RESTRICT bi = q.zi + kb * c;
        FK_T *FK_RESTRICT xr = q.xr + k * c, *FK_RESTRICT xi = q.xi + k * c;
        FK_IVDEP
        for (ptrdiff_t j = 0; j < c; ++j) {
            const FK_T er = ar[j] + br[j], ei = ai[j] - bi[j];
            const FK_T or_ = ai[j] + bi[j], oi = br[j] - ar[j];
            xr[j] = er + cr * or_ - ci * oi;
            xi[j] = ei + cr * oi + ci * or_;
        }
    }
    FK_FN(transpose)(q.xr, h + 1, c, c, q.yr, w);
    FK_FN(transpose)(q.xi, h + 1, c, c, q.yi, w);
    FK_FN(dif)(q.yr, q.yi, c, w, w, (const FK_T *)p->tw_row_re, (const FK_T *)p->tw_row_im);
}

/* The spectrum in q.yr/q.yi -> rows * cols times its tile in q.zr/q.zi (even and
 * odd rows, natural order). */
FK_SIMD_CLONES
static void FK_FN(inverse)(const fk_fftconv_plan *p, FK_FN(planes) q)
{
    const ptrdiff_t h = p->half, c = p->cols, w = p->width;
    const FK_T *sr = (const FK_T *)p->tw_split_re, *si = (const FK_T *)p->tw_split_im;
    FK_FN(dit)(q.yr, q.yi, c, w, w, (const FK_T *)p->tw_row_re, (const FK_T *)p->tw_row_im);
    FK_FN(untranspose)(q.yr, h + 1, c, w, q.xr, c);
    FK_FN(untranspose)(q.yi, h + 1, c, w, q.xi, c);
    /* 2 Z[k] = 2 E[k] + i 2 O[k]: 2E = X[k] + conj(X[h-k]), 2O = conj(w^k) (X[k] -
     * conj(X[h-k])); into row rev[k] for dit */
    for (ptrdiff_t k = 0; k < h; ++k) {
        const FK_T cr = sr[k], ci = si[k];
        const FK_T *FK_RESTRICT ar = q.xr + k * c, *FK_RESTRICT ai = q.xi + k * c;
        const FK_T *FK_RESTRICT br = q.xr + (h - k) * c, *FK_RESTRICT bi = q.xi + (h - k) * c;
        FK_T *FK_RESTRICT zr = q.zr + p->rev_col[k] * c;
        FK_T *FK_RESTRICT zi = q.zi + p->rev_col[k] * c;
        FK_IVDEP
        for (ptrdiff_t j = 0; j < c; ++j) {
            const FK_T er = ar[j] + br[j], ei = ai[j] - bi[j];
            const FK_T dr = ar[j] - br[j], di = ai[j] + bi[j];
            const FK_T pr = dr * cr + di * ci, pi = di * cr - dr * ci;
            zr[j] = er - pi;
            zi[j] = ei + pr;
        }
    }
    FK_FN(dit)(q.zr, q.zi, h, c, c, (const FK_T *)p->tw_col_re, (const FK_T *)p->tw_col_im);
}

FK_SIMD_CLONES
static void FK_FN(multiply)(FK_T *FK_RESTRICT yr, FK_T *FK_RESTRICT yi,
                            const FK_T *FK_RESTRICT sr, const FK_T *FK_RESTRICT si,
                            ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const FK_T a = yr[j], b = yi[j];
        yr[j] = a * sr[j] - b * si[j];
        yi[j] = a * si[j] + b * sr[j];
    }
}

void FK_FN(kernel)(const fk_fftconv_plan *p, const FK_T *ker, ptrdiff_t k_rows,
                   ptrdiff_t k_cols, FK_T *spec_re, FK_T *spec_im, FK_T *ws)
{
    FK_FN(planes) q = FK_FN(split_ws)(p, ws);
    const ptrdiff_t c = p->cols, n = c * p->width;
    /* tile row i, column j: ker[k_rows-1-i][k_cols-1-j], zero past the kernel */
    for (ptrdiff_t i = 0; i < p->rows; ++i) {
        FK_T *dst = (i & 1 ? q.zi : q.zr) + (i >> 1) * c;
        for (ptrdiff_t j = 0; j < c; ++j)
            dst[j] = i < k_rows && j < k_cols ? ker[(k_rows - 1 - i) * k_cols + k_cols - 1 - j]
                                              : (FK_T)0;
    }
    FK_FN(forward)(p, q);
    const FK_T scale = (FK_T)(1.0 / (4.0 * (double)p->rows * (double)c));
    for (ptrdiff_t j = 0; j < n; ++j) {
        spec_re[j] = q.yr[j] * scale;
        spec_im[j] = q.yi[j] * scale;
    }
}

/* dst[j] = E(r, c0 + j), j < n: one row of the extended image. */
static void FK_FN(gather_row)(const fk_corr2d_geom *g, const FK_T *img, FK_T fill,
                              ptrdiff_t r, ptrdiff_t c0, ptrdiff_t n, FK_T *FK_RESTRICT dst)
{
    const ptrdiff_t src_r = fk_map_index(r, g->in_rows, g->boundary);
    if (src_r < 0) {
        for (ptrdiff_t j = 0; j < n; ++j) dst[j] = fill;
        return;
    }
    const FK_T *src = img + src_r * g->in_s0;
    /* the columns read straight from the image: c0 + j in [0, in_cols) */
    ptrdiff_t ja = -c0 > 0 ? -c0 : 0, jb = g->in_cols - c0;
    if (ja > n) ja = n;
    if (jb > n) jb = n;
    if (jb < ja) jb = ja;
    for (ptrdiff_t j = 0; j < ja; ++j) {
        const ptrdiff_t q = fk_map_index(c0 + j, g->in_cols, g->boundary);
        dst[j] = q < 0 ? fill : src[q * g->in_s1];
    }
    if (g->in_s1 == 1) {
        for (ptrdiff_t j = ja; j < jb; ++j) dst[j] = src[c0 + j];
    } else {
        for (ptrdiff_t j = ja; j < jb; ++j) dst[j] = src[(c0 + j) * g->in_s1];
    }
    for (ptrdiff_t j = jb; j < n; ++j) {
        const ptrdiff_t q = fk_map_index(c0 + j, g->in_cols, g->boundary);
        dst[j] = q < 0 ? fill : src[q * g->in_s1];
    }
}

/* R = a c - b d into a, I = a d + b c into b (complex, element by element) */
FK_SIMD_CLONES
static void FK_FN(multiply2)(FK_T *FK_RESTRICT ar, FK_T *FK_RESTRICT ai,
                             FK_T *FK_RESTRICT br, FK_T *FK_RESTRICT bi,
                             const FK_T *FK_RESTRICT cr, const FK_T *FK_RESTRICT ci,
                             const FK_T *FK_RESTRICT dr, const FK_T *FK_RESTRICT di,
                             ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const FK_T xr = ar[j], xi = ai[j], yr = br[j], yi = bi[j];
        ar[j] = (xr * cr[j] - xi * ci[j]) - (yr * dr[j] - yi * di[j]);
        ai[j] = (xr * ci[j] + xi * cr[j]) - (yr * di[j] + yi * dr[j]);
        br[j] = (xr * dr[j] - xi * di[j]) + (yr * cr[j] - yi * ci[j]);
        bi[j] = (xr * di[j] + xi * dr[j]) + (yr * ci[j] + yi * cr[j]);
    }
}

/* b = a d, then a = a c */
FK_SIMD_CLONES
static void FK_FN(multiply_into)(FK_T *FK_RESTRICT ar, FK_T *FK_RESTRICT ai,
                                 FK_T *FK_RESTRICT br, FK_T *FK_RESTRICT bi,
                                 const FK_T *FK_RESTRICT cr, const FK_T *FK_RESTRICT ci,
                                 const FK_T *FK_RESTRICT dr, const FK_T *FK_RESTRICT di,
                                 ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) {
        const FK_T xr = ar[j], xi = ai[j];
        br[j] = xr * dr[j] - xi * di[j];
        bi[j] = xr * di[j] + xi * dr[j];
        ar[j] = xr * cr[j] - xi * ci[j];
        ai[j] = xr * ci[j] + xi * cr[j];
    }
}

static void FK_FN(load)(const fk_fftconv_plan *p, const fk_corr2d_geom *g, const FK_T *img,
                        FK_T fill, ptrdiff_t k0, ptrdiff_t m0, FK_FN(planes) q)
{
    const ptrdiff_t c = p->cols;
    const ptrdiff_t r0 = g->off0 + k0 * g->step0, c0 = g->off1 + m0 * g->step1;
    for (ptrdiff_t i = 0; i < p->rows; ++i)
        FK_FN(gather_row)(g, img, fill, r0 + i, c0, c, (i & 1 ? q.zi : q.zr) + (i >> 1) * c);
}

/* output (k0 + a, m0 + b) is the circular convolution at tile row
 * k_rows - 1 + a * step0, column k_cols - 1 + b * step1 */
static void FK_FN(store)(const fk_fftconv_plan *p, const fk_corr2d_geom *g, FK_FN(planes) q,
                         FK_T *out, ptrdiff_t k0, ptrdiff_t nk, ptrdiff_t m0, ptrdiff_t nm)
{
    const ptrdiff_t c = p->cols;
    const ptrdiff_t rows = nk < g->out_rows - k0 ? nk : g->out_rows - k0;
    const ptrdiff_t cols = nm < g->out_cols - m0 ? nm : g->out_cols - m0;
    for (ptrdiff_t a = 0; a < rows; ++a) {
        const ptrdiff_t t = g->k_rows - 1 + a * g->step0;
        const FK_T *src = (t & 1 ? q.zi : q.zr) + (t >> 1) * c + g->k_cols - 1;
        FK_T *dst = out + (k0 + a) * g->out_s0 + m0 * g->out_s1;
        if (g->step1 == 1 && g->out_s1 == 1) {
            for (ptrdiff_t b = 0; b < cols; ++b) dst[b] = src[b];
        } else {
            for (ptrdiff_t b = 0; b < cols; ++b) dst[b * g->out_s1] = src[b * g->step1];
        }
    }
}

void FK_FN(tile)(const fk_fftconv_plan *p, const fk_corr2d_geom *g_re, const FK_T *img_re,
                 FK_T fill_re, const fk_corr2d_geom *g_im, const FK_T *img_im, FK_T fill_im,
                 const FK_T *const spec[4], FK_T *out_re, FK_T *out_im, ptrdiff_t k0,
                 ptrdiff_t nk, ptrdiff_t m0, ptrdiff_t nm, FK_T *ws)
{
    FK_FN(planes) a = FK_FN(split_ws)(p, ws);
    FK_FN(planes) b = FK_FN(split_ws)(p, ws + fk_fftconv_workspace(p));
    const ptrdiff_t n = p->cols * p->width;
    FK_FN(load)(p, g_re, img_re, fill_re, k0, m0, a);
    FK_FN(forward)(p, a);
    if (img_im) {
        FK_FN(load)(p, g_im, img_im, fill_im, k0, m0, b);
        FK_FN(forward)(p, b);
        if (spec[2]) {
            FK_FN(multiply2)(a.yr, a.yi, b.yr, b.yi, spec[0], spec[1], spec[2], spec[3], n);
        } else {
            FK_FN(multiply)(a.yr, a.yi, spec[0], spec[1], n);
            FK_FN(multiply)(b.yr, b.yi, spec[0], spec[1], n);
        }
    } else if (spec[2] && out_im) {
        FK_FN(multiply_into)(a.yr, a.yi, b.yr, b.yi, spec[0], spec[1], spec[2], spec[3], n);
    } else {
        FK_FN(multiply)(a.yr, a.yi, spec[0], spec[1], n);
    }
    FK_FN(inverse)(p, a);
    FK_FN(store)(p, g_re, a, out_re, k0, nk, m0, nm);
    if (out_im && (img_im || spec[2])) {
        FK_FN(inverse)(p, b);
        FK_FN(store)(p, g_re, b, out_im, k0, nk, m0, nm);
    } else if (out_im) {
        const ptrdiff_t rows = nk < g_re->out_rows - k0 ? nk : g_re->out_rows - k0;
        const ptrdiff_t cols = nm < g_re->out_cols - m0 ? nm : g_re->out_cols - m0;
        for (ptrdiff_t r = 0; r < rows; ++r)
            for (ptrdiff_t c = 0; c < cols; ++c)
                out_im[(k0 + r) * g_re->out_s0 + (m0 + c) * g_re->out_s1] = 0;
    }
}

#undef FK_FN
#undef FK_STRIP
#undef FK_CMUL
#undef FK_IVDEP
#undef FK_CAT
#undef FK_CAT2
