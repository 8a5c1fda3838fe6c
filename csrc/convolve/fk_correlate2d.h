/* 2-D correlation core: plain C, no Python.
 *
 *   out[i, j] = sum_{a, b} E(off0 + i*step0 + a, off1 + j*step1 + b) * ker[a, b]
 *
 * where E is the image extended past its edges by `boundary` (fill value, periodic
 * wrap, or symmetric reflection, with scipy.signal's index rules).  Convolution,
 * the "full"/"same"/"valid" windows and output striding are all expressed through
 * the kernel orientation, off0/off1 and step0/step1 chosen by the caller.
 *
 * One call computes a tile: output rows [row_begin, row_end) by columns
 * [col_begin, col_end), where the columns are column block boundaries (0,
 * out_cols, or ends returned by fk_correlate2d_col_end).  Callers run disjoint
 * tiles in parallel.  Every output element is computed the same way whatever
 * the split, so results do not depend on the number of threads or the tiles.
 */
#ifndef FK_CORRELATE2D_H
#define FK_CORRELATE2D_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FK_BOUNDARY_FILL = 0, FK_BOUNDARY_WRAP = 1, FK_BOUNDARY_SYMM = 2 };
/* How a result is stored: out = r, out += r, out -= r (complex products). */
enum { FK_STORE_SET = 0, FK_STORE_ADD = 1, FK_STORE_SUB = 2 };

/* Sizes are NumPy's, so no axis exceeds PTRDIFF_MAX / 4 (its bytes fit in a
 * ptrdiff_t): image coordinates, which stay within an axis' length of the image,
 * never overflow.  Steps may be anything up to PTRDIFF_MAX. */
typedef struct {
    ptrdiff_t in_rows, in_cols;   /* image shape, both >= 1 */
    ptrdiff_t in_s0, in_s1;       /* image strides, in elements (any sign) */
    ptrdiff_t k_rows, k_cols;     /* kernel shape; the kernel is C-contiguous */
    ptrdiff_t out_rows, out_cols; /* output shape */
    ptrdiff_t out_s0, out_s1;     /* output strides, in elements */
    ptrdiff_t off0, off1;         /* image coordinate of out[0, 0]'s window corner */
    ptrdiff_t step0, step1;       /* output stride, >= 1 */
    int boundary;                 /* FK_BOUNDARY_* */
    int isa;                      /* kernel family, fk_correlate2d_isa(-1) */
} fk_corr2d_geom;

/* Each computes the tile for each of the n_ker kernels of a bank, kernel f at
 * ker + f * k_rows * k_cols into out + f * out_step (every output of the bank
 * has g's shape and strides), reading each block of the image once for the
 * whole bank.  Each returns 0, or -1 if its scratch buffer could not be
 * allocated.  The uint64 variant computes modulo 2**64: exact for every integer
 * dtype after a wrapping cast back, as integer convolution in the narrower type
 * would be. */
int fk_correlate2d_tile_f32(const fk_corr2d_geom *g, const float *img, const float *ker,
                            ptrdiff_t n_ker, float fill, float *out, ptrdiff_t out_step,
                            ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                            ptrdiff_t col_end, int store);
int fk_correlate2d_tile_f64(const fk_corr2d_geom *g, const double *img, const double *ker,
                            ptrdiff_t n_ker, double fill, double *out, ptrdiff_t out_step,
                            ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                            ptrdiff_t col_end, int store);
int fk_correlate2d_tile_u64(const fk_corr2d_geom *g, const uint64_t *img, const uint64_t *ker,
                            ptrdiff_t n_ker, uint64_t fill, uint64_t *out, ptrdiff_t out_step,
                            ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                            ptrdiff_t col_end, int store);

/* The separable correlation: the same tile of
 *   out[i, j] = sum_{a, b} E(off0 + i*step0 + a, off1 + j*step1 + b) * col[a] * row[b]
 * with g->k_rows = len(col), g->k_cols = len(row), computed as a column pass
 * (sum over a) and then a row pass (sum over b), per output row: k_rows + k_cols
 * multiply-adds per output where the 2-D kernel takes k_rows * k_cols.  Any row
 * and column range; every output is computed the same way whatever the split.
 * Returns 0, or -1 if its scratch buffer could not be allocated. */
int fk_sepcorr2d_tile_f32(const fk_corr2d_geom *g, const float *img, const float *col,
                          const float *row, float fill, float *out, ptrdiff_t row_begin,
                          ptrdiff_t row_end, ptrdiff_t col_begin, ptrdiff_t col_end, int store);
int fk_sepcorr2d_tile_f64(const fk_corr2d_geom *g, const double *img, const double *col,
                          const double *row, double fill, double *out, ptrdiff_t row_begin,
                          ptrdiff_t row_end, ptrdiff_t col_begin, ptrdiff_t col_end, int store);
int fk_sepcorr2d_tile_u64(const fk_corr2d_geom *g, const uint64_t *img, const uint64_t *col,
                          const uint64_t *row, uint64_t fill, uint64_t *out,
                          ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t col_begin,
                          ptrdiff_t col_end, int store);

/* The end of the column block that starts at output column c0 (a block
 * boundary): blocks hold at most about 4096 image columns, and with a large
 * kernel fewer, so that one output row of a block is about 2**24 multiply-adds
 * at most where the kernel allows it.  Which kernel computes an output depends
 * on its block alone. */
ptrdiff_t fk_correlate2d_col_end(const fk_corr2d_geom *g, ptrdiff_t c0);

/* The kernels for unit column steps: 0 plain C, 1 16-byte vectors, 2 AVX2,
 * 3 AVX-512.  isa >= 0 selects one (capped at what the CPU runs; for tests and
 * benchmarks, not while a computation runs); every call returns the one in use. */
int fk_correlate2d_isa(int isa);

/* Scratch elements one call needs for a tile of n_rows rows by n_cols columns:
 * for documentation and tests of the memory bound. */
ptrdiff_t fk_correlate2d_scratch(const fk_corr2d_geom *g, ptrdiff_t n_rows, ptrdiff_t n_cols);

/* Image index for coordinate j of an axis of length m, or -1 where the fill value
 * applies.  Same rules as scipy.signal.convolve2d, for any distance past the edge. */
static inline ptrdiff_t fk_map_index(ptrdiff_t j, ptrdiff_t m, int boundary)
{
    if (j >= 0 && j < m) return j;
    if (boundary == FK_BOUNDARY_WRAP) {
        ptrdiff_t r = j % m;
        return r < 0 ? r + m : r;
    }
    if (boundary == FK_BOUNDARY_SYMM) {
        ptrdiff_t k = (j >= 0 ? j : -j - 1) % (2 * m);
        return k >= m ? 2 * m - k - 1 : k;
    }
    return -1;
}

#ifdef __cplusplus
}
#endif
#endif
