/* The FFT route's core: one overlap-save tile of a real 2-D correlation, with
 * transforms of power-of-two lengths written for this use.  Plain C, no Python.
 *
 * A tile is an Lr x Lc window of the extended image (fk_correlate2d.h's E).  Its
 * 2-D transform runs as batches of 1-D transforms along the slow axis, every
 * butterfly a loop over a contiguous row, so the compiler vectorises all of it
 * (FK_SIMD_CLONES picks the widest vectors at run time):
 *   1. the tile's rows 2m and 2m+1 are the real and imaginary parts of a complex
 *      column of length Lr/2; its FFT (decimation in frequency, output in
 *      bit-reversed order) and the real-FFT split give the Lr/2 + 1 non-negative
 *      frequencies of every column;
 *   2. a blocked transpose, then FFTs of length Lc along the other axis.
 * The spectrum stays in bit-reversed order: the kernel's spectrum (computed by
 * the same steps) is in the same order, and the inverse (decimation in time, with
 * bit-reversed input) undoes both steps.  Planes are split: real and imaginary
 * parts in separate arrays.
 *
 * The caller owns all memory: the plan's tables (fk_fftconv_tables) and one
 * workspace per thread (fk_fftconv_workspace elements).
 */
#ifndef FK_FFTCONV_H
#define FK_FFTCONV_H

#include <stddef.h>

#include "fk_correlate2d.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    ptrdiff_t rows, cols;      /* Lr, Lc: powers of two, Lr >= 2 */
    ptrdiff_t half;            /* Lr / 2 */
    ptrdiff_t width;           /* row length of the transposed planes: half + 1, rounded up */
    /* tables, in the plan's precision (float or double, as the call) */
    const void *tw_col_re, *tw_col_im;    /* w_half^u, u < half/2 (length >= 1) */
    const void *tw_split_re, *tw_split_im;/* w_Lr^k, k <= half */
    const void *tw_row_re, *tw_row_im;    /* w_Lc^u, u < Lc/2 (length >= 1) */
    const ptrdiff_t *rev_col;             /* bit reversal of half entries */
} fk_fftconv_plan;

/* Elements of one thread's workspace (float or double, as the call). */
ptrdiff_t fk_fftconv_workspace(const fk_fftconv_plan *p);

/* The transforms' tables into the arrays of fk_fftconv_plan (each of the length
 * given there), in double; the caller converts them for float calls. */
void fk_fftconv_tables(ptrdiff_t rows, ptrdiff_t cols, double *tw_col_re, double *tw_col_im,
                       double *tw_split_re, double *tw_split_im, double *tw_row_re,
                       double *tw_row_im, ptrdiff_t *rev_col);

/* The kernel's spectrum: spec_re/spec_im (cols x width each) receive the
 * transform of `ker` (k_rows x k_cols, C-contiguous) reversed in both axes and
 * zero-padded to the tile, divided by 4 * rows * cols (the scale the transforms
 * leave), so that a tile times it, transformed back, is the correlation. */
void fk_fftconv_kernel_f32(const fk_fftconv_plan *p, const float *ker, ptrdiff_t k_rows,
                           ptrdiff_t k_cols, float *spec_re, float *spec_im, float *ws);
void fk_fftconv_kernel_f64(const fk_fftconv_plan *p, const double *ker, ptrdiff_t k_rows,
                           ptrdiff_t k_cols, double *spec_re, double *spec_im, double *ws);

/* One tile: the outputs [k0, k0 + nk) x [m0, m0 + nm) (clipped to g_re's output)
 * of the correlation described by g_re, whose windows all lie in the tile
 * starting at image coordinate (off0 + k0 * step0, off1 + m0 * step1).  Complex
 * data come as planes:
 *   out_re = img_re (*) ker_re - img_im (*) ker_im
 *   out_im = img_re (*) ker_im + img_im (*) ker_re
 * with spec = {ker_re's spectrum (re, im), ker_im's spectrum (re, im)}.  img_im
 * (with its geometry g_im: the same but strides), spec[2] and spec[3], and out_im
 * may be NULL: a missing plane is zero.  ws holds two workspaces where img_im or
 * spec[2] is given, else one. */
void fk_fftconv_tile_f32(const fk_fftconv_plan *p, const fk_corr2d_geom *g_re,
                         const float *img_re, float fill_re, const fk_corr2d_geom *g_im,
                         const float *img_im, float fill_im, const float *const spec[4],
                         float *out_re, float *out_im, ptrdiff_t k0, ptrdiff_t nk,
                         ptrdiff_t m0, ptrdiff_t nm, float *ws);
void fk_fftconv_tile_f64(const fk_fftconv_plan *p, const fk_corr2d_geom *g_re,
                         const double *img_re, double fill_re, const fk_corr2d_geom *g_im,
                         const double *img_im, double fill_im, const double *const spec[4],
                         double *out_re, double *out_im, ptrdiff_t k0, ptrdiff_t nk,
                         ptrdiff_t m0, ptrdiff_t nm, double *ws);

#ifdef __cplusplus
}
#endif
#endif
