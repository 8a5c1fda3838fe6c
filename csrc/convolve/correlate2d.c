/* 2-D correlation core, instantiated for float, double and uint64 (see the header). */
#include <stdlib.h>
#include <string.h>

#include "fk_correlate2d.h"
#include "../common/fk_simd.h"

/* Image columns per block: the accumulator row and the image rows it reads stay
 * in L2 cache. */
#define FK_COL_BLOCK 4096

/* Kernels for unit column steps (correlate2d_simd.h), by instruction set: a
 * 16-byte-vector kernel wherever GCC/clang vector extensions exist, and AVX2 and
 * AVX-512 kernels chosen at run time on x86-64 Linux. */
#if defined(__GNUC__)
#define FK_VECTOR_EXT 1
#if defined(__aarch64__)
#define FK_BASE_V 4   /* 16 accumulators in 32 NEON registers */
#else
#define FK_BASE_V 2   /* 8 accumulators in 16 SSE registers */
#endif
#endif
#if defined(FK_VECTOR_EXT) && defined(FK_SIMD_DISPATCH)
#define FK_X86_DISPATCH 1
#include <immintrin.h>   /* AVX-512 permutes for the phase split (used under target()) */
#define FK_AVX2_V 3   /* 12 accumulators in 16 ymm registers */
#define FK_AVX512_V 4 /* 16 accumulators in 32 zmm registers */
#endif

enum { FK_ISA_SCALAR = 0, FK_ISA_BASE = 1, FK_ISA_AVX2 = 2, FK_ISA_AVX512 = 3 };

static int fk_isa_best(void)
{
#ifdef FK_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return FK_ISA_AVX512;
    if (__builtin_cpu_supports("x86-64-v3")) return FK_ISA_AVX2;
#endif
#ifdef FK_VECTOR_EXT
    return FK_ISA_BASE;
#else
    return FK_ISA_SCALAR;
#endif
}

static int fk_isa_chosen = -1;

int fk_correlate2d_isa(int isa)
{
    if (isa >= 0) {
        const int best = fk_isa_best();
        fk_isa_chosen = isa < best ? isa : best;
    } else if (fk_isa_chosen < 0) {
        fk_isa_chosen = fk_isa_best();
    }
    return fk_isa_chosen;
}

/* Output columns one block of the ISA's kernel computes (0: no SIMD kernel). */
static ptrdiff_t fk_isa_width(int isa, size_t elsize)
{
    switch (isa) {
#ifdef FK_X86_DISPATCH
    case FK_ISA_AVX512: return FK_AVX512_V * 64 / (ptrdiff_t)elsize;
    case FK_ISA_AVX2: return FK_AVX2_V * 32 / (ptrdiff_t)elsize;
#endif
#ifdef FK_VECTOR_EXT
    case FK_ISA_BASE: return FK_BASE_V * 16 / (ptrdiff_t)elsize;
#endif
    default: return 0;
    }
}

/* Outputs [*lo, *hi) along one axis have windows inside the image: output j's
 * window starts at image coordinate off + j*step and is k long, the axis n long.
 * No intermediate exceeds n or -off in size, whatever the step (up to
 * PTRDIFF_MAX): -off < k, and off + j*step is only formed for outputs that exist. */
static void fk_inside(ptrdiff_t off, ptrdiff_t step, ptrdiff_t n, ptrdiff_t k,
                      ptrdiff_t *lo, ptrdiff_t *hi)
{
    const ptrdiff_t last = n - k - off;  /* inside while j*step <= last */
    *lo = off >= 0 ? 0 : (-off - 1) / step + 1;  /* the least j with j*step >= -off */
    *hi = last < 0 ? 0 : last / step + 1;
}

/* Output columns per block: about FK_COL_BLOCK image columns, however strided. */
static ptrdiff_t fk_col_block(const fk_corr2d_geom *g)
{
    return g->step1 < FK_COL_BLOCK ? FK_COL_BLOCK / g->step1 : 1;
}

/* Output columns of an edge block at unit column step, at least (when the output
 * has them): as many as the widest SIMD block, so that edge blocks too run the
 * SIMD kernels. */
#define FK_EDGE_COLS 64

/* Multiply-adds in one output row of a column block, at most (about), where the
 * kernel is large: a tile of a few rows by one block is a unit of work between
 * checks for Ctrl-C (see fk_correlate2d_col_end), and must stay short. */
#define FK_BLOCK_ROW_WORK (1 << 24)

/* Output columns of a piece of a unit-step block (see fk_correlate2d_col_end). */
static ptrdiff_t fk_piece_cols(const fk_corr2d_geom *g)
{
    /* the kernel is one C-contiguous array: its size fits */
    const ptrdiff_t cols = FK_BLOCK_ROW_WORK / (g->k_rows * g->k_cols);
    return cols > FK_EDGE_COLS ? cols : FK_EDGE_COLS;
}

/* Column blocks: each run of outputs, [0, left), [left, right) and [right, n),
 * where [left, right) is the run whose windows lie inside the image, is cut into
 * blocks of fk_col_block columns from its start, so that interior blocks read
 * the image in place and only the edge blocks are gathered.  At unit column
 * step, a block is cut further into pieces of fk_piece_cols columns, the last
 * piece taking the remainder: every piece is at least FK_EDGE_COLS wide, so the
 * SIMD kernels compute every output that they would compute in the whole block,
 * and a piece's results are the block's, bit for bit (correlate2d_simd.h). */
ptrdiff_t fk_correlate2d_col_end(const fk_corr2d_geom *g, ptrdiff_t c0)
{
    const ptrdiff_t n = g->out_cols;
    ptrdiff_t c_lo, c_hi;
    fk_inside(g->off1, g->step1, g->in_cols, g->k_cols, &c_lo, &c_hi);
    const ptrdiff_t edge = g->step1 == 1 ? FK_EDGE_COLS : 1;
    ptrdiff_t left = c_lo > 0 ? (c_lo > edge ? c_lo : edge) : 0;
    if (left > n) left = n;
    ptrdiff_t right = c_hi < n ? (c_hi < n - edge ? c_hi : n - edge) : n;
    if (right < left) right = left;
    /* the run and the block that c0 lies in */
    const ptrdiff_t run0 = c0 < left ? 0 : c0 < right ? left : right;
    const ptrdiff_t run1 = c0 < left ? left : c0 < right ? right : n;
    const ptrdiff_t block = fk_col_block(g);
    const ptrdiff_t b0 = run0 + (c0 - run0) / block * block;
    const ptrdiff_t b1 = run1 - b0 > block ? b0 + block : run1;
    if (g->step1 == 1) {
        const ptrdiff_t piece = fk_piece_cols(g);
        if (b1 - c0 >= 2 * piece) return c0 + piece;
    }
    return b1;
}

ptrdiff_t fk_correlate2d_scratch(const fk_corr2d_geom *g, ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    const ptrdiff_t block = fk_col_block(g);
    const ptrdiff_t max_nc = n_cols < block ? n_cols : block;
    const ptrdiff_t nr = (n_rows - 1) * g->step0 + g->k_rows;
    const ptrdiff_t nq = (max_nc - 1) * g->step1 + g->k_cols;
    /* strided: the rows split by phase (correlate2d_impl.h, split_phases) */
    const ptrdiff_t n_ph = g->step1 < g->k_cols ? g->step1 : g->k_cols;
    const ptrdiff_t split = g->step1 > 1 ? nr * n_ph * (max_nc + (g->k_cols - 1) / g->step1) : 0;
    return 4 * max_nc + nr * nq + split;
}

#define FK_T float
#define FK_SUFFIX f32
#include "correlate2d_impl.h"
#include "separable_impl.h"
#undef FK_T
#undef FK_SUFFIX

#define FK_T double
#define FK_SUFFIX f64
#include "correlate2d_impl.h"
#include "separable_impl.h"
#undef FK_T
#undef FK_SUFFIX

#define FK_T uint64_t
#define FK_SUFFIX u64
#define FK_INTEGER 1
#include "correlate2d_impl.h"
#include "separable_impl.h"
#undef FK_T
#undef FK_SUFFIX
#undef FK_INTEGER
