// CSR-sparse scaled dot-product attention on CUDA: the backward pass, key side.
#ifndef FASTKERN_ATTENTION_BACKWARD_DKDV_CUDA_H_
#define FASTKERN_ATTENTION_BACKWARD_DKDV_CUDA_H_

#include <cstdint>

#include "attention_common_cuda.h"

namespace fastkern {

/**
 * Gradients with respect to k and v of CudaSparseAttentionForward, computed
 * over the transposed mask (row j lists the queries i that attend to key j), so
 * that each gradient row is summed by one warp without atomics:
 *
 *   dv_j = sum_i p_ij dout_i
 *   dk_j = scale * sum_i p_ij (dout_i . v_j - delta_i) q_i
 *
 * with p_ij = exp(s_ij - lse_i) and delta from
 * CudaSparseAttentionBackwardQueries.  Every row of dk and dv is written.
 *
 * @param heads, n, m, d, dv, q, k, v, scale As for CudaSparseAttentionForward.
 * @param t_row_offsets m + 1 indices into t_column_indices: the transposed mask.
 * @param t_column_indices row_offsets[n] query indices, each in [0, n).
 * @param t_row_order m key indices, a permutation of [0, m), longest rows first.
 * @param dout heads * n * dv values: the gradient with respect to out.
 * @param lse heads * n accumulator values: the forward's log-sum-exp.
 * @param delta heads * n accumulator values from CudaSparseAttentionBackwardQueries.
 * @param dk heads * m * d values, written.
 * @param dv_out heads * m * dv values, written.
 * @param stream The stream the kernel runs on.
 * @return The launch's status; cudaErrorInvalidValue for sizes out of range.
 */
template <typename T, typename I>
cudaError_t CudaSparseAttentionBackwardKeys(
    int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ t_row_offsets,
    const I* __restrict__ t_column_indices, const I* __restrict__ t_row_order,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const T* __restrict__ dout, const AccumulatorT<T>* __restrict__ lse,
    const AccumulatorT<T>* __restrict__ delta, AccumulatorT<T> scale, T* __restrict__ dk,
    T* __restrict__ dv_out, cudaStream_t stream);

#define FASTKERN_DECLARE_BACKWARD_DKDV(T, I)                                              \
  extern template cudaError_t CudaSparseAttentionBackwardKeys<T, I>(                      \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, const T*, const AccumulatorT<T>*, const AccumulatorT<T>*, AccumulatorT<T>, \
      T*, T*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_DECLARE_BACKWARD_DKDV)
#undef FASTKERN_DECLARE_BACKWARD_DKDV

}  // namespace fastkern

#endif  // FASTKERN_ATTENTION_BACKWARD_DKDV_CUDA_H_
