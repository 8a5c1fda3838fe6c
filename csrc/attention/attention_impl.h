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
static inline FK_T FK_FN(dot)(const FK_T *FK_RESTRICT a, const FK_T *FK_RESTRICT b,
                              ptrdiff_t n)
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

/* y += alpha * x */
static inline void FK_FN(axpy)(FK_T *FK_RESTRICT y, FK_T alpha, const FK_T *FK_RESTRICT x,
                               ptrdiff_t n)
{
    ptrdiff_t i = 0;
#ifdef FK_VECTOR_EXT
    typedef FK_FN(vec) vec;
    typedef FK_FN(vec16) vec16;
    enum { VW = 64 / sizeof(FK_T), VW16 = 16 / sizeof(FK_T) };
    for (; i + VW <= n; i += VW) *(vec *)(y + i) += alpha * *(const vec *)(x + i);
    for (; i + VW16 <= n; i += VW16) *(vec16 *)(y + i) += alpha * *(const vec16 *)(x + i);
#endif
    for (; i < n; ++i) y[i] += alpha * x[i];
}

static inline void FK_FN(scal)(FK_T *y, FK_T alpha, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; ++i) y[i] *= alpha;
}

FK_SIMD_CLONES
static void FK_FN(fwd_rows)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                            ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                            ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *out, FK_T *lse)
{
    FK_T s[FK_ATTN_CHUNK];
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t i = rows[r];
        const FK_T *qi = q + i * d;
        FK_T *acc = out + i * dv;  /* unnormalised output, accumulated in place */
        FK_T m = -INFINITY;        /* running maximum of the scores */
        FK_T l = 0;                /* running sum of exp(score - m) */
        for (ptrdiff_t c = 0; c < dv; ++c) acc[c] = 0;

        for (ptrdiff_t p0 = offsets[i], end = offsets[i + 1]; p0 < end; p0 += FK_ATTN_CHUNK) {
            const ptrdiff_t nc = end - p0 < FK_ATTN_CHUNK ? end - p0 : FK_ATTN_CHUNK;
            const FK_I *cj = cols + p0;
            FK_T cmax = -INFINITY;
            for (ptrdiff_t c = 0; c < nc; ++c) {
                s[c] = scale * FK_FN(dot)(qi, k + (ptrdiff_t)cj[c] * d, d);
                cmax = s[c] > cmax ? s[c] : cmax;
            }
            if (cmax > m) {
                /* a new maximum: rescale what was accumulated against the old one */
                if (l != 0) {
                    const FK_T alpha = FK_EXP(m - cmax);
                    l *= alpha;
                    FK_FN(scal)(acc, alpha, dv);
                }
                m = cmax;
            }
            for (ptrdiff_t c = 0; c < nc; ++c) s[c] = FK_EXP(s[c] - m);
            for (ptrdiff_t c = 0; c < nc; ++c) {
                l += s[c];
                FK_FN(axpy)(acc, s[c], v + (ptrdiff_t)cj[c] * dv, dv);
            }
        }
        if (l > 0) {
            FK_FN(scal)(acc, 1 / l, dv);
            lse[i] = m + FK_LOG(l);
        } else {
            lse[i] = -INFINITY;  /* no allowed key: zeros */
        }
    }
}

FK_SIMD_CLONES
static void FK_FN(bwd_dq_rows)(const FK_I *offsets, const FK_I *cols, const FK_I *rows,
                               ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                               const FK_T *out, const FK_T *dout, const FK_T *lse,
                               ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *dq, FK_T *delta)
{
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t i = rows[r];
        const FK_T *qi = q + i * d;
        const FK_T *doi = dout + i * dv;
        FK_T *dqi = dq + i * d;
        const FK_T di = FK_FN(dot)(doi, out + i * dv, dv);
        const FK_T li = lse[i];
        delta[i] = di;
        for (ptrdiff_t c = 0; c < d; ++c) dqi[c] = 0;
        for (ptrdiff_t p = offsets[i], end = offsets[i + 1]; p < end; ++p) {
            const ptrdiff_t j = cols[p];
            const FK_T pij = FK_EXP(scale * FK_FN(dot)(qi, k + j * d, d) - li);
            const FK_T dsij = pij * (FK_FN(dot)(doi, v + j * dv, dv) - di);
            FK_FN(axpy)(dqi, dsij, k + j * d, d);
        }
        FK_FN(scal)(dqi, scale, d);
    }
}

FK_SIMD_CLONES
static void FK_FN(bwd_dkdv_rows)(const FK_I *t_offsets, const FK_I *t_cols, const FK_I *rows,
                                 ptrdiff_t n_rows, const FK_T *q, const FK_T *k, const FK_T *v,
                                 const FK_T *dout, const FK_T *lse, const FK_T *delta,
                                 ptrdiff_t d, ptrdiff_t dv, FK_T scale, FK_T *dk, FK_T *dv_out)
{
    for (ptrdiff_t r = 0; r < n_rows; ++r) {
        const ptrdiff_t j = rows[r];
        const FK_T *kj = k + j * d;
        const FK_T *vj = v + j * dv;
        FK_T *dkj = dk + j * d;
        FK_T *dvj = dv_out + j * dv;
        for (ptrdiff_t c = 0; c < d; ++c) dkj[c] = 0;
        for (ptrdiff_t c = 0; c < dv; ++c) dvj[c] = 0;
        for (ptrdiff_t p = t_offsets[j], end = t_offsets[j + 1]; p < end; ++p) {
            const ptrdiff_t i = t_cols[p];
            const FK_T *doi = dout + i * dv;
            const FK_T pij = FK_EXP(scale * FK_FN(dot)(q + i * d, kj, d) - lse[i]);
            const FK_T dsij = pij * (FK_FN(dot)(doi, vj, dv) - delta[i]);
            FK_FN(axpy)(dvj, pij, doi, dv);
            FK_FN(axpy)(dkj, dsij, q + i * d, d);
        }
        FK_FN(scal)(dkj, scale, d);
    }
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
