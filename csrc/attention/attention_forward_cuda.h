// CSR-sparse scaled dot-product attention on CUDA: the forward pass.
#ifndef FASTKERN_ATTENTION_FORWARD_CUDA_H_
#define FASTKERN_ATTENTION_FORWARD_CUDA_H_

#include <cstdint>

#include "attention_common_cuda.h"

namespace fastkern {

/**
 * Forward pass of sparse attention with an online softmax, for `heads`
 * independent problems sharing one mask:
 *
 *   s_ij  = scale * q_i . k_j            for the (i, j) the mask allows
 *   out_i = sum_j softmax_j(s_ij) v_j    (zeros for a row with no allowed key)
 *   lse_i = log sum_j exp(s_ij)          (-inf for such a row)
 *
 * No score or probability is stored.  Every row of out and lse is written.
 *
 * @param heads Problems (batch x heads).  0 launches nothing.
 * @param n Queries per problem (rows of the mask).
 * @param m Keys per problem (columns of the mask).
 * @param d Size of a query and key vector, in [1, kCudaMaxHeadDim].
 * @param dv Size of a value vector, in [1, kCudaMaxHeadDim].
 * @param row_offsets n + 1 indices into column_indices, non-decreasing, from 0.
 * @param column_indices row_offsets[n] key indices, each in [0, m).
 * @param row_order n row indices, a permutation of [0, n): the order in which
 *   rows are handed to warps, longest first for balance.
 * @param q heads * n * d values.
 * @param k heads * m * d values.
 * @param v heads * m * dv values.
 * @param scale Factor applied to q . k.
 * @param out heads * n * dv values, written.
 * @param lse heads * n accumulator values, written.
 * @param stream The stream the kernel runs on.
 * @return The launch's status; cudaErrorInvalidValue for sizes out of range.
 */
template <typename T, typename I>
cudaError_t CudaSparseAttentionForward(int64_t heads, int64_t n, int64_t m, int d, int dv,
                                       const I* __restrict__ row_offsets,
                                       const I* __restrict__ column_indices,
                                       const I* __restrict__ row_order, const T* __restrict__ q,
                                       const T* __restrict__ k, const T* __restrict__ v,
                                       AccumulatorT<T> scale, T* __restrict__ out,
                                       AccumulatorT<T>* __restrict__ lse, cudaStream_t stream);

#define FASTKERN_DECLARE_FORWARD(T, I)                                                    \
  extern template cudaError_t CudaSparseAttentionForward<T, I>(                           \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, AccumulatorT<T>, T*, AccumulatorT<T>*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_DECLARE_FORWARD)
#undef FASTKERN_DECLARE_FORWARD

}  // namespace fastkern

#endif  // FASTKERN_ATTENTION_FORWARD_CUDA_H_
