"""nogil drivers of the CSR-sparse attention core (csrc/attention): parallel over
(batch x head, block of mask rows), longest rows first; the threads check for an
interrupt between units, so that Ctrl-C stops a long call (see _interrupt.pyx).

Validation, layout and dtype handling live in fastkern/attention/ops.py.  The
mask reaches the kernels only as a :class:`Pattern`, which cannot be built
invalid, and every entry point checks, in O(1), that the arrays it is given fit
that pattern: no input from Python reaches the C core with an index out of
bounds.
"""
cimport cython
from libc.stdint cimport int32_t, int64_t, uintptr_t
from cython.parallel cimport prange

import threading

import numpy as np

from fastkern._interrupt cimport Interrupt

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


# Units a thread gets in a call (_block_rows): enough for dynamic scheduling to
# even out long and short rows.
cdef enum:
    _UNITS_PER_THREAD = 8


cdef Py_ssize_t _block_rows(Py_ssize_t n_heads, Py_ssize_t n_rows, int n_threads) noexcept:
    """Rows per work unit: at most MAX_BLOCK_ROWS, small enough for
    _UNITS_PER_THREAD units a thread."""
    cdef Py_ssize_t want = _UNITS_PER_THREAD * n_threads
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


cdef Py_ssize_t _INT32_MAX = 2**31 - 1


def _frozen(x, name):
    """x as a 1-D array over immutable memory (a bytes object): NumPy refuses to
    make it, or any view of it, writeable."""
    a = np.ascontiguousarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    frozen = np.frombuffer(a.tobytes(), dtype=a.dtype)
    if not frozen.flags.aligned:  # CPython's bytes data is 8-aligned: never seen
        raise ValueError(f"{name} could not be stored aligned")
    return frozen


def _csr_error(const index_t[::1] offsets, const index_t[::1] cols, Py_ssize_t n_cols):
    """None if (offsets, cols) is a CSR structure with n_cols columns, sorted and
    without repeats within rows; else what is wrong.  O(n + nnz)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, nnz = cols.shape[0], i, p
    cdef int err = 0
    if n < 0:
        return "row_offsets must have at least one element"
    if offsets[0] != 0 or offsets[n] != nnz:
        return f"row_offsets must run from 0 to len(column_indices) = {nnz}"
    with nogil:
        for i in range(n):
            if offsets[i + 1] < offsets[i]:
                err = 1
                break
        # offsets now lie in [0, nnz]: the rows can be walked
        for i in range(n if err == 0 else 0):
            for p in range(offsets[i], offsets[i + 1]):
                if (cols[p] < 0 or cols[p] >= n_cols
                        or (p > offsets[i] and cols[p] <= cols[p - 1])):
                    err = 2
                    break
            if err:
                break
    if err == 1:
        return "row_offsets must be non-decreasing"
    if err == 2:
        return (f"column_indices must lie in [0, {n_cols}) and increase within each row, "
                f"row {i} does not")
    return None


@cython.final
@cython.auto_pickle(False)
cdef class Pattern:
    """A CSR mask the kernels can trust: the private state of a SparseCSR.

    ``Pattern(row_offsets, column_indices, n_cols)`` copies both arrays into
    immutable memory (NumPy refuses to make them writeable again) and checks the
    whole structure, O(N + nnz): offsets from 0 to nnz, non-decreasing, columns
    in [0, n_cols) increasing within each row, one index dtype (int32 or int64)
    that holds N and n_cols.  The rows longest first (``order``) and the
    transpose are derived here.  Its fields cannot be set from Python, it cannot
    be subclassed or unpickled around its constructor, so whatever is done to a
    SparseCSR from Python, the kernels only ever see valid indices.
    """
    cdef readonly object offsets, cols, order
    cdef readonly Py_ssize_t n_rows, n_cols
    cdef object _transpose
    cdef object _transpose_lock
    cdef object __weakref__

    def __cinit__(self, row_offsets, column_indices, Py_ssize_t n_cols):
        offsets = _frozen(row_offsets, "row_offsets")
        cols = _frozen(column_indices, "column_indices")
        if offsets.dtype != cols.dtype or offsets.dtype not in (np.int32, np.int64):
            raise TypeError(f"row_offsets and column_indices must share an index dtype, "
                            f"int32 or int64, got {offsets.dtype} and {cols.dtype}")
        if offsets.shape[0] < 1 or n_cols < 0:
            raise ValueError(f"a pattern has at least one row offset and n_cols >= 0, got "
                             f"{offsets.shape[0]} and {n_cols}")
        if offsets.dtype == np.int32 and max(offsets.shape[0] - 1, n_cols) > _INT32_MAX:
            raise ValueError("int32 indices cannot number more than 2**31 - 1 rows or columns")
        error = _csr_error(offsets, cols, n_cols)
        if error is not None:
            raise ValueError(error)
        # stable: rows of equal length keep their order, which keeps neighbours together
        lengths = np.diff(offsets).astype(np.int64)
        self.order = _frozen(np.argsort(-lengths, kind="stable").astype(offsets.dtype),
                             "order")
        self.offsets = offsets
        self.cols = cols
        self.n_rows = offsets.shape[0] - 1
        self.n_cols = n_cols
        self._transpose = None
        self._transpose_lock = threading.Lock()

    @property
    def nnz(self):
        return self.cols.shape[0]

    def transpose(self):
        """The (n_cols, n_rows) Pattern of the transposed mask, computed once.

        Threads that ask at once (free-threaded Python, or a backward pass on
        several threads) all get the same object: the first builds it, under this
        pattern's own lock, and the others wait for it.
        """
        cdef Pattern t
        t = self._transpose
        if t is not None:
            return t
        with self._transpose_lock:
            if self._transpose is None:
                t_offsets = np.empty(self.n_cols + 1, dtype=self.offsets.dtype)
                t_cols = np.empty(self.nnz, dtype=self.offsets.dtype)
                _transpose_into(self, self.offsets, self.cols, t_offsets, t_cols)
                t = Pattern(t_offsets, t_cols, self.n_rows)
                t._transpose = self
                self._transpose = t
            return self._transpose


cdef inline bint _owned(Pattern mask, offsets, cols, order):
    """Whether the arrays under the index memoryviews are mask's own.  The entry
    points take them besides mask only so that Cython can pick the index type."""
    return offsets is mask.offsets and cols is mask.cols and order is mask.order


cdef inline bint _aligned(const void *p, size_t size) noexcept:
    return <uintptr_t>p % size == 0


def _transpose_into(Pattern mask not None, const index_t[::1] offsets,
                    const index_t[::1] cols, index_t[::1] t_offsets, index_t[::1] t_cols):
    """The transpose of mask, by counting sort: O(N + M + nnz).

    t_offsets (M + 1,) and t_cols (nnz,) are filled in; the rows of the transpose
    list their columns in increasing order.
    """
    cdef Py_ssize_t n = mask.n_rows, m = mask.n_cols
    cdef Py_ssize_t i, j, p
    if not _owned(mask, offsets.base, cols.base, mask.order):
        raise ValueError("offsets and cols must be the mask's own")
    if t_offsets.shape[0] != m + 1 or t_cols.shape[0] != cols.shape[0]:
        raise ValueError(f"t_offsets and t_cols must have {m + 1} and {cols.shape[0]} "
                         f"elements")
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


cdef inline bint _has_shape(Py_ssize_t *shape, Py_ssize_t a, Py_ssize_t b,
                            Py_ssize_t c=-1) noexcept:
    return shape[0] == a and shape[1] == b and (c < 0 or shape[2] == c)


cdef int _check_problem(Pattern mask, Py_ssize_t h, Py_ssize_t n, Py_ssize_t m, Py_ssize_t d,
                        Py_ssize_t dv, bint fits, bint aligned) except -1:
    """ValueError unless the arrays of a call fit mask and each other (`fits`) and
    are aligned, and the problem is not empty (the callers fill empty outputs)."""
    if n != mask.n_rows or m != mask.n_cols:
        raise ValueError(f"mask has shape {(mask.n_rows, mask.n_cols)}, but q and k have "
                         f"lengths {n} and {m}")
    if not fits:
        raise ValueError("the arrays do not fit each other: q (H, N, D), k (H, M, D), "
                         "v (H, M, Dv), outputs alike")
    if not (h and n and mask.nnz and d and dv):
        raise ValueError("empty problem: there is nothing to compute")
    if not aligned:
        raise ValueError("the arrays must be aligned to their element type")
    return 0


def forward(q, k, v, Pattern mask not None, scale, out, lse, int n_threads):
    """out[h], lse[h] = the attention of head h over mask, for every h < q.shape[0].

    q (H, N, D), k (H, M, D), v (H, M, Dv), out (H, N, Dv), lse (H, N): aligned,
    C-contiguous, one dtype (float32 or float64); mask (N, M).
    """
    _forward(q, k, v, mask, mask.offsets, mask.cols, mask.order, scale, out, lse, n_threads)


def _forward(const real_t[:, :, ::1] q, const real_t[:, :, ::1] k, const real_t[:, :, ::1] v,
             Pattern mask not None, const index_t[::1] offsets, const index_t[::1] cols,
             const index_t[::1] order, real_t scale, real_t[:, :, ::1] out,
             real_t[:, ::1] lse, int n_threads):
    cdef Py_ssize_t n_heads = q.shape[0], n = q.shape[1], m = k.shape[1]
    cdef Py_ssize_t d = q.shape[2], dv = v.shape[2]
    cdef size_t size = sizeof(real_t)
    if not _owned(mask, offsets.base, cols.base, order.base):
        raise ValueError("offsets, cols and order must be the mask's own")
    _check_problem(
        mask, n_heads, n, m, d, dv,
        _has_shape(k.shape, n_heads, m, d) and _has_shape(v.shape, n_heads, m, dv)
        and _has_shape(out.shape, n_heads, n, dv) and _has_shape(lse.shape, n_heads, n),
        _aligned(&q[0, 0, 0], size) and _aligned(&k[0, 0, 0], size)
        and _aligned(&v[0, 0, 0], size) and _aligned(&out[0, 0, 0], size)
        and _aligned(&lse[0, 0], size))
    cdef Py_ssize_t block = _block_rows(n_heads, n, n_threads)
    cdef Py_ssize_t n_blocks = (n + block - 1) // block
    cdef Py_ssize_t item, h, r0, r1
    cdef Interrupt interrupt = Interrupt()
    # units: (head, block of rows); a row's result never depends on its unit
    for item in prange(n_heads * n_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        if interrupt.stopped():
            continue
        h = item // n_blocks
        r0 = (item % n_blocks) * block
        r1 = min(n, r0 + block)
        _fwd(&offsets[0], &cols[0], &order[r0], r1 - r0, &q[h, 0, 0], &k[h, 0, 0],
             &v[h, 0, 0], d, dv, scale, &out[h, 0, 0], &lse[h, 0])
    interrupt.check()


def backward(q, k, v, out, dout, lse, Pattern mask not None, scale, dq, dk, dv_out, delta,
             int n_threads):
    """dq, dk, dv_out of every head from the forward's out and lse.

    Shapes as for forward, with dout like out, dq like q, dk like k, dv_out like v
    and delta (H, N) scratch.  dq is computed over the mask's rows, dk and dv over
    the rows of its transpose, so that every output row has one owner and one
    fixed order of summation.
    """
    _backward(q, k, v, out, dout, lse, mask, mask.offsets, mask.cols, mask.order, scale,
              dq, dk, dv_out, delta, n_threads)


def _backward(const real_t[:, :, ::1] q, const real_t[:, :, ::1] k,
              const real_t[:, :, ::1] v, const real_t[:, :, ::1] out,
              const real_t[:, :, ::1] dout, const real_t[:, ::1] lse,
              Pattern mask not None, const index_t[::1] offsets, const index_t[::1] cols,
              const index_t[::1] order, real_t scale, real_t[:, :, ::1] dq,
              real_t[:, :, ::1] dk, real_t[:, :, ::1] dv_out, real_t[:, ::1] delta,
              int n_threads):
    cdef Py_ssize_t n_heads = q.shape[0], n = q.shape[1], m = k.shape[1]
    cdef Py_ssize_t d = q.shape[2], dv = v.shape[2]
    cdef size_t size = sizeof(real_t)
    if not _owned(mask, offsets.base, cols.base, order.base):
        raise ValueError("offsets, cols and order must be the mask's own")
    _check_problem(
        mask, n_heads, n, m, d, dv,
        _has_shape(k.shape, n_heads, m, d) and _has_shape(v.shape, n_heads, m, dv)
        and _has_shape(out.shape, n_heads, n, dv) and _has_shape(dout.shape, n_heads, n, dv)
        and _has_shape(lse.shape, n_heads, n) and _has_shape(dq.shape, n_heads, n, d)
        and _has_shape(dk.shape, n_heads, m, d) and _has_shape(dv_out.shape, n_heads, m, dv)
        and _has_shape(delta.shape, n_heads, n),
        _aligned(&q[0, 0, 0], size) and _aligned(&k[0, 0, 0], size)
        and _aligned(&v[0, 0, 0], size) and _aligned(&out[0, 0, 0], size)
        and _aligned(&dout[0, 0, 0], size) and _aligned(&lse[0, 0], size)
        and _aligned(&dq[0, 0, 0], size) and _aligned(&dk[0, 0, 0], size)
        and _aligned(&dv_out[0, 0, 0], size) and _aligned(&delta[0, 0], size))
    cdef Pattern t = mask.transpose()
    cdef const index_t[::1] t_offsets = t.offsets
    cdef const index_t[::1] t_cols = t.cols
    cdef const index_t[::1] t_order = t.order
    cdef Py_ssize_t block = _block_rows(n_heads, n, n_threads)
    cdef Py_ssize_t n_blocks = (n + block - 1) // block
    cdef Py_ssize_t t_block = _block_rows(n_heads, m, n_threads)
    cdef Py_ssize_t t_blocks = (m + t_block - 1) // t_block
    cdef Py_ssize_t item, h, r0, r1
    cdef Interrupt interrupt = Interrupt()
    # pass 1: delta and dq, over the rows (queries)
    for item in prange(n_heads * n_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        if interrupt.stopped():
            continue
        h = item // n_blocks
        r0 = (item % n_blocks) * block
        r1 = min(n, r0 + block)
        _bwd_dq(&offsets[0], &cols[0], &order[r0], r1 - r0, &q[h, 0, 0], &k[h, 0, 0],
                &v[h, 0, 0], &out[h, 0, 0], &dout[h, 0, 0], &lse[h, 0], d, dv, scale,
                &dq[h, 0, 0], &delta[h, 0])
    interrupt.check()
    # pass 2: dk and dv, over the columns (keys); needs all of delta
    for item in prange(n_heads * t_blocks, nogil=True, schedule="dynamic",
                       num_threads=n_threads):
        if interrupt.stopped():
            continue
        h = item // t_blocks
        r0 = (item % t_blocks) * t_block
        r1 = min(m, r0 + t_block)
        _bwd_dkdv(&t_offsets[0], &t_cols[0], &t_order[r0], r1 - r0, &q[h, 0, 0],
                  &k[h, 0, 0], &v[h, 0, 0], &dout[h, 0, 0], &lse[h, 0], &delta[h, 0],
                  d, dv, scale, &dk[h, 0, 0], &dv_out[h, 0, 0])
    interrupt.check()
