/* Body of the sparse attention core, included once per (value, index) type pair
 * by attention.c with FK_T, FK_I, FK_SUFFIX, FK_EXP and FK_LOG defined. */

#define FK_CAT_(a, b) a##_##b
#define FK_CAT(a, b) FK_CAT_(a, b)
#define FK_FN(name) FK_CAT(name, FK_SUFFIX)

#ifdef FK_VECTOR_EXT
/* GCC/clang vectors of 64 and 16 bytes: one AVX-512 register (two AVX2 or four
 * SSE2 ones, as the SIMD clone decides) and one SSE register for short tails.
 * Loads through them may be unaligned. */
typedef FK_T FK_FN(vec) __attribute__((vector_size(64), aligned(sizeof(FK_T)), may_alias));
typedef FK_T FK_FN(vec16) __attribute__((vector_size(16), aligned(sizeof(FK_T)), may_alias));
#endif

/* a . b, summed in a fixed order that depends on n alone: the same on every
 * call, whatever the thread. */
FK_INLINE FK_T FK_FN(dot)(const FK_T *FK_RESTRICT a, const FK_T *FK_RESTRICT b, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    FK_T s = 0;
#ifdef FK_VECTOR_EXT
    typedef FK_FN(vec) vec;
    typedef FK_FN(vec16) vec16;
    enum { VW = 64 / sizeof(FK_T), VW16 = 16 / sizeof(FK_T) };
    if (n >= VW) {
        vec acc = *(const vec *)a * *(const vec *)b;
        for (i = VW; i + VW <= n; i += VW) acc += *(const vec *)(a + i) * *(const vec *)(b + i);
        vec16 s16 = {0};
        for (int l = 0; l < VW; l += VW16) {
            vec16 part;
            memcpy(&part, (const FK_T *)&acc + l, sizeof part);
            s16 += part;
        }
        for (int l = 0; l < VW16; ++l) s += s16[l];
    }
    if (i + VW16 <= n) {
        vec16 acc = *(const vec16 *)(a + i) * *(const vec16 *)(b + i);
        for (i += VW16; i + VW16 <= n; i += VW16)
            acc += *(const vec16 *)(a + i) * *(const vec16 *)(b + i);
        for (int l = 0; l < VW16; ++l) s += acc[l];
    }
#endif
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

FK_INLINE void FK_FN(scal)(FK_T *y, FK_T alpha, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i) y[i] *= alpha;
}

#if defined(FK_VECTOR_EXT) && defined(FK_HAVE_SHUFFLEVECTOR)
/* The four sums of the lanes of a, b, c, e, as lanes 0..3 of the result: the
 * vectors are folded into each other (a transpose and add), a third of the
 * shuffles and adds of reducing each alone. */
FK_INLINE void FK_FN(hsum4)(FK_FN(vec) a, FK_FN(vec) b, FK_FN(vec) c, FK_FN(vec) e,
                            FK_T *FK_RESTRICT out)
{
    typedef FK_FN(vec) vec;
#if FK_LANES == 16
    vec ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
           + __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    vec ce = __builtin_shufflevector(c, e, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
           + __builtin_shufflevector(c, e, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    /* lanes 4g..4g+3 hold four partial sums of vector g */
    vec x = __builtin_shufflevector(ab, ce, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
          + __builtin_shufflevector(ab, ce, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    x += __builtin_shufflevector(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    x += __builtin_shufflevector(x, x, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    out[0] = x[0];
    out[1] = x[4];
    out[2] = x[8];
    out[3] = x[12];
#else /* 8 lanes */
    vec ab = __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
           + __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
    vec ce = __builtin_shufflevector(c, e, 0, 1, 2, 3, 8, 9, 10, 11)
           + __builtin_shufflevector(c, e, 4, 5, 6, 7, 12, 13, 14, 15);
    /* lanes 2g, 2g+1 hold two partial sums of vector g */
    vec x = __builtin_shufflevector(ab, ce, 0, 1, 4, 5, 8, 9, 12, 13)
          + __builtin_shufflevector(ab, ce, 2, 3, 6, 7, 10, 11, 14, 15);
    x += __builtin_shufflevector(x, x, 1, 0, 3, 2, 5, 4, 7, 6);
    out[0] = x[0];
    out[1] = x[2];
    out[2] = x[4];
    out[3] = x[6];
#endif
}

/* hsum4 for 16-byte vectors. */
FK_INLINE void FK_FN(hsum4_16)(FK_FN(vec16) a, FK_FN(vec16) b, FK_FN(vec16) c,
                               FK_FN(vec16) e, FK_T *FK_RESTRICT out)
{
    typedef FK_FN(vec16) vec16;
#if FK_LANES == 16 /* 4 lanes */
    vec16 ab = __builtin_shufflevector(a, b, 0, 4, 1, 5) + __builtin_shufflevector(a, b, 2, 6, 3, 7);
    vec16 ce = __builtin_shufflevector(c, e, 0, 4, 1, 5) + __builtin_shufflevector(c, e, 2, 6, 3, 7);
    vec16 x = __builtin_shufflevector(ab, ce, 0, 1, 4, 5) + __builtin_shufflevector(ab, ce, 2, 3, 6, 7);
    memcpy(out, &x, sizeof x);
#else /* 2 lanes */
    vec16 ab = __builtin_shufflevector(a, b, 0, 2) + __builtin_shufflevector(a, b, 1, 3);
    vec16 ce = __builtin_shufflevector(c, e, 0, 2) + __builtin_shufflevector(c, e, 1, 3);
    memcpy(out, &ab, sizeof ab);
    memcpy(out + 2, &ce, sizeof ce);
#endif
}
#endif

/* s[c] = x . base[idx[c] * n : ...] for c < nc: one dot product per listed row.
 * Where n is a whole number of 64-byte (else 16-byte) vectors, rows go four at a
 * time, their partial sums reduced together (hsum4).  Which path a row takes depends on n
 * and on its place in the chunk, never on the thread. */
FK_INLINE void FK_FN(dots)(FK_T *FK_RESTRICT s, const FK_T *x, const FK_T *base,
                           const FK_I *idx, ptrdiff_t nc, ptrdiff_t n)
{
    ptrdiff_t c = 0;
#if defined(FK_VECTOR_EXT) && defined(FK_HAVE_SHUFFLEVECTOR)
    typedef FK_FN(vec) vec;
    if (n % FK_LANES == 0) {
        for (; c + 4 <= nc; c += 4) {
            const FK_T *r0 = base + (ptrdiff_t)idx[c] * n, *r1 = base + (ptrdiff_t)idx[c + 1] * n;
            const FK_T *r2 = base + (ptrdiff_t)idx[c + 2] * n, *r3 = base + (ptrdiff_t)idx[c + 3] * n;
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (ptrdiff_t i = 0; i < n; i += FK_LANES) {
                const vec xi = *(const vec *)(x + i);
                a0 += xi * *(const vec *)(r0 + i);
                a1 += xi * *(const vec *)(r1 + i);
                a2 += xi * *(const vec *)(r2 + i);
                a3 += xi * *(const vec *)(r3 + i);
            }
            FK_FN(hsum4)(a0, a1, a2, a3, s + c);
        }
    } else if (n % (16 / (ptrdiff_t)sizeof(FK_T)) == 0) {
        typedef FK_FN(vec16) vec16;
        enum { VW16 = 16 / sizeof(FK_T) };
        for (; c + 4 <= nc; c += 4) {
            const FK_T *r0 = base + (ptrdiff_t)idx[c] * n, *r1 = base + (ptrdiff_t)idx[c + 1] * n;
            const FK_T *r2 = base + (ptrdiff_t)idx[c + 2] * n, *r3 = base + (ptrdiff_t)idx[c + 3] * n;
            vec16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (ptrdiff_t i = 0; i < n; i += VW16) {
                const vec16 xi = *(const vec16 *)(x + i);
                a0 += xi * *(const vec16 *)(r0 + i);
                a1 += xi * *(const vec16 *)(r1 + i);
                a2 += xi * *(const vec16 *)(r2 + i);
                a3 += xi * *(const vec16 *)(r3 + i);
            }
            FK_FN(hsum4_16)(a0, a1, a2, a3, s + c);
        }
    }
#endif
    for (; c < nc; ++c) s[c] = FK_FN(dot)(x, base + (ptrdiff_t)idx[c] * n, n);
}

/* y += sum_c coef[c] * base[idx[c] * n : ...] over c < nc.  Loops over blocks of y
 * outside and the listed rows inside, with two accumulators (even and odd c) held
 * in registers: no store-to-load dependency from one row to the next, and one
 * fixed order of summation for given (nc, n). */
FK_INLINE void FK_FN(gather_axpy)(FK_T *FK_RESTRICT y, const FK_T *FK_RESTRICT coef,
                                  const FK_T *base, const FK_I *idx, ptrdiff_t nc, ptrdiff_t n)
{
    ptrdiff_t i = 0;
#ifdef FK_VECTOR_EXT
    typedef FK_FN(vec) vec;
    typedef FK_FN(vec16) vec16;
    enum { VW = 64 / sizeof(FK_T), VW16 = 16 / sizeof(FK_T) };
    for (; i + VW <= n; i += VW) {
        vec a0 = {0}, a1 = {0};
        ptrdiff_t c = 0;
        for (; c + 2 <= nc; c += 2) {
            a0 += coef[c] * *(const vec *)(base + (ptrdiff_t)idx[c] * n + i);
            a1 += coef[c + 1] * *(const vec *)(base + (ptrdiff_t)idx[c + 1] * n + i);
        }
        if (c < nc) a0 += coef[c] * *(const vec *)(base + (ptrdiff_t)idx[c] * n + i);
        *(vec *)(y + i) += a0 + a1;
    }
    for (; i + VW16 <= n; i += VW16) {
        vec16 a0 = {0}, a1 = {0};
        ptrdiff_t c = 0;
        for (; c + 2 <= nc; c += 2) {
            a0 += coef[c] * *(const vec16 *)(base + (ptrdiff_t)idx[c] * n + i);
            a1 += coef[c + 1] * *(const vec16 *)(base + (ptrdiff_t)idx[c + 1] * n + i);
        }
        if (c < nc) a0 += coef[c] * *(const vec16 *)(base + (ptrdiff_t)idx[c] * n + i);
        *(vec16 *)(y + i) += a0 + a1;
    }
#endif
    for (; i < n; ++i) {
        FK_T a0 = 0, a1 = 0;
        ptrdiff_t c = 0;
        for (; c + 2 <= nc; c += 2) {
            a0 += coef[c] * base[(ptrdiff_t)idx[c] * n + i];
            a1 += coef[c + 1] * base[(ptrdiff_t)idx[c + 1] * n + i];
        }
        if (c < nc) a0 += coef[c] * base[(ptrdiff_t)idx[c] * n + i];
        y[i] += a0 + a1;
    }
}

/* max(x[0..n)), in four interleaved partial maxima; NaNs are passed over. */
FK_INLINE FK_T FK_FN(max)(const FK_T *x, ptrdiff_t n)
{
    FK_T m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    ptrdiff_t c = 0;
    for (; c + 4 <= n; c += 4)
        for (int l = 0; l < 4; ++l) m[l] = x[c + l] > m[l] ? x[c + l] : m[l];
    for (int l = 0; c < n; ++c, ++l) m[l] = x[c] > m[l] ? x[c] : m[l];
    m[0] = m[1] > m[0] ? m[1] : m[0];
    m[2] = m[3] > m[2] ? m[3] : m[2];
    return m[2] > m[0] ? m[2] : m[0];
}

/* sum(x[0..n)), in four interleaved partial sums. */
FK_INLINE FK_T FK_FN(sum)(const FK_T *x, ptrdiff_t n)
{
    FK_T s[4] = {0, 0, 0, 0};
    ptrdiff_t c = 0;
    for (; c + 4 <= n; c += 4)
        for (int l = 0; l < 4; ++l) s[l] += x[c + l];
    for (int l = 0; c < n; ++c, ++l) s[l] += x[c];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* exp(x - shift), the weight of a score x: 0 for x = -inf whatever shift is, so
 * that a key scoring -inf drops out as a masked one does (exp(-inf - -inf) would
 * be NaN).  NaN scores stay NaN. */
FK_INLINE FK_T FK_FN(weight)(FK_T x, FK_T shift)
{
    return x == -INFINITY ? 0 : FK_EXP(x - shift);
}

/* The row functions walk a row's nonzeros in chunks of FK_ATTN_CHUNK: score the
 * chunk (dot products over D), exponentiate it (vectorised over the chunk), then
 * accumulate it (gather_axpy, vectorised over D).  Their bodies are inlined into
 * SIMD-cloned drivers that fix common head sizes at compile time. */

FK_INLINE void FK_FN(fwd_rows_body)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                                    ptrdiff_t n_rows, const FK_T *q, const FK_T *k,
                                    const FK_T *v, ptrdiff_t d, ptrdiff_t dv, FK_T scale,
                                    FK_T *out, FK_T *lse)
{
    FK_T s[FK_ATTN_CHUNK];
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t i = rows[r];
        FK_T *acc = out + i * dv;  /* unnormalised output, accumulated in place */
        FK_T m = -INFINITY;        /* running maximum of the scores */
        FK_T l = 0;                /* running sum of exp(score - m) */
        for (ptrdiff_t c = 0; c < dv; ++c) acc[c] = 0;

        for (ptrdiff_t p0 = offsets[i], end = offsets[i + 1]; p0 < end; p0 += FK_ATTN_CHUNK) {
            const ptrdiff_t nc = end - p0 < FK_ATTN_CHUNK ? end - p0 : FK_ATTN_CHUNK;
            FK_FN(dots)(s, q + i * d, k, cols + p0, nc, d);
            for (ptrdiff_t c = 0; c < nc; ++c) s[c] *= scale;
            const FK_T cmax = FK_FN(max)(s, nc);
            if (cmax > m) {
                /* a new maximum: rescale what was accumulated against the old one */
                if (l != 0) {
                    const FK_T alpha = FK_EXP(m - cmax);
                    l *= alpha;
                    FK_FN(scal)(acc, alpha, dv);
                }
                m = cmax;
            }
            for (ptrdiff_t c = 0; c < nc; ++c) s[c] = FK_FN(weight)(s[c], m);
            l += FK_FN(sum)(s, nc);
            FK_FN(gather_axpy)(acc, s, v, cols + p0, nc, dv);
        }
        if (l != 0) {  /* NaN included: it propagates */
            FK_FN(scal)(acc, 1 / l, dv);
            lse[i] = m + FK_LOG(l);
        } else {
            /* no allowed key, or all of them scoring -inf: zeros (acc may hold
             * 0 * inf from the values) */
            for (ptrdiff_t c = 0; c < dv; ++c) acc[c] = 0;
            lse[i] = -INFINITY;
        }
    }
}

FK_INLINE void FK_FN(bwd_dq_rows_body)(const FK_I *offsets, const FK_I *cols,
                                       const FK_I *rows, ptrdiff_t n_rows, const FK_T *q,
                                       const FK_T *k, const FK_T *v, const FK_T *out,
                                       const FK_T *dout, const FK_T *lse, ptrdiff_t d,
                                       ptrdiff_t dv, FK_T scale, FK_T *dq, FK_T *delta)
{
    FK_T s[FK_ATTN_CHUNK], dp[FK_ATTN_CHUNK];
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t i = rows[r];
        const FK_T *doi = dout + i * dv;
        FK_T *dqi = dq + i * d;
        const FK_T di = FK_FN(dot)(doi, out + i * dv, dv);
        const FK_T li = lse[i];
        delta[i] = di;
        for (ptrdiff_t c = 0; c < d; ++c) dqi[c] = 0;
        for (ptrdiff_t p0 = offsets[i], end = offsets[i + 1]; p0 < end; p0 += FK_ATTN_CHUNK) {
            const ptrdiff_t nc = end - p0 < FK_ATTN_CHUNK ? end - p0 : FK_ATTN_CHUNK;
            FK_FN(dots)(s, q + i * d, k, cols + p0, nc, d);
            FK_FN(dots)(dp, doi, v, cols + p0, nc, dv);
            /* p_ij, then ds_ij = p_ij (dout_i . v_j - delta_i) */
            for (ptrdiff_t c = 0; c < nc; ++c) s[c] = FK_FN(weight)(scale * s[c], li);
            for (ptrdiff_t c = 0; c < nc; ++c) s[c] *= dp[c] - di;
            FK_FN(gather_axpy)(dqi, s, k, cols + p0, nc, d);
        }
        FK_FN(scal)(dqi, scale, d);
    }
}

FK_INLINE void FK_FN(bwd_dkdv_rows_body)(const FK_I *t_offsets, const FK_I *t_cols,
                                         const FK_I *rows, ptrdiff_t n_rows, const FK_T *q,
                                         const FK_T *k, const FK_T *v, const FK_T *dout,
                                         const FK_T *lse, const FK_T *delta, ptrdiff_t d,
                                         ptrdiff_t dv, FK_T scale, FK_T *dk, FK_T *dv_out)
{
    FK_T p[FK_ATTN_CHUNK], ds[FK_ATTN_CHUNK];
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t j = rows[r];
        FK_T *dkj = dk + j * d;
        FK_T *dvj = dv_out + j * dv;
        for (ptrdiff_t c = 0; c < d; ++c) dkj[c] = 0;
        for (ptrdiff_t c = 0; c < dv; ++c) dvj[c] = 0;
        for (ptrdiff_t p0 = t_offsets[j], end = t_offsets[j + 1]; p0 < end; p0 += FK_ATTN_CHUNK) {
            const ptrdiff_t nc = end - p0 < FK_ATTN_CHUNK ? end - p0 : FK_ATTN_CHUNK;
            const FK_I *ci = t_cols + p0;  /* the queries that attend to key j */
            FK_FN(dots)(p, k + j * d, q, ci, nc, d);
            FK_FN(dots)(ds, v + j * dv, dout, ci, nc, dv);
            for (ptrdiff_t c = 0; c < nc; ++c) p[c] = FK_FN(weight)(scale * p[c], lse[ci[c]]);
            for (ptrdiff_t c = 0; c < nc; ++c) ds[c] = p[c] * (ds[c] - delta[ci[c]]);
            FK_FN(gather_axpy)(dvj, p, dout, ci, nc, dv);
            FK_FN(gather_axpy)(dkj, ds, q, ci, nc, d);
        }
        FK_FN(scal)(dkj, scale, d);
    }
}

FK_SIMD_CLONES
static void FK_FN(fwd_rows)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                            ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                            ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *out, FK_T *lse)
{
    FK_DISPATCH_HEAD_DIM(FK_FN(fwd_rows_body), offsets, cols, rows, n_rows, q, k, v, D_, DV_,
                         scale, out, lse);
}

FK_SIMD_CLONES
static void FK_FN(bwd_dq_rows)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                               ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                               const FK_T *out, const FK_T *dout, const FK_T *lse,
                               ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *dq, FK_T *delta)
{
    FK_DISPATCH_HEAD_DIM(FK_FN(bwd_dq_rows_body), offsets, cols, rows, n_rows, q, k, v, out,
                         dout, lse, D_, DV_, scale, dq, delta);
}

FK_SIMD_CLONES
static void FK_FN(bwd_dkdv_rows)(const FK_I *t_offsets, const FK_I *t_cols, const FK_I *rows,
                                 ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                                 const FK_T *dout, const FK_T *lse, const FK_T *delta,
                                 ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *dk, FK_T *dv_out)
{
    FK_DISPATCH_HEAD_DIM(FK_FN(bwd_dkdv_rows_body), t_offsets, t_cols, rows, n_rows, q, k, v,
                         dout, lse, delta, D_, DV_, scale, dk, dv_out);
}

/* The exported names: plain wrappers, so that the SIMD clones stay static. */

void FK_FN(fk_sparse_attn_fwd)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                               ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                               ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *out, FK_T *lse)
{
    FK_FN(fwd_rows)(offsets, cols, rows, n_rows, q, k, v, d, dv, scale, out, lse);
}

void FK_FN(fk_sparse_attn_bwd_dq)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                                  ptrdiff_t n_rows, const FK_T *q, const FK_T *k,
                                  const FK_T *v, const FK_T *out, const FK_T *dout,
                                  const FK_T *lse, ptrdiff_t d, ptrdiff_t dv, FK_T scale,
                                  FK_T *dq, FK_T *delta)
{
    FK_FN(bwd_dq_rows)(offsets, cols, rows, n_rows, q, k, v, out, dout, lse, d, dv, scale,
                       dq, delta);
}

void FK_FN(fk_sparse_attn_bwd_dkdv)(const FK_I *t_offsets, const FK_I *t_cols,
                                    const FK_I *rows, ptrdiff_t n_rows, const FK_T *q,
                                    const FK_T *k, const FK_T *v, const FK_T *dout,
                                    const FK_T *lse, const FK_T *delta, ptrdiff_t d,
                                    ptrdiff_t dv, FK_T scale, FK_T *dk, FK_T *dv_out)
{
    FK_FN(bwd_dkdv_rows)(t_offsets, t_cols, rows, n_rows, q, k, v, dout, lse, delta, d, dv,
                         scale, dk, dv_out);
}

#undef FK_FN
#undef FK_CAT
#undef FK_CAT_
