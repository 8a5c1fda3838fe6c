// Backward pass of CSR-sparse attention, query side: dq and delta, walking the
// mask's rows (see attention_backward_dq_cuda.h).
#include "attention_backward_dq_cuda.h"
#include "attention_device.cuh"

namespace fastkern {
namespace {

using namespace attention_device;

// One warp per (head, row), in the forward's order.  Shared memory:
// kWarpsPerBlock * (d + dv) accumulator values (each warp's q and dout rows).
template <typename T, typename I, int kPerLane>
__global__ void __launch_bounds__(kThreadsPerBlock)
    SparseAttentionBackwardQueriesKernel(
        int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ row_offsets,
        const I* __restrict__ column_indices, const I* __restrict__ row_order,
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
        const T* __restrict__ out, const T* __restrict__ dout,
        const AccumulatorT<T>* __restrict__ lse, AccumulatorT<T> scale, T* __restrict__ dq,
        AccumulatorT<T>* __restrict__ delta) {
  using A = AccumulatorT<T>;
  extern __shared__ __align__(16) unsigned char shared[];
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (task >= heads * n) return;  // the whole warp: task is uniform across it
  const int64_t h = task % heads;
  const int64_t i = row_order[task / heads];
  const int64_t hi = h * n + i;

  A* q_row = reinterpret_cast<A*>(shared) + warp * (d + dv);
  A* dout_row = q_row + d;
  LoadRow(q_row, q + hi * d, d, lane);
  LoadRow(dout_row, dout + hi * dv, dv, lane);
  __syncwarp();

  // delta_i = dout_i . out_i, lanes over dv
  A partial = 0;
  for (int c = lane; c < dv; c += kWarpSize) partial += dout_row[c] * ToAcc(out[hi * dv + c]);
  const A delta_i = WarpSum(partial);
  const A lse_i = lse[hi];

  const T* k_head = k + h * m * d;
  const T* v_head = v + h * m * dv;
  A acc[kPerLane];  // dq_i / scale, lane + 32 t
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) acc[t] = 0;

  const int64_t end = row_offsets[i + 1];
  for (int64_t chunk = row_offsets[i]; chunk < end; chunk += kWarpSize) {
    const int64_t p = chunk + lane;
    const bool valid = p < end;
    const int64_t j = valid ? static_cast<int64_t>(column_indices[p]) : 0;
    // ds_ij = p_ij (dout_i . v_j - delta_i)
    A ds = 0;
    if (valid) {
      const A prob = Weight(scale * Dot(q_row, k_head + j * d, d), lse_i);
      ds = prob * (Dot(dout_row, v_head + j * dv, dv) - delta_i);
    }
    const int count = static_cast<int>(end - chunk < kWarpSize ? end - chunk : kWarpSize);
    for (int c = 0; c < count; ++c) {
      const A w = __shfl_sync(kFullMask, ds, c);
      const int64_t jc = __shfl_sync(kFullMask, j, c);
      AxpyRow(acc, w, k_head + jc * d, d, lane);
    }
  }

  StoreRow(dq + hi * d, acc, scale, d, lane);
  if (lane == 0) delta[hi] = delta_i;
}

template <typename T, typename I, int kPerLane>
void Launch(unsigned blocks, size_t shared_bytes, cudaStream_t stream, int64_t heads, int64_t n,
            int64_t m, int d, int dv, const I* row_offsets, const I* column_indices,
            const I* row_order, const T* q, const T* k, const T* v, const T* out, const T* dout,
            const AccumulatorT<T>* lse, AccumulatorT<T> scale, T* dq, AccumulatorT<T>* delta) {
  SparseAttentionBackwardQueriesKernel<T, I, kPerLane>
      <<<blocks, kThreadsPerBlock, shared_bytes, stream>>>(heads, n, m, d, dv, row_offsets,
                                                           column_indices, row_order, q, k, v,
                                                           out, dout, lse, scale, dq, delta);
}

}  // namespace

template <typename T, typename I>
cudaError_t CudaSparseAttentionBackwardQueries(
    int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ row_offsets,
    const I* __restrict__ column_indices, const I* __restrict__ row_order,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const T* __restrict__ out, const T* __restrict__ dout,
    const AccumulatorT<T>* __restrict__ lse, AccumulatorT<T> scale, T* __restrict__ dq,
    AccumulatorT<T>* __restrict__ delta, cudaStream_t stream) {
  if (heads < 0 || n < 0 || m < 0 || d < 1 || d > kCudaMaxHeadDim || dv < 1 ||
      dv > kCudaMaxHeadDim) {
    return cudaErrorInvalidValue;
  }
  unsigned blocks;
  if (!BlocksFor(heads * n, &blocks)) return cudaErrorInvalidValue;
  if (blocks == 0) return cudaSuccess;
  const size_t shared_bytes = sizeof(AccumulatorT<T>) * kWarpsPerBlock * (d + dv);
  WithPerLane(d, [&](auto per_lane) {
    Launch<T, I, decltype(per_lane)::value>(blocks, shared_bytes, stream, heads, n, m, d, dv,
                                            row_offsets, column_indices, row_order, q, k, v,
                                            out, dout, lse, scale, dq, delta);
  });
  return cudaGetLastError();
}

#define FASTKERN_INSTANTIATE_BACKWARD_DQ(T, I)                                            \
  template cudaError_t CudaSparseAttentionBackwardQueries<T, I>(                          \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, const T*, const T*, const AccumulatorT<T>*, AccumulatorT<T>, T*,          \
      AccumulatorT<T>*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_INSTANTIATE_BACKWARD_DQ)
#undef FASTKERN_INSTANTIATE_BACKWARD_DQ

}  // namespace fastkern
