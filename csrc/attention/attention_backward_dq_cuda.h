// CSR-sparse scaled dot-product attention on CUDA: the backward pass, query side.
#ifndef FASTKERN_ATTENTION_BACKWARD_DQ_CUDA_H_
#define FASTKERN_ATTENTION_BACKWARD_DQ_CUDA_H_

#include <cstdint>

#include "attention_common_cuda.h"

namespace fastkern {

/**
 * Gradient with respect to q of CudaSparseAttentionForward, with the
 * probabilities p_ij = exp(s_ij - lse_i) recomputed from the forward's lse:
 *
 *   delta_i = dout_i . out_i
 *   dq_i    = scale * sum_j p_ij (dout_i . v_j - delta_i) k_j
 *
 * Every row of dq and delta is written (zeros in dq for a row with no allowed
 * key).  Run it before CudaSparseAttentionBackwardKeys, which reads delta.
 *
 * @param heads, n, m, d, dv, row_offsets, column_indices, row_order, q, k, v,
 *   scale As for CudaSparseAttentionForward.
 * @param out heads * n * dv values: the forward's output.
 * @param dout heads * n * dv values: the gradient with respect to out.
 * @param lse heads * n accumulator values: the forward's log-sum-exp.
 * @param dq heads * n * d values, written.
 * @param delta heads * n accumulator values, written.
 * @param stream The stream the kernel runs on.
 * @return The launch's status; cudaErrorInvalidValue for sizes out of range.
 */
template <typename T, typename I>
cudaError_t CudaSparseAttentionBackwardQueries(
    int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ row_offsets,
    const I* __restrict__ column_indices, const I* __restrict__ row_order,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const T* __restrict__ out, const T* __restrict__ dout,
    const AccumulatorT<T>* __restrict__ lse, AccumulatorT<T> scale, T* __restrict__ dq,
    AccumulatorT<T>* __restrict__ delta, cudaStream_t stream);

#define FASTKERN_DECLARE_BACKWARD_DQ(T, I)                                                \
  extern template cudaError_t CudaSparseAttentionBackwardQueries<T, I>(                   \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, const T*, const T*, const AccumulatorT<T>*, AccumulatorT<T>, T*,          \
      AccumulatorT<T>*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_DECLARE_BACKWARD_DQ)
#undef FASTKERN_DECLARE_BACKWARD_DQ

}  // namespace fastkern

#endif  // FASTKERN_ATTENTION_BACKWARD_DQ_CUDA_H_
