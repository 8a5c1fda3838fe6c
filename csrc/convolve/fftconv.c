/* The FFT route's core, instantiated for float and double (see fk_fftconv.h). */
#include <math.h>
#include <stddef.h>

#include "fk_fftconv.h"
#include "../common/fk_simd.h"

ptrdiff_t fk_fftconv_workspace(const fk_fftconv_plan *p)
{
    return 2 * p->half * p->cols + 2 * (p->half + 1) * p->cols + 2 * p->cols * p->width;
}

/* exp(-2 pi i u / n), accurate to the last bit of a double */
static void fk_twiddle(ptrdiff_t u, ptrdiff_t n, double *re, double *im)
{
    const long double angle = -2.0L * 3.141592653589793238462643383279502884L * (long double)u
                              / (long double)n;
    *re = (double)cosl(angle);
    *im = (double)sinl(angle);
}

void fk_fftconv_tables(ptrdiff_t rows, ptrdiff_t cols, double *tw_col_re, double *tw_col_im,
                       double *tw_split_re, double *tw_split_im, double *tw_row_re,
                       double *tw_row_im, ptrdiff_t *rev_col)
{
    const ptrdiff_t h = rows / 2;
    for (ptrdiff_t u = 0; u < (h / 2 > 1 ? h / 2 : 1); ++u)
        fk_twiddle(u, h, tw_col_re + u, tw_col_im + u);
    for (ptrdiff_t k = 0; k <= h; ++k)
        fk_twiddle(k, rows, tw_split_re + k, tw_split_im + k);
    for (ptrdiff_t u = 0; u < (cols / 2 > 1 ? cols / 2 : 1); ++u)
        fk_twiddle(u, cols, tw_row_re + u, tw_row_im + u);
    int bits = 0;
    while (((ptrdiff_t)1 << bits) < h) ++bits;
    for (ptrdiff_t k = 0; k < h; ++k) {
        ptrdiff_t r = 0;
        for (int b = 0; b < bits; ++b)
            if (k & ((ptrdiff_t)1 << b)) r |= (ptrdiff_t)1 << (bits - 1 - b);
        rev_col[k] = r;
    }
}

#define FK_T float
#define FK_SUFFIX f32
#include "fftconv_impl.h"
#undef FK_T
#undef FK_SUFFIX

#define FK_T double
#define FK_SUFFIX f64
#include "fftconv_impl.h"
#undef FK_T
#undef FK_SUFFIX
