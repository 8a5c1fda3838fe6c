"""nogil drivers of the CSR-sparse attention core (csrc/attention): parallel over
(batch x head, block of mask rows), longest rows first.

Validation, layout and dtype handling live in fastkern/attention/ops.py; this
module assumes valid input: C-contiguous (batch*head, rows, dim) arrays and a
valid CSR mask whose index arrays share one dtype.
"""
from libc.stdint cimport int32_t, int64_t
from cython.parallel cimport prange

cdef extern from "attention/fk_attention.h" nogil:
    void fk_sparse_attn_fwd_f32_i32(const int32_t *offsets, const int32_t *cols,
                                    const int32_t *rows, Py_ssize_t n_rows, const float *q,
                                    const float *k, const float *v, Py_ssize_t d,
                                    Py_ssize_t dv, float scale, float *out, float *lse)
    void fk_sparse_attn_fwd_f32_i64(const int64_t *offsets, const int64_t *cols,
                                    const int64_t *rows, Py_ssize_t n_rows, const float *q,
                                    const float *k, const float *v, Py_ssize_t d,
                                    Py_ssize_t dv, float scale, float *out, float *lse)
    void fk_sparse_attn_fwd_f64_i32(const int32_t *offsets, const int32_t *cols,
                                    const int32_t *rows, Py_ssize_t n_rows, const double *q,
                                    const double *k, const double *v, Py_ssize_t d,
                                    Py_ssize_t dv, double scale, double *out, double *lse)
    void fk_sparse_attn_fwd_f64_i64(const int64_t *offsets, const int64_t *cols,
                                    const int64_t *rows, Py_ssize_t n_rows, const double *q,
                                    const double *k, const double *v, Py_ssize_t d,
                                    Py_ssize_t dv, double scale, double *out, double *lse)

    void fk_sparse_attn_bwd_dq_f32_i32(const int32_t *offsets, const int32_t *cols,
                                       const int32_t *rows, Py_ssize_t n_rows, const float *q,
                                       const float *k, const float *v, const float *out,
                                       const float *dout, const float *lse, Py_ssize_t d,
                                       Py_ssize_t dv, float scale, float *dq, float *delta)
    void fk_sparse_attn_bwd_dq_f32_i64(const int64_t *offsets, const int64_t *cols,
                                       const int64_t *rows, Py_ssize_t n_rows, const float *q,
                                       const float *k, const float *v, const float *out,
                                       const float *dout, const float *lse, Py_ssize_t d,
                                       Py_ssize_t dv, float scale, float *dq, float *delta)
    void fk_sparse_attn_bwd_dq_f64_i32(const int32_t *offsets, const int32_t *cols,
                                       const int32_t *rows, Py_ssize_t n_rows, const double *q,
                                       const double *k, const double *v, const double *out,
                                       const double *dout, const double *lse, Py_ssize_t d,
                                       Py_ssize_t dv, double scale, double *dq, double *delta)
    void fk_sparse_attn_bwd_dq_f64_i64(const int64_t *offsets, const int64_t *cols,
                                       const int64_t *rows, Py_ssize_t n_rows, const double *q,
                                       const double *k, const double *v, const double *out,
                                       const double *dout, const double *lse, Py_ssize_t d,
                                       Py_ssize_t dv, double scale, double *dq, double *delta)

    void fk_sparse_attn_bwd_dkdv_f32_i32(const int32_t *t_offsets, const int32_t *t_cols,
                                         const int32_t *rows, Py_ssize_t n_rows,
                                         const float *q, const float *k, const float *v,
                                         const float *dout, const float *lse,
                                         const float *delta, Py_ssize_t d, Py_ssize_t dv,
                                         float scale, float *dk, float *dv_out)
    void fk_sparse_attn_bwd_dkdv_f32_i64(const int64_t *t_offsets, const int64_t *t_cols,
                                         const int64_t *rows, Py_ssize_t n_rows,
                                         const float *q, const float *k, const float *v,
                                         const float *dout, const float *lse,
                                         const float *delta, Py_ssize_t d, Py_ssize_t dv,
                                         float scale, float *dk, float *dv_out)
    void fk_sparse_attn_bwd_dkdv_f64_i32(const int32_t *t_offsets, const int32_t *t_cols,
                                         const int32_t *rows, Py_ssize_t n_rows,
                                         const double *q, const double *k, const double *v,
                                         const double *dout, const double *lse,
                                         const double *delta, Py_ssize_t d, Py_ssize_t dv,
                                         double scale, double *dk, double *dv_out)
    void fk_sparse_attn_bwd_dkdv_f64_i64(const int64_t *t_offsets, const int64_t *t_cols,
                                         const int64_t *rows, Py_ssize_t n_rows,
                                         const double *q, const double *k, const double *v,
                                         const double *dout, const double *lse,
                                         const double *delta, Py_ssize_t d, Py_ssize_t dv,
                                         double scale, double *dk, double *dv_out)

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
    int32_t
    int64_t

# Mask rows per unit of parallel work, at most.  Units are handed out dynamically,
# longest rows first, so that a few long rows do not leave a thread idle at the end.
cdef enum:
    MAX_BLOCK_ROWS = 16


cdef Py_ssize_t _block_rows(Py_ssize_t n_heads, Py_ssize_t n_rows, int n_threads) noexcept:
    """Rows per work unit: at most MAX_BLOCK_ROWS, small enough for ~8 units a thread."""
    cdef Py_ssize_t want = 8 * n_threads
    cdef Py_ssize_t per_head = (want + n_heads - 1) // n_heads
    cdef Py_ssize_t rows = (n_rows + per_head - 1) // per_head
    return max(1, min(<Py_ssize_t>MAX_BLOCK_ROWS, rows))


cdef inline void _fwd(const index_t *offsets, const index_t *cols, const index_t *rows,
                      Py_ssize_t n_rows, const real_t *q, const real_t *k, const real_t *v,
                      Py_ssize_t d, Py_ssize_t dv, real_t scale, real_t *out,
                      real_t *lse) noexcept nogil:
    if real_t is float and index_t is int32_t:
        fk_sparse_attn_fwd_f32_i32(offsets, cols, rows, n_rows, q, k, v, d, dv, scale, out, lse)
    elif real_t is float and index_t is int64_t:
        fk_sparse_attn_fwd_f32_i64(offsets, cols, rows, n_rows, q, k, v, d, dv, scale, out, lse)
    elif real_t is double and index_t is int32_t:
        fk_sparse_attn_fwd_f64_i32(offsets, cols, rows, n_rows, q, k, v, d, dv, scale, out, lse)
    else:
        fk_sparse_attn_fwd_f64_i64(offsets, cols, rows, n_rows, q, k, v, d, dv, scale, out, lse)


cdef inline void _bwd_dq(const index_t *offsets, const index_t *cols, const index_t *rows,
                         Py_ssize_t n_rows, const real_t *q, const real_t *k, const real_t *v,
                         const real_t *out, const real_t *dout, const real_t *lse,
                         Py_ssize_t d, Py_ssize_t dv, real_t scale, real_t *dq,
                         real_t *delta) noexcept nogil:
    if real_t is float and index_t is int32_t:
        fk_sparse_attn_bwd_dq_f32_i32(offsets, cols, rows, n_rows, q, k, v, out, dout, lse,
                                      d, dv, scale, dq, delta)
    elif real_t is float and index_t is int64_t:
        fk_sparse_attn_bwd_dq_f32_i64(offsets, cols, rows, n_rows, q, k, v, out, dout, lse,
                                      d, dv, scale, dq, delta)
    elif real_t is double and index_t is int32_t:
        fk_sparse_attn_bwd_dq_f64_i32(offsets, cols, rows, n_rows, q, k, v, out, dout, lse,
                                      d, dv, scale, dq, delta)
    else:
        fk_sparse_attn_bwd_dq_f64_i64(offsets, cols, rows, n_rows, q, k, v, out, dout, lse,
                                      d, dv, scale, dq, delta)


cdef inline void _bwd_dkdv(const index_t *t_offsets, const index_t *t_cols,
                           const index_t *rows, Py_ssize_t n_rows, const real_t *q,
                           const real_t *k, const real_t *v, const real_t *dout,
                           const real_t *lse, const real_t *delta, Py_ssize_t d,
                           Py_ssize_t dv, real_t scale, real_t *dk,
                           real_t *dv_out) noexcept nogil:
    if real_t is float and index_t is int32_t:
        fk_sparse_attn_bwd_dkdv_f32_i32(t_offsets, t_cols, rows, n_rows, q, k, v, dout, lse,
                                        delta, d, dv, scale, dk, dv_out)
    elif real_t is float and index_t is int64_t:
        fk_sparse_attn_bwd_dkdv_f32_i64(t_offsets, t_cols, rows, n_rows, q, k, v, dout, lse,
                                        delta, d, dv, scale, dk, dv_out)
    elif real_t is double and index_t is int32_t:
        fk_sparse_attn_bwd_dkdv_f64_i32(t_offsets, t_cols, rows, n_rows, q, k, v, dout, lse,
                                        delta, d, dv, scale, dk, dv_out)
    else:
        fk_sparse_attn_bwd_dkdv_f64_i64(t_offsets, t_cols, rows, n_rows, q, k, v, dout, lse,
                                        delta, d, dv, scale, dk, dv_out)


def forward(const real_t[:, :, ::1] q, const real_t[:, :, ::1] k, const real_t[:, :, ::1] v,
            const index_t[::1] offsets, const index_t[::1] cols, const index_t[::1] order,
            real_t scale, real_t[:, :, ::1] out, real_t[:, ::1] lse, int n_threads):
    """out[h], lse[h] = the attention of head h, for every h < q.shape[0].

    q (H, N, D), k (H, M, D), v (H, M, Dv), out (H, N, Dv), lse (H, N), all
    non-empty; the mask (offsets, cols) has shape (N, M) and at least one nonzero,
    and `order` lists its rows longest first.
    """
    cdef Py_ssize_t n_heads = q.shape[0], n = q.shape[1]
    cdef Py_ssize_t d = q.shape[2], dv = v.shape[2]
    cdef Py_ssize_t block = _block_rows(n_heads, n, n_threads)
    cdef Py_ssize_t n_blocks = (n + block - 1) // block
    cdef Py_ssize_t item, h, r0, r1
    for item in prange(n_heads * n_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        h = item // n_blocks
        r0 = (item % n_blocks) * block
        r1 = min(n, r0 + block)
        _fwd(&offsets[0], &cols[0], &order[r0], r1 - r0, &q[h, 0, 0], &k[h, 0, 0],
             &v[h, 0, 0], d, dv, scale, &out[h, 0, 0], &lse[h, 0])


def backward(const real_t[:, :, ::1] q, const real_t[:, :, ::1] k, const real_t[:, :, ::1] v,
             const real_t[:, :, ::1] out, const real_t[:, :, ::1] dout,
             const real_t[:, ::1] lse,
             const index_t[::1] offsets, const index_t[::1] cols, const index_t[::1] order,
             const index_t[::1] t_offsets, const index_t[::1] t_cols,
             const index_t[::1] t_order, real_t scale,
             real_t[:, :, ::1] dq, real_t[:, :, ::1] dk, real_t[:, :, ::1] dv_out,
             real_t[:, ::1] delta, int n_threads):
    """dq, dk, dv_out of every head from the forward's out and lse.

    Shapes as for forward, with dout like out, dq like q, dk like k, dv_out like v
    and delta (H, N) scratch.  (t_offsets, t_cols, t_order) is the transposed mask,
    shape (M, N): dq is computed over the mask's rows, dk and dv over its columns,
    so that every output row has one owner and one fixed order of summation.
    """
    cdef Py_ssize_t n_heads = q.shape[0], n = q.shape[1], m = k.shape[1]
    cdef Py_ssize_t d = q.shape[2], dv = v.shape[2]
    cdef Py_ssize_t block = _block_rows(n_heads, n, n_threads)
    cdef Py_ssize_t n_blocks = (n + block - 1) // block
    cdef Py_ssize_t t_block = _block_rows(n_heads, m, n_threads)
    cdef Py_ssize_t t_blocks = (m + t_block - 1) // t_block
    cdef Py_ssize_t item, h, r0, r1
    # pass 1: delta and dq, over the rows (queries)
    for item in prange(n_heads * n_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        h = item // n_blocks
        r0 = (item % n_blocks) * block
        r1 = min(n, r0 + block)
        _bwd_dq(&offsets[0], &cols[0], &order[r0], r1 - r0, &q[h, 0, 0], &k[h, 0, 0],
                &v[h, 0, 0], &out[h, 0, 0], &dout[h, 0, 0], &lse[h, 0], d, dv, scale,
                &dq[h, 0, 0], &delta[h, 0])
    # pass 2: dk and dv, over the columns (keys); needs all of delta
    for item in prange(n_heads * t_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        h = item // t_blocks
        r0 = (item % t_blocks) * t_block
        r1 = min(m, r0 + t_block)
        _bwd_dkdv(&t_offsets[0], &t_cols[0], &t_order[r0], r1 - r0, &q[h, 0, 0],
                  &k[h, 0, 0], &v[h, 0, 0], &dout[h, 0, 0], &lse[h, 0], &delta[h, 0],
                  d, dv, scale, &dk[h, 0, 0], &dv_out[h, 0, 0])


def csr_transpose(const index_t[::1] offsets, const index_t[::1] cols,
                  index_t[::1] t_offsets, index_t[::1] t_cols):
    """The transpose of an (N, M) CSR pattern, by counting sort: O(N + M + nnz).

    t_offsets (M + 1,) and t_cols (nnz,) are filled in; the rows of the transpose
    list their columns in increasing order.
    """
    cdef Py_ssize_t n = offsets.shape[0] - 1, m = t_offsets.shape[0] - 1
    cdef Py_ssize_t i, j, p
    with nogil:
        for j in range(m + 1):
            t_offsets[j] = 0
        for p in range(cols.shape[0]):
            t_offsets[cols[p] + 1] += 1
        for j in range(m):
            t_offsets[j + 1] += t_offsets[j]
        # fill each column's slots in increasing row order, t_offsets[j] walking
        # forward as its start; then shift the starts back
        for i in range(n):
            for p in range(offsets[i], offsets[i + 1]):
                j = cols[p]
                t_cols[t_offsets[j]] = <index_t>i
                t_offsets[j] += 1
        for j in range(m, 0, -1):
            t_offsets[j] = t_offsets[j - 1]
        t_offsets[0] = 0
