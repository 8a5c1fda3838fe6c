"""nogil driver of the 2-D correlation core (csrc/convolve): parallel over tiles.

Validation, dtype handling and the mode/boundary/convolve-vs-correlate geometry
live in convolve.py; this module assumes valid input.
"""
import numpy as np

from libc.stdint cimport uint64_t
from cython.parallel cimport prange, threadid

from fastkern._interrupt cimport Interrupt

cdef extern from "convolve/fk_fftconv.h" nogil:
    ctypedef struct fk_fftconv_plan:
        Py_ssize_t rows, cols, half, width
        const void *tw_col_re
        const void *tw_col_im
        const void *tw_split_re
        const void *tw_split_im
        const void *tw_row_re
        const void *tw_row_im
        const Py_ssize_t *rev_col
    Py_ssize_t fk_fftconv_workspace(const fk_fftconv_plan *p)
    void fk_fftconv_tables(Py_ssize_t rows, Py_ssize_t cols, double *tw_col_re,
                           double *tw_col_im, double *tw_split_re, double *tw_split_im,
                           double *tw_row_re, double *tw_row_im, Py_ssize_t *rev_col)

cdef extern from "convolve/fk_correlate2d.h" nogil:
    ctypedef struct fk_corr2d_geom:
        Py_ssize_t in_rows, in_cols, in_s0, in_s1
        Py_ssize_t k_rows, k_cols
        Py_ssize_t out_rows, out_cols, out_s0, out_s1
        Py_ssize_t off0, off1, step0, step1
        int boundary
        int isa
    enum:
        FK_STORE_SET
        FK_STORE_ADD
        FK_STORE_SUB
    int fk_correlate2d_tile_f32(const fk_corr2d_geom *g, const float *img, const float *ker,
                                Py_ssize_t n_ker, float fill, float *out, Py_ssize_t out_step,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                int store)
    int fk_correlate2d_tile_f64(const fk_corr2d_geom *g, const double *img, const double *ker,
                                Py_ssize_t n_ker, double fill, double *out,
                                Py_ssize_t out_step, Py_ssize_t r0, Py_ssize_t r1,
                                Py_ssize_t c0, Py_ssize_t c1, int store)
    int fk_correlate2d_tile_u64(const fk_corr2d_geom *g, const uint64_t *img,
                                const uint64_t *ker, Py_ssize_t n_ker, uint64_t fill,
                                uint64_t *out, Py_ssize_t out_step, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1, int store)
    int fk_sepcorr2d_tile_f32(const fk_corr2d_geom *g, const float *img, const float *col,
                              const float *row, float fill, float *out, Py_ssize_t r0,
                              Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1, int store)
    int fk_sepcorr2d_tile_f64(const fk_corr2d_geom *g, const double *img, const double *col,
                              const double *row, double fill, double *out, Py_ssize_t r0,
                              Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1, int store)
    int fk_sepcorr2d_tile_u64(const fk_corr2d_geom *g, const uint64_t *img,
                              const uint64_t *col, const uint64_t *row, uint64_t fill,
                              uint64_t *out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                              Py_ssize_t c1, int store)
    Py_ssize_t fk_correlate2d_col_end(const fk_corr2d_geom *g, Py_ssize_t c0)
    int fk_correlate2d_isa(int isa)

ctypedef fused real_t:
    float
    double
    uint64_t

# Output rows per tile, at most: small enough to spread work over threads and
# keep a tile's image rows in cache.  Tiles are whole blocks of ROW_BLOCK rows,
# what the unit-stride kernels compute at once, where the output allows.
cdef enum:
    MAX_TILE_ROWS = 32
    ROW_BLOCK = 4

# Multiply-adds below which another thread costs more than it saves.
cdef double MIN_WORK_PER_THREAD = 1 << 22
cdef double READ_COST = 4.0

# Multiply-adds of one tile, at most (about): a tile is the unit of work between
# checks for Ctrl-C, so it must be short on any machine (a few ms).  The core
# bounds one row of a column block (fk_correlate2d_col_end); this bounds the rows.
cdef double MAX_TILE_WORK = 1 << 26


cdef inline int _tile(const fk_corr2d_geom *g, const real_t *img, const real_t *ker,
                      Py_ssize_t n_ker, real_t fill, real_t *out, Py_ssize_t out_step,
                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                      int store) noexcept nogil:
    if real_t is float:
        return fk_correlate2d_tile_f32(g, img, ker, n_ker, fill, out, out_step, r0, r1, c0, c1,
                                       store)
    elif real_t is double:
        return fk_correlate2d_tile_f64(g, img, ker, n_ker, fill, out, out_step, r0, r1, c0, c1,
                                       store)
    else:
        return fk_correlate2d_tile_u64(g, img, ker, n_ker, fill, out, out_step, r0, r1, c0, c1,
                                       store)


cdef fk_corr2d_geom _geom(const real_t[:, :] img, const real_t[:, ::1] ker,
                          real_t[:, :] out, Py_ssize_t off0, Py_ssize_t off1,
                          Py_ssize_t step0, Py_ssize_t step1, int boundary):
    cdef fk_corr2d_geom g
    g.in_rows = img.shape[0]
    g.in_cols = img.shape[1]
    g.in_s0 = img.strides[0] // <Py_ssize_t>sizeof(real_t)
    g.in_s1 = img.strides[1] // <Py_ssize_t>sizeof(real_t)
    g.k_rows = ker.shape[0]
    g.k_cols = ker.shape[1]
    g.out_rows = out.shape[0]
    g.out_cols = out.shape[1]
    g.out_s0 = out.strides[0] // <Py_ssize_t>sizeof(real_t)
    g.out_s1 = out.strides[1] // <Py_ssize_t>sizeof(real_t)
    g.off0 = off0
    g.off1 = off1
    g.step0 = step0
    g.step1 = step1
    g.boundary = boundary
    g.isa = fk_correlate2d_isa(-1)  # once per call: every tile uses the same kernels
    return g


cdef Py_ssize_t[::1] _column_blocks(const fk_corr2d_geom *g):
    """The core's column block boundaries: 0, ..., out_cols."""
    cdef Py_ssize_t n = 0, c = 0
    while c < g.out_cols:
        c = fk_correlate2d_col_end(g, c)
        n += 1
    cdef Py_ssize_t[::1] ends = np.empty(n + 1, dtype=np.intp)
    ends[0] = 0
    for n in range(1, ends.shape[0]):
        ends[n] = fk_correlate2d_col_end(g, ends[n - 1])
    return ends


def correlate_planes(const real_t[:, :] img_re, const real_t[:, :] img_im,
                     const real_t[:, :, ::1] ker_re, const real_t[:, :, ::1] ker_im,
                     real_t[:, :, :] out_re, real_t[:, :, :] out_im,
                     real_t fill_re, real_t fill_im,
                     Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t step0, Py_ssize_t step1,
                     int boundary, int n_threads):
    """Real correlation of up to two image planes with a bank of F kernels of up
    to two planes each, into F outputs:

    out_re[f] = img_re (*) ker_re[f] - img_im (*) ker_im[f]
    out_im[f] = img_re (*) ker_im[f] + img_im (*) ker_re[f]
    where (*) is the correlation of fk_correlate2d.h and a missing plane (None) is
    zero: one call covers real, real-by-complex and complex-by-complex inputs.
    out_im, when given, has out_re's shape and strides.

    The output is cut into tiles of rows by column blocks, short enough that
    Ctrl-C (fastkern._interrupt) raises KeyboardInterrupt soon after; each tile
    runs every kernel of the bank in turn, so the image block it reads stays in
    cache for all of them.  The tiles do not change a result.
    """
    cdef bint has_img_im = img_im is not None
    cdef bint has_ker_im = ker_im is not None
    cdef bint has_out_im = out_im is not None
    cdef Py_ssize_t n_bank = ker_re.shape[0]
    cdef Py_ssize_t out_step = out_re.strides[0] // <Py_ssize_t>sizeof(real_t)
    cdef fk_corr2d_geom g_re = _geom(img_re, ker_re[0], out_re[0], off0, off1, step0, step1,
                                     boundary)
    cdef fk_corr2d_geom g_im = g_re
    cdef const real_t *p_img_re = &img_re[0, 0]
    cdef const real_t *p_img_im = NULL
    cdef const real_t *p_ker_re = &ker_re[0, 0, 0]
    cdef const real_t *p_ker_im = NULL
    cdef real_t *p_out_re = &out_re[0, 0, 0]
    cdef real_t *p_out_im = NULL
    if has_img_im:
        g_im = _geom(img_im, ker_re[0], out_re[0], off0, off1, step0, step1, boundary)
        g_im.isa = g_re.isa
        p_img_im = &img_im[0, 0]
    if has_ker_im:
        p_ker_im = &ker_im[0, 0, 0]
    if has_out_im:
        p_out_im = &out_im[0, 0, 0]

    # column blocks are the core's; every plane has the same geometry but strides
    cdef Py_ssize_t[::1] col = _column_blocks(&g_re)
    cdef Py_ssize_t n_col = col.shape[0] - 1
    cdef Py_ssize_t b, widest = 1
    for b in range(n_col):
        widest = max(widest, col[b + 1] - col[b])

    # in doubles: a product of four sizes can pass 2**63.  The work counts the
    # multiply-adds and the image elements read (each about READ_COST
    # multiply-adds): a strided call with a small kernel does few of the first
    # but is bound by reading the image, which more threads speed up too.
    cdef Py_ssize_t n_rows = out_re.shape[1]
    cdef double taps = <double>ker_re.shape[1] * <double>ker_re.shape[2] * <double>n_bank
    cdef double rows_read = min(<double>g_re.in_rows,
                                <double>n_rows * <double>min(step0, ker_re.shape[1]))
    cdef double cols_read = min(<double>g_re.in_cols,
                                <double>out_re.shape[2] * <double>min(step1, ker_re.shape[2]))
    cdef double work = max(<double>n_rows * <double>out_re.shape[2] * taps,
                           READ_COST * rows_read * cols_read)
    n_threads = <int>max(1.0, min(<double>n_threads, work / MIN_WORK_PER_THREAD))
    cdef Py_ssize_t tile = (n_rows + 4 * n_threads - 1) // (4 * n_threads)
    # a tile spans (tile - 1) * step0 + kernel rows of the image: with a large
    # output stride, fewer output rows per tile keep its gather buffer small
    tile = min(MAX_TILE_ROWS, MAX_TILE_ROWS // step0, tile)
    tile = max(1, min(tile, <Py_ssize_t>(MAX_TILE_WORK / (widest * taps))))
    if step0 == 1 and n_rows >= ROW_BLOCK:
        tile = (tile + ROW_BLOCK - 1) // ROW_BLOCK * ROW_BLOCK
    cdef Py_ssize_t n_tiles = (n_rows + tile - 1) // tile
    cdef Py_ssize_t n_units = n_tiles * n_col
    n_threads = <int>min(<Py_ssize_t>n_threads, n_units)

    cdef Py_ssize_t u, r0, r1, c0, c1
    cdef int failed = 0
    cdef int store
    cdef Interrupt interrupt = Interrupt()
    # dynamic: a thread that the OS holds back (a busy machine) does not hold up
    # the others
    for u in prange(n_units, nogil=True, schedule="dynamic", num_threads=n_threads):
        if interrupt.stopped():
            continue
        r0 = u // n_col * tile
        r1 = min(n_rows, r0 + tile)
        c0 = col[u % n_col]
        c1 = col[u % n_col + 1]
        # the whole bank per plane product: the core reads the image block once
        failed += _tile(&g_re, p_img_re, p_ker_re, n_bank, fill_re, p_out_re, out_step,
                        r0, r1, c0, c1, FK_STORE_SET)
        if has_img_im and has_ker_im:
            failed += _tile(&g_im, p_img_im, p_ker_im, n_bank, fill_im, p_out_re, out_step,
                            r0, r1, c0, c1, FK_STORE_SUB)
        if has_out_im:
            store = FK_STORE_SET
            if has_ker_im:
                failed += _tile(&g_re, p_img_re, p_ker_im, n_bank, fill_re, p_out_im, out_step,
                                r0, r1, c0, c1, store)
                store = FK_STORE_ADD
            if has_img_im:
                failed += _tile(&g_im, p_img_im, p_ker_re, n_bank, fill_im, p_out_im, out_step,
                                r0, r1, c0, c1, store)
    interrupt.check()
    if failed:
        raise MemoryError("convolve2d: could not allocate a tile buffer")


cdef inline int _sep_tile(const fk_corr2d_geom *g, const real_t *img, const real_t *col,
                          const real_t *row, real_t fill, real_t *out, Py_ssize_t r0,
                          Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1, int store) noexcept nogil:
    if real_t is float:
        return fk_sepcorr2d_tile_f32(g, img, col, row, fill, out, r0, r1, c0, c1, store)
    elif real_t is double:
        return fk_sepcorr2d_tile_f64(g, img, col, row, fill, out, r0, r1, c0, c1, store)
    else:
        return fk_sepcorr2d_tile_u64(g, img, col, row, fill, out, r0, r1, c0, c1, store)


def sepcorrelate_planes(const real_t[:, :] img_re, const real_t[:, :] img_im,
                        const real_t[:, ::1] col_re, const real_t[:, ::1] col_im,
                        const real_t[:, ::1] row_re, const real_t[:, ::1] row_im,
                        real_t[:, :] out_re, real_t[:, :] out_im,
                        real_t fill_re, real_t fill_im,
                        Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t step0, Py_ssize_t step1,
                        int boundary, int n_threads):
    """The separable correlation (fk_sepcorr2d_tile) of up to two image planes with
    a column (k_rows x 1) and a row (1 x k_cols) of up to two planes each:
    out = img (*) (col x row) in complex arithmetic, a missing plane zero, as the
    sum of the real terms below.  Tiles of rows by column blocks, as
    correlate_planes."""
    cdef const real_t *planes_img[2]
    cdef const real_t *planes_col[2]
    cdef const real_t *planes_row[2]
    planes_img[0] = &img_re[0, 0]
    planes_img[1] = &img_im[0, 0] if img_im is not None else NULL
    planes_col[0] = &col_re[0, 0]
    planes_col[1] = &col_im[0, 0] if col_im is not None else NULL
    planes_row[0] = &row_re[0, 0]
    planes_row[1] = &row_im[0, 0] if row_im is not None else NULL
    cdef real_t *planes_out[2]
    planes_out[0] = &out_re[0, 0]
    planes_out[1] = &out_im[0, 0] if out_im is not None else NULL
    # (output plane, image, column, row, sign): (a + ib)(c + id)(e + if)
    cdef int[8][5] terms = [[0, 0, 0, 0, 1], [0, 0, 1, 1, -1], [0, 1, 0, 1, -1],
                            [0, 1, 1, 0, -1], [1, 0, 0, 1, 1], [1, 0, 1, 0, 1],
                            [1, 1, 0, 0, 1], [1, 1, 1, 1, -1]]
    cdef int[8][2] use          # the terms present: (index, store mode)
    cdef int n_use = 0, k, first_re = 1, first_im = 1
    for k in range(8):
        if (planes_out[terms[k][0]] == NULL or planes_img[terms[k][1]] == NULL
                or planes_col[terms[k][2]] == NULL or planes_row[terms[k][3]] == NULL):
            continue
        use[n_use][0] = k
        if (first_re if terms[k][0] == 0 else first_im):
            use[n_use][1] = FK_STORE_SET if terms[k][4] > 0 else -1
        else:
            use[n_use][1] = FK_STORE_ADD if terms[k][4] > 0 else FK_STORE_SUB
        if terms[k][0] == 0:
            first_re = 0
        else:
            first_im = 0
        n_use += 1
    # a first term of sign -1 is stored as 0 - term: a SET of zeros, then SUB
    cdef fk_corr2d_geom g_re = _geom(img_re, col_re, out_re, off0, off1, step0, step1, boundary)
    g_re.k_cols = row_re.shape[1]
    cdef fk_corr2d_geom g_im = g_re
    if img_im is not None:
        g_im = _geom(img_im, col_re, out_re, off0, off1, step0, step1, boundary)
        g_im.k_cols = g_re.k_cols
    cdef real_t fills[2]
    fills[0] = fill_re
    fills[1] = fill_im

    cdef Py_ssize_t n_rows = out_re.shape[0], n_cols = out_re.shape[1]
    cdef Py_ssize_t kr = col_re.shape[0], kc = row_re.shape[1]
    cdef double per_out = <double>(kr + kc) * (1 + step1)
    cdef double work = <double>n_rows * <double>n_cols * per_out * n_use
    n_threads = <int>max(1.0, min(<double>n_threads, work / MIN_WORK_PER_THREAD))
    # column blocks: about 2048 image columns, and a row of a block at most
    # about 2**24 multiply-adds; tiles of rows: at most MAX_TILE_ROWS and about
    # MAX_TILE_WORK multiply-adds (short units, for Ctrl-C)
    cdef Py_ssize_t block = max(1, min(2048 // step1, (1 << 24) // kc, n_cols))
    cdef Py_ssize_t n_col = (n_cols + block - 1) // block
    cdef double nq = <double>((block - 1) * step1 + kc)
    cdef Py_ssize_t tile = (n_rows + 4 * n_threads - 1) // (4 * n_threads)
    tile = max(1, min(tile, MAX_TILE_ROWS, <Py_ssize_t>(MAX_TILE_WORK / (nq * (kr + kc)))))
    cdef Py_ssize_t n_tiles = (n_rows + tile - 1) // tile
    cdef Py_ssize_t n_units = n_tiles * n_col
    n_threads = <int>min(<Py_ssize_t>n_threads, n_units)

    cdef Py_ssize_t u, r0, r1, c0, c1, a, b
    cdef int failed = 0, i, t, store
    cdef Interrupt interrupt = Interrupt()
    for u in prange(n_units, nogil=True, schedule="dynamic", num_threads=n_threads):
        if interrupt.stopped():
            continue
        r0 = u // n_col * tile
        r1 = min(n_rows, r0 + tile)
        c0 = u % n_col * block
        c1 = min(n_cols, c0 + block)
        for i in range(n_use):
            t = use[i][0]
            store = use[i][1]
            if store == -1:  # the plane's first term, negative
                for a in range(r0, r1):
                    for b in range(c0, c1):
                        planes_out[terms[t][0]][a * g_re.out_s0 + b * g_re.out_s1] = 0
                store = FK_STORE_SUB
            failed += _sep_tile(&g_re if terms[t][1] == 0 else &g_im, planes_img[terms[t][1]],
                                planes_col[terms[t][2]], planes_row[terms[t][3]],
                                fills[terms[t][1]], planes_out[terms[t][0]], r0, r1, c0, c1,
                                store)
    interrupt.check()
    if failed:
        raise MemoryError("sepconvolve2d: could not allocate a tile buffer")


_ISA_NAMES = ("scalar", "base", "avx2", "avx512")
fk_correlate2d_isa(-1)  # choose the kernels once, at import, before any thread runs


def _isa(name=None):
    """The kernel family unit-stride float correlations use, by name (integers
    use the AVX-512 family or plain C); with ``name``, select it first (capped at
    what this CPU runs).  For tests and benchmarks: a call already running keeps
    the family it started with."""
    if name is not None and name not in _ISA_NAMES:
        raise ValueError(f"unknown kernel family {name!r}; the families are {_ISA_NAMES}")
    code = fk_correlate2d_isa(-1 if name is None else _ISA_NAMES.index(name))
    return _ISA_NAMES[code]


# ---------------------------------------------------------------------------
# The FFT route's gather and scatter (fastkern/_fftconv.py runs the transforms)

ctypedef fused fft_t:
    float
    double
    float complex
    double complex


cdef inline Py_ssize_t _map_index(Py_ssize_t j, Py_ssize_t m, int boundary) noexcept nogil:
    """Image index of extended index j along an axis m long, or -1 for the fill
    value: fk_map_index of csrc/convolve/correlate2d.c."""
    cdef Py_ssize_t k
    if 0 <= j < m:
        return j
    if boundary == 1:  # wrap
        k = j % m
        return k + m if k < 0 else k
    if boundary == 2:  # symm
        k = (j if j >= 0 else -j - 1) % (2 * m)
        return 2 * m - k - 1 if k >= m else k
    return -1


def gather_tiles(const fft_t[:, :] img, fft_t fill, int boundary,
                 const Py_ssize_t[::1] row0, const Py_ssize_t[::1] col0,
                 fft_t[:, :, ::1] buf, int n_threads):
    """buf[t, i, j] = the image extended by `boundary` at (row0[t] + i, col0[t] + j)."""
    cdef Py_ssize_t n_tiles = buf.shape[0], rows = buf.shape[1], cols = buf.shape[2]
    cdef Py_ssize_t m = img.shape[0], n = img.shape[1]
    cdef Py_ssize_t t, i, j, r, c0, ja, jb, q
    for t in prange(n_tiles, nogil=True, schedule="dynamic", num_threads=n_threads):
        c0 = col0[t]
        # the columns read straight from the image: c0 + j in [0, n)
        ja = min(max(-c0, 0), cols)
        jb = min(max(n - c0, ja), cols)
        for i in range(rows):
            r = _map_index(row0[t] + i, m, boundary)
            if r < 0:
                for j in range(cols):
                    buf[t, i, j] = fill
                continue
            for j in range(ja):
                q = _map_index(c0 + j, n, boundary)
                buf[t, i, j] = fill if q < 0 else img[r, q]
            for j in range(ja, jb):
                buf[t, i, j] = img[r, c0 + j]
            for j in range(jb, cols):
                q = _map_index(c0 + j, n, boundary)
                buf[t, i, j] = fill if q < 0 else img[r, q]


def scatter_tiles(const fft_t[:, :, ::1] y, fft_t[:, :] out,
                  const Py_ssize_t[::1] k0, const Py_ssize_t[::1] m0,
                  Py_ssize_t nk, Py_ssize_t nm, Py_ssize_t step0, Py_ssize_t step1,
                  Py_ssize_t d0, Py_ssize_t d1, int n_threads):
    """out[k0[t] + a, m0[t] + b] = y[t, d0 + a * step0, d1 + b * step1] for the
    a < nk, b < nm that fall inside out."""
    cdef Py_ssize_t n_tiles = y.shape[0], t, a, b, rows, cols
    for t in prange(n_tiles, nogil=True, schedule="dynamic", num_threads=n_threads):
        rows = min(nk, out.shape[0] - k0[t])
        cols = min(nm, out.shape[1] - m0[t])
        for a in range(rows):
            for b in range(cols):
                out[k0[t] + a, m0[t] + b] = y[t, d0 + a * step0, d1 + b * step1]


# ---------------------------------------------------------------------------
# The FFT route's own transforms (csrc/convolve/fk_fftconv.h): real float32 and
# float64 tiles of power-of-two sizes, every tile in one nogil parallel loop

cdef extern from "convolve/fk_fftconv.h" nogil:
    void fk_fftconv_kernel_f32(const fk_fftconv_plan *p, const float *ker, Py_ssize_t k_rows,
                               Py_ssize_t k_cols, float *spec_re, float *spec_im, float *ws)
    void fk_fftconv_kernel_f64(const fk_fftconv_plan *p, const double *ker, Py_ssize_t k_rows,
                               Py_ssize_t k_cols, double *spec_re, double *spec_im, double *ws)
    void fk_fftconv_tile_f32(const fk_fftconv_plan *p, const fk_corr2d_geom *g_re,
                             const float *img_re, float fill_re, const fk_corr2d_geom *g_im,
                             const float *img_im, float fill_im, const float **spec,
                             float *out_re, float *out_im, Py_ssize_t k0, Py_ssize_t nk,
                             Py_ssize_t m0, Py_ssize_t nm, float *ws)
    void fk_fftconv_tile_f64(const fk_fftconv_plan *p, const fk_corr2d_geom *g_re,
                             const double *img_re, double fill_re, const fk_corr2d_geom *g_im,
                             const double *img_im, double fill_im, const double **spec,
                             double *out_re, double *out_im, Py_ssize_t k0, Py_ssize_t nk,
                             Py_ssize_t m0, Py_ssize_t nm, double *ws)

ctypedef fused real_f:
    float
    double


def fft_correlate(const real_f[:, :] img_re, const real_f[:, :] img_im,
                  const real_f[:, ::1] ker_re, const real_f[:, ::1] ker_im,
                  real_f[:, :] out_re, real_f[:, :] out_im, real_f fill_re, real_f fill_im,
                  Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t step0, Py_ssize_t step1,
                  int boundary, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t nk,
                  Py_ssize_t nm, int n_threads):
    """The correlation of correlate_planes, by overlap-save over rows x cols tiles
    (powers of two, rows >= 2), each giving nk x nm outputs: real planes, and
    complex data as planes (img_im, ker_im, out_im None where absent)."""
    dtype = np.float32 if real_f is float else np.float64
    cdef Py_ssize_t half = rows // 2
    cdef Py_ssize_t n_col = max(half // 2, 1), n_row = max(cols // 2, 1)
    doubles = [np.zeros(n) for n in (n_col, n_col, half + 1, half + 1, n_row, n_row)]
    cdef double[::1] d0 = doubles[0], d1 = doubles[1], d2 = doubles[2]
    cdef double[::1] d3 = doubles[3], d4 = doubles[4], d5 = doubles[5]
    cdef Py_ssize_t[::1] rev = np.zeros(half, dtype=np.intp)
    fk_fftconv_tables(rows, cols, &d0[0], &d1[0], &d2[0], &d3[0], &d4[0], &d5[0], &rev[0])
    # the tables in the call's precision
    tables = [d.astype(dtype) for d in doubles]
    cdef real_f[::1] t0 = tables[0], t1 = tables[1], t2 = tables[2]
    cdef real_f[::1] t3 = tables[3], t4 = tables[4], t5 = tables[5]
    cdef fk_fftconv_plan plan
    plan.rows = rows
    plan.cols = cols
    plan.half = half
    plan.width = (half + 1 + 7) // 8 * 8
    plan.tw_col_re = &t0[0]
    plan.tw_col_im = &t1[0]
    plan.tw_split_re = &t2[0]
    plan.tw_split_im = &t3[0]
    plan.tw_row_re = &t4[0]
    plan.tw_row_im = &t5[0]
    plan.rev_col = &rev[0]

    cdef bint has_img_im = img_im is not None
    cdef bint has_ker_im = ker_im is not None
    cdef fk_corr2d_geom g_re = _geom(img_re, ker_re, out_re, off0, off1, step0, step1, boundary)
    cdef fk_corr2d_geom g_im = g_re
    cdef const real_f *p_img_im = NULL
    cdef real_f *p_out_im = NULL
    if has_img_im:
        g_im = _geom(img_im, ker_re, out_re, off0, off1, step0, step1, boundary)
        p_img_im = &img_im[0, 0]
    if out_im is not None:
        p_out_im = &out_im[0, 0]
    cdef Py_ssize_t tiles_r = (out_re.shape[0] + nk - 1) // nk
    cdef Py_ssize_t tiles_c = (out_re.shape[1] + nm - 1) // nm
    cdef Py_ssize_t n_units = tiles_r * tiles_c
    n_threads = <int>max(1, min(<Py_ssize_t>n_threads, n_units))
    cdef Py_ssize_t ws_size = fk_fftconv_workspace(&plan) * (2 if has_img_im or has_ker_im
                                                             else 1)
    cdef real_f[:, ::1] ws = np.empty((n_threads, ws_size), dtype=dtype)
    cdef real_f[:, ::1] spec = np.zeros((4, cols * plan.width), dtype=dtype)
    cdef const real_f *specs[4]
    specs[0] = &spec[0, 0]
    specs[1] = &spec[1, 0]
    specs[2] = &spec[2, 0] if has_ker_im else NULL
    specs[3] = &spec[3, 0] if has_ker_im else NULL
    if real_f is float:
        fk_fftconv_kernel_f32(&plan, &ker_re[0, 0], ker_re.shape[0], ker_re.shape[1],
                              &spec[0, 0], &spec[1, 0], &ws[0, 0])
        if has_ker_im:
            fk_fftconv_kernel_f32(&plan, &ker_im[0, 0], ker_im.shape[0], ker_im.shape[1],
                                  &spec[2, 0], &spec[3, 0], &ws[0, 0])
    else:
        fk_fftconv_kernel_f64(&plan, &ker_re[0, 0], ker_re.shape[0], ker_re.shape[1],
                              &spec[0, 0], &spec[1, 0], &ws[0, 0])
        if has_ker_im:
            fk_fftconv_kernel_f64(&plan, &ker_im[0, 0], ker_im.shape[0], ker_im.shape[1],
                                  &spec[2, 0], &spec[3, 0], &ws[0, 0])

    cdef Py_ssize_t u, k0, m0
    cdef int tid
    cdef Interrupt interrupt = Interrupt()
    for u in prange(n_units, nogil=True, schedule="dynamic", num_threads=n_threads):
        if interrupt.stopped():
            continue
        tid = threadid()
        k0 = u // tiles_c * nk
        m0 = u % tiles_c * nm
        if real_f is float:
            fk_fftconv_tile_f32(&plan, &g_re, &img_re[0, 0], fill_re, &g_im, p_img_im, fill_im,
                                <const float **>specs, &out_re[0, 0], p_out_im, k0, nk, m0,
                                nm, &ws[tid, 0])
        else:
            fk_fftconv_tile_f64(&plan, &g_re, &img_re[0, 0], fill_re, &g_im, p_img_im, fill_im,
                                <const double **>specs, &out_re[0, 0], p_out_im, k0, nk, m0,
                                nm, &ws[tid, 0])
    interrupt.check()
