// Backward pass of CSR-sparse attention, key side: dk and dv, walking the rows
// of the transposed mask (see attention_backward_dkdv_cuda.h).
#include "attention_backward_dkdv_cuda.h"
#include "attention_device.cuh"

namespace fastkern {
namespace {

using namespace attention_device;

// One warp per (head, key), keys in t_row_order.  Shared memory:
// kWarpsPerBlock * (d + dv) accumulator values (each warp's k and v rows).
template <typename T, typename I, int kPerLane>
__global__ void __launch_bounds__(kThreadsPerBlock)
    SparseAttentionBackwardKeysKernel(
        int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ t_row_offsets,
        const I* __restrict__ t_column_indices, const I* __restrict__ t_row_order,
        const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
        const T* __restrict__ dout, const AccumulatorT<T>* __restrict__ lse,
        const AccumulatorT<T>* __restrict__ delta, AccumulatorT<T> scale, T* __restrict__ dk,
        T* __restrict__ dv_out) {
  using A = AccumulatorT<T>;
  extern __shared__ __align__(16) unsigned char shared[];
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (task >= heads * m) return;  // the whole warp: task is uniform across it
  const int64_t h = task % heads;
  const int64_t j = t_row_order[task / heads];
  const int64_t hj = h * m + j;

  A* k_row = reinterpret_cast<A*>(shared) + warp * (d + dv);
  A* v_row = k_row + d;
  LoadRow(k_row, k + hj * d, d, lane);
  LoadRow(v_row, v + hj * dv, dv, lane);
  __syncwarp();

  const T* q_head = q + h * n * d;
  const T* dout_head = dout + h * n * dv;
  const A* lse_head = lse + h * n;
  const A* delta_head = delta + h * n;
  A acc_dk[kPerLane];  // dk_j / scale, lane + 32 t
  A acc_dv[kPerLane];  // dv_j, lane + 32 t
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) acc_dk[t] = acc_dv[t] = 0;

  const int64_t end = t_row_offsets[j + 1];
  for (int64_t chunk = t_row_offsets[j]; chunk < end; chunk += kWarpSize) {
    const int64_t p = chunk + lane;
    const bool valid = p < end;
    const int64_t i = valid ? static_cast<int64_t>(t_column_indices[p]) : 0;
    // p_ij, and ds_ij = p_ij (dout_i . v_j - delta_i)
    A prob = 0, ds = 0;
    if (valid) {
      prob = Weight(scale * Dot(k_row, q_head + i * d, d), lse_head[i]);
      ds = prob * (Dot(v_row, dout_head + i * dv, dv) - delta_head[i]);
    }
    const int count = static_cast<int>(end - chunk < kWarpSize ? end - chunk : kWarpSize);
    for (int c = 0; c < count; ++c) {
      const A pc = __shfl_sync(kFullMask, prob, c);
      const A dsc = __shfl_sync(kFullMask, ds, c);
      const int64_t ic = __shfl_sync(kFullMask, i, c);
      AxpyRow(acc_dv, pc, dout_head + ic * dv, dv, lane);
      AxpyRow(acc_dk, dsc, q_head + ic * d, d, lane);
    }
  }

  StoreRow(dk + hj * d, acc_dk, scale, d, lane);
  StoreRow(dv_out + hj * dv, acc_dv, A(1), dv, lane);
}

template <typename T, typename I, int kPerLane>
void Launch(unsigned blocks, size_t shared_bytes, cudaStream_t stream, int64_t heads, int64_t n,
            int64_t m, int d, int dv, const I* t_row_offsets, const I* t_column_indices,
            const I* t_row_order, const T* q, const T* k, const T* v, const T* dout,
            const AccumulatorT<T>* lse, const AccumulatorT<T>* delta, AccumulatorT<T> scale,
            T* dk, T* dv_out) {
  SparseAttentionBackwardKeysKernel<T, I, kPerLane>
      <<<blocks, kThreadsPerBlock, shared_bytes, stream>>>(
          heads, n, m, d, dv, t_row_offsets, t_column_indices, t_row_order, q, k, v, dout, lse,
          delta, scale, dk, dv_out);
}

}  // namespace

template <typename T, typename I>
cudaError_t CudaSparseAttentionBackwardKeys(
    int64_t heads, int64_t n, int64_t m, int d, int dv, const I* __restrict__ t_row_offsets,
    const I* __restrict__ t_column_indices, const I* __restrict__ t_row_order,
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
    const T* __restrict__ dout, const AccumulatorT<T>* __restrict__ lse,
    const AccumulatorT<T>* __restrict__ delta, AccumulatorT<T> scale, T* __restrict__ dk,
    T* __restrict__ dv_out, cudaStream_t stream) {
  if (heads < 0 || n < 0 || m < 0 || d < 1 || d > kCudaMaxHeadDim || dv < 1 ||
      dv > kCudaMaxHeadDim) {
    return cudaErrorInvalidValue;
  }
  unsigned blocks;
  if (!BlocksFor(heads * m, &blocks)) return cudaErrorInvalidValue;
  if (blocks == 0) return cudaSuccess;
  const size_t shared_bytes = sizeof(AccumulatorT<T>) * kWarpsPerBlock * (d + dv);
  WithPerLane(d > dv ? d : dv, [&](auto per_lane) {
    Launch<T, I, decltype(per_lane)::value>(blocks, shared_bytes, stream, heads, n, m, d, dv,
                                            t_row_offsets, t_column_indices, t_row_order, q,
                                            k, v, dout, lse, delta, scale, dk, dv_out);
  });
  return cudaGetLastError();
}

#define FASTKERN_INSTANTIATE_BACKWARD_DKDV(T, I)                                          \
  template cudaError_t CudaSparseAttentionBackwardKeys<T, I>(                             \
      int64_t, int64_t, int64_t, int, int, const I*, const I*, const I*, const T*, const T*, \
      const T*, const T*, const AccumulatorT<T>*, const AccumulatorT<T>*, AccumulatorT<T>, \
      T*, T*, cudaStream_t);
FASTKERN_FOR_EACH_ATTENTION_TYPE(FASTKERN_INSTANTIATE_BACKWARD_DKDV)
#undef FASTKERN_INSTANTIATE_BACKWARD_DKDV

}  // namespace fastkern
