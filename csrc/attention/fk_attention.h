/* CSR-sparse scaled dot-product attention: plain C, no Python.
 *
 * One head at a time.  A head has queries q (n x d), keys k (m x d), values
 * v (m x dv), all C-contiguous, and a mask in CSR form: row i of the mask allows
 * the key columns cols[offsets[i] .. offsets[i+1]).  Forward:
 *
 *   s_ij = scale * q_i . k_j            for (i, j) in the mask
 *   out_i = sum_j softmax_j(s_ij) v_j    (zeros for a row with no allowed key)
 *   lse_i = log sum_j exp(s_ij)         (-inf for such a row)
 *
 * The softmax is computed online (FlashAttention-style) over chunks of a row's
 * nonzeros, so no probability matrix is ever stored; the backward recomputes the
 * probabilities p_ij = exp(s_ij - lse_i) from the saved log-sum-exp.
 *
 * Each function handles the rows listed in rows[0 .. n_rows) (any order, e.g.
 * longest first for load balancing) and writes only those rows of its outputs,
 * so callers run disjoint row lists in parallel.  A row's result does not depend
 * on which other rows a call handles: results do not depend on the thread count.
 *
 * Names: _f32/_f64 the value type, _i32/_i64 the index type of offsets, cols and
 * rows.  The caller guarantees valid input (offsets non-decreasing, 0 <= cols < m,
 * 0 <= rows < n, no row listed twice, outputs not overlapping inputs); nothing
 * here allocates.
 */
#ifndef FK_ATTENTION_H
#define FK_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Forward: out (n x dv) and lse (n) for the listed rows.
 *
 * Backward, query side (bwd_dq): for the listed rows i,
 *   delta_i = dout_i . out_i
 *   dq_i    = scale * sum_j p_ij (dout_i . v_j - delta_i) k_j
 * dq is n x d, delta has n elements.
 *
 * Backward, key side (bwd_dkdv), over the transposed mask: row j of
 * t_offsets/t_cols lists the queries i that may attend to key j.  For the listed
 * keys j,
 *   dv_j = sum_i p_ij dout_i
 *   dk_j = scale * sum_i p_ij (dout_i . v_j - delta_i) q_i
 * with delta from bwd_dq.  dk is m x d, dv is m x dv.
 */
void fk_sparse_attn_fwd_f32_i32(
    const int32_t *offsets, const int32_t *cols, const int32_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, ptrdiff_t d, ptrdiff_t dv, float scale,
    float *out, float *lse);
void fk_sparse_attn_bwd_dq_f32_i32(
    const int32_t *offsets, const int32_t *cols, const int32_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, const float *out, const float *dout,
    const float *lse, ptrdiff_t d, ptrdiff_t dv, float scale, float *dq, float *delta);
void fk_sparse_attn_bwd_dkdv_f32_i32(
    const int32_t *t_offsets, const int32_t *t_cols, const int32_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, const float *dout, const float *lse,
    const float *delta, ptrdiff_t d, ptrdiff_t dv, float scale, float *dk, float *dv_out);

void fk_sparse_attn_fwd_f32_i64(
    const int64_t *offsets, const int64_t *cols, const int64_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, ptrdiff_t d, ptrdiff_t dv, float scale,
    float *out, float *lse);
void fk_sparse_attn_bwd_dq_f32_i64(
    const int64_t *offsets, const int64_t *cols, const int64_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, const float *out, const float *dout,
    const float *lse, ptrdiff_t d, ptrdiff_t dv, float scale, float *dq, float *delta);
void fk_sparse_attn_bwd_dkdv_f32_i64(
    const int64_t *t_offsets, const int64_t *t_cols, const int64_t *rows, ptrdiff_t n_rows,
    const float *q, const float *k, const float *v, const float *dout, const float *lse,
    const float *delta, ptrdiff_t d, ptrdiff_t dv, float scale, float *dk, float *dv_out);

void fk_sparse_attn_fwd_f64_i32(
    const int32_t *offsets, const int32_t *cols, const int32_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, ptrdiff_t d, ptrdiff_t dv, double scale,
    double *out, double *lse);
void fk_sparse_attn_bwd_dq_f64_i32(
    const int32_t *offsets, const int32_t *cols, const int32_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, const double *out, const double *dout,
    const double *lse, ptrdiff_t d, ptrdiff_t dv, double scale, double *dq, double *delta);
void fk_sparse_attn_bwd_dkdv_f64_i32(
    const int32_t *t_offsets, const int32_t *t_cols, const int32_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, const double *dout, const double *lse,
    const double *delta, ptrdiff_t d, ptrdiff_t dv, double scale, double *dk, double *dv_out);

void fk_sparse_attn_fwd_f64_i64(
    const int64_t *offsets, const int64_t *cols, const int64_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, ptrdiff_t d, ptrdiff_t dv, double scale,
    double *out, double *lse);
void fk_sparse_attn_bwd_dq_f64_i64(
    const int64_t *offsets, const int64_t *cols, const int64_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, const double *out, const double *dout,
    const double *lse, ptrdiff_t d, ptrdiff_t dv, double scale, double *dq, double *delta);
void fk_sparse_attn_bwd_dkdv_f64_i64(
    const int64_t *t_offsets, const int64_t *t_cols, const int64_t *rows, ptrdiff_t n_rows,
    const double *q, const double *k, const double *v, const double *dout, const double *lse,
    const double *delta, ptrdiff_t d, ptrdiff_t dv, double scale, double *dk, double *dv_out);

/* Nonzeros of a row handled at once: the size of the stack buffers of scores.  The
 * forward's running maximum (and the rescaling of its accumulator) is updated once
 * per chunk. */
#define FK_ATTN_CHUNK 64

#ifdef __cplusplus
}
#endif
#endif
