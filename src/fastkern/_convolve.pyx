"""nogil driver of the 2-D correlation core (csrc/convolve): parallel over row tiles.

Validation, dtype handling and the mode/boundary/convolve-vs-correlate geometry
live in convolve.py; this module assumes valid input.
"""
from libc.stdint cimport uint64_t
from cython.parallel cimport prange

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
    int fk_correlate2d_rows_f32(const fk_corr2d_geom *g, const float *img, const float *ker,
                                float fill, float *out, Py_ssize_t r0, Py_ssize_t r1, int store)
    int fk_correlate2d_rows_f64(const fk_corr2d_geom *g, const double *img, const double *ker,
                                double fill, double *out, Py_ssize_t r0, Py_ssize_t r1, int store)
    int fk_correlate2d_rows_u64(const fk_corr2d_geom *g, const uint64_t *img,
                                const uint64_t *ker, uint64_t fill, uint64_t *out,
                                Py_ssize_t r0, Py_ssize_t r1, int store)
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
cdef Py_ssize_t MIN_WORK_PER_THREAD = 1 << 22


cdef inline int _rows(const fk_corr2d_geom *g, const real_t *img, const real_t *ker,
                      real_t fill, real_t *out, Py_ssize_t r0, Py_ssize_t r1,
                      int store) noexcept nogil:
    if real_t is float:
        return fk_correlate2d_rows_f32(g, img, ker, fill, out, r0, r1, store)
    elif real_t is double:
        return fk_correlate2d_rows_f64(g, img, ker, fill, out, r0, r1, store)
    else:
        return fk_correlate2d_rows_u64(g, img, ker, fill, out, r0, r1, store)


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


def correlate_planes(const real_t[:, :] img_re, const real_t[:, :] img_im,
                     const real_t[:, ::1] ker_re, const real_t[:, ::1] ker_im,
                     real_t[:, :] out_re, real_t[:, :] out_im,
                     real_t fill_re, real_t fill_im,
                     Py_ssize_t off0, Py_ssize_t off1, Py_ssize_t step0, Py_ssize_t step1,
                     int boundary, int n_threads):
    """Real correlation of up to two image planes with up to two kernel planes.

    out_re = img_re (*) ker_re - img_im (*) ker_im
    out_im = img_re (*) ker_im + img_im (*) ker_re
    where (*) is the correlation of fk_correlate2d.h and a missing plane (None) is
    zero: one call covers real, real-by-complex and complex-by-complex inputs.
    out_im, when given, has out_re's shape and strides.
    """
    cdef bint has_img_im = img_im is not None
    cdef bint has_ker_im = ker_im is not None
    cdef bint has_out_im = out_im is not None
    cdef fk_corr2d_geom g_re = _geom(img_re, ker_re, out_re, off0, off1, step0, step1, boundary)
    cdef fk_corr2d_geom g_im = g_re
    cdef const real_t *p_img_re = &img_re[0, 0]
    cdef const real_t *p_img_im = NULL
    cdef const real_t *p_ker_re = &ker_re[0, 0]
    cdef const real_t *p_ker_im = NULL
    cdef real_t *p_out_re = &out_re[0, 0]
    cdef real_t *p_out_im = NULL
    if has_img_im:
        g_im = _geom(img_im, ker_re, out_re, off0, off1, step0, step1, boundary)
        g_im.isa = g_re.isa
        p_img_im = &img_im[0, 0]
    if has_ker_im:
        p_ker_im = &ker_im[0, 0]
    if has_out_im:
        p_out_im = &out_im[0, 0]

    cdef Py_ssize_t n_rows = out_re.shape[0]
    cdef Py_ssize_t work = out_re.shape[0] * out_re.shape[1] * ker_re.shape[0] * ker_re.shape[1]
    n_threads = <int>max(1, min(n_threads, work // MIN_WORK_PER_THREAD))
    cdef Py_ssize_t tile = (n_rows + 4 * n_threads - 1) // (4 * n_threads)
    # a tile spans (tile - 1) * step0 + kernel rows of the image: with a large
    # output stride, fewer output rows per tile keep its gather buffer small
    tile = max(1, min(MAX_TILE_ROWS, MAX_TILE_ROWS // step0, tile))
    if step0 == 1 and n_rows >= ROW_BLOCK:
        tile = (tile + ROW_BLOCK - 1) // ROW_BLOCK * ROW_BLOCK
    cdef Py_ssize_t n_tiles = (n_rows + tile - 1) // tile
    cdef Py_ssize_t t, r0, r1
    cdef int failed = 0
    cdef int store

    # dynamic: a thread that the OS holds back (a busy machine) does not hold up the call
    for t in prange(n_tiles, nogil=True, schedule="dynamic", num_threads=n_threads):
        r0 = t * tile
        r1 = min(n_rows, r0 + tile)
        failed += _rows(&g_re, p_img_re, p_ker_re, fill_re, p_out_re, r0, r1, FK_STORE_SET)
        if has_img_im and has_ker_im:
            failed += _rows(&g_im, p_img_im, p_ker_im, fill_im, p_out_re, r0, r1, FK_STORE_SUB)
        if has_out_im:
            store = FK_STORE_SET
            if has_ker_im:
                failed += _rows(&g_re, p_img_re, p_ker_im, fill_re, p_out_im, r0, r1, store)
                store = FK_STORE_ADD
            if has_img_im:
                failed += _rows(&g_im, p_img_im, p_ker_re, fill_im, p_out_im, r0, r1, store)
    if failed:
        raise MemoryError("convolve2d: could not allocate a tile buffer")


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
