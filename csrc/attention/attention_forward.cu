// Forward pass of CSR-sparse attention: scores, online softmax and the weighted
// sum of values fused in one kernel (see attention_forward_cuda.h).
#include "attention_device.cuh"
#include "attention_forward_cuda.h"

namespace fastkern {
namespace {

using namespace attention_device;

// One warp per (head, row); rows in row_order, all heads of a row in
// consecutive warps, so that the longest rows start first and the warps of a
// block have rows of one length.  Shared memory: kWarpsPerBlock * d
// accumulator values (each warp's query row).
template <typename T, typename I, int kPerLane>
__global__ void __launch_bounds__(kThreadsPerBlock)
    SparseAttentionForwardKernel(int64_t heads, int64_t n, int64_t m, int d, int dv,
                                 const I* __restrict__ row_offsets,
                                 const I* __restrict__ column_indices,
                                 const I* __restrict__ row_order, const T* __restrict__ q,
                                 const T* __restrict__ k, const T* __restrict__ v,
                                 AccumulatorT<T> scale, T* __restrict__ out,
                                 AccumulatorT<T>* __restrict__ lse) {
  using A = AccumulatorT<T>;
  extern __shared__ __align__(16) unsigned char shared[];
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (task >= heads * n) return;  // the whole warp: task is uniform across it
  const int64_t h = task % heads;
  const int64_t i = row_order[task / heads];
  const int64_t hi = h * n + i;

  A* q_row = reinterpret_cast<A*>(shared) + warp * d;
  LoadRow(q_row, q + hi * d, d, lane);
  __syncwarp();

  const T* k_head = k + h * m * d;
  const T* v_head = v + h * m * dv;
  A acc[kPerLane];  // the unnormalised output row, lane + 32 t
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) acc[t] = 0;
  A row_max = NegativeInfinity<A>();  // running maximum of the scores
  A row_sum = 0;                      // running sum of exp(score - row_max)

  const int64_t end = row_offsets[i + 1];
  for (int64_t chunk = row_offsets[i]; chunk < end; chunk += kWarpSize) {
    const int64_t p = chunk + lane;
    const bool valid = p < end;
    const int64_t j = valid ? static_cast<int64_t>(column_indices[p]) : 0;
    const A score = valid ? scale * Dot(q_row, k_head + j * d, d) : NegativeInfinity<A>();

    const A chunk_max = WarpMax(score);
    if (chunk_max > row_max) {
      // a new maximum: rescale what was accumulated against the old one
      if (row_sum != 0) {
        const A alpha = Exp(row_max - chunk_max);
        row_sum *= alpha;
#pragma unroll
        for (int t = 0; t < kPerLane; ++t) acc[t] *= alpha;
      }
      row_max = chunk_max;
    }
    const A weight = valid ? Weight(score, row_max) : A(0);
    row_sum += WarpSum(weight);

    const int count = static_cast<int>(end - chunk < kWarpSize ? end - chunk : kWarpSize);
    for (int c = 0; c < count; ++c) {
      const A w = __shfl_sync(kFullMask, weight, c);
      const int64_t jc = __shfl_sync(kFullMask, j, c);
      AxpyRow(acc, w, v_head + jc * dv, dv, lane);
    }
  }

  const bool any = row_sum != 0;  // NaN included: it propagates
  StoreRow(out + hi * dv, acc, any ? Reciprocal(row_sum) : A(0), dv, lane);
  if (lane == 0) lse[hi] = any ? row_max + Log(row_sum) : NegativeInfinity<A>();
}

template <typename T, typename I, int kPerLane>
void Launch(unsigned blocks, size_t shared_bytes, cudaStream_t stream, int64_t heads, int64_t n,
            int64_t m, int d, int dv, const I* row_offsets, const I* column_indices,
            const I* row_order, const T* q, const T* k, const T* v, AccumulatorT<T> scale,
            T* out, AccumulatorT<T>* lse) {
  SparseAttentionForwardKernel<T, I, kPerLane><<<blocks, kThreadsPerBlock, shared_bytes, stream>>>(
      heads, n, m, d, dv, row_offsets, column_indices, row_order, q, k, v, scale, out, lse);
}

}  // namespace

template <typename T, typename I>
cudaError_t CudaSparseAttentionForward(int64_t heads, int64_t n, int64_t m, int d, int dv,
                                       const I* __restrict__ row_offsets,
                                       const I* __restrict__ column_indices,
                                       const I* __restrict__ row_order, const T* __restrict__ q,
                                       const T* __restrict__ k, const T* __restrict__ v,
                                       AccumulatorT<T> scale, T* __restrict__ out,
                                       AccumulatorT<T>* __restrict__ lse, cudaStream_t stream) {
  if (heads < 0 || n < 0 || m < 0 || d < 1 || d > kCudaMaxHeadDim || dv < 1 ||
      dv > kCudaMaxHeadDim) {
    return cudaErrorInvalidValue;
  }
  unsigned blocks;
  if (!BlocksFor(heads * n, &blocks)) return cudaErrorInvalidValue;
  if (blocks == 0) return cudaSuccess;
  const size_t shared_bytes = sizeof(AccumulatorT<T>) * kWarpsPerBlock * d;
  WithPerLane(dv, [&](auto per_lane) {
    Launch<T, I, decltype(per_lane)::value>(blocks, shared_bytes, stream, heads, n, m, d, dv,
                                            row_offsets, column_indices, row_order, q, k, v,
                                            scale, out, lse);
  });
  return cudaGetLastError();
}

#define FASTKERN_INSTANTIATE_FORWARD(T, I)                                                \
  template cudaError_t CudaSparseAttentionForward<T, I>(                                  \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, AccumulatorT<T>, T*, AccumulatorT<T>*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_INSTANTIATE_FORWARD)
#undef FASTKERN_INSTANTIATE_FORWARD

}  // namespace fastkern
