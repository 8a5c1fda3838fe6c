// Device helpers shared by the CUDA sparse-attention kernels (one .cu per op).
//
// The kernels give one warp to one (head, mask row) pair.  Within a chunk of 32
// nonzeros of the row, lane c scores nonzero c (a dot product over the head
// size, read from its own row of k or q); the chunk's weights are then
// broadcast lane by lane with shuffles and accumulated with the lanes spread
// over the head size, which reads each gathered row of v (or k, q, dout) with
// coalesced loads.  Every warp-wide sum and maximum is a butterfly over the 32
// lanes, which leaves the same value in every lane.
#ifndef FASTKERN_ATTENTION_DEVICE_CUH_
#define FASTKERN_ATTENTION_DEVICE_CUH_

#include <cstdint>
#include <type_traits>

#include "attention_common_cuda.h"

namespace fastkern {
namespace attention_device {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Warps per thread block.  Each warp has its own (head, row) and its own slice
// of shared memory; the block size only sets how many share a multiprocessor's
// scheduling unit.
constexpr int kWarpsPerBlock = 4;
constexpr int kThreadsPerBlock = kWarpsPerBlock * kWarpSize;

// Values of a head-size vector a lane holds in registers (kPerLane), for a head
// size of at most 32 * kPerLane: 1, 2, 4 or 8, the smallest that fits.
static_assert(8 * kWarpSize == kCudaMaxHeadDim, "kPerLane 8 must cover the largest head");

__host__ __device__ constexpr int PerLaneFor(int width) {
  return width <= 32 ? 1 : width <= 64 ? 2 : width <= 128 ? 4 : 8;
}

__device__ __forceinline__ float ToAcc(float x) { return x; }
__device__ __forceinline__ double ToAcc(double x) { return x; }
__device__ __forceinline__ float ToAcc(__half x) { return __half2float(x); }
__device__ __forceinline__ float ToAcc(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T FromAcc(AccumulatorT<T> x);
template <>
__device__ __forceinline__ float FromAcc<float>(float x) { return x; }
template <>
__device__ __forceinline__ double FromAcc<double>(double x) { return x; }
template <>
__device__ __forceinline__ __half FromAcc<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromAcc<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Full-precision exp and log (not the __expf intrinsic): the results must match
// the CPU kernels to fp32 rounding, and these kernels are bound by memory.
__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }
// 1 / x rounded to nearest, as the CPU's division: without the slow path of
// IEEE division, a called subroutine that makes the kernel spill registers.
__device__ __forceinline__ float Reciprocal(float x) { return __frcp_rn(x); }
__device__ __forceinline__ double Reciprocal(double x) { return __drcp_rn(x); }

// NaNs are passed over, as by the CPU kernels' maximum.
__device__ __forceinline__ float Max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double Max(double a, double b) { return fmax(a, b); }

template <typename A>
__device__ __forceinline__ A NegativeInfinity() {
  return -static_cast<A>(INFINITY);
}

// exp(x - shift), the weight of a score x: 0 for x = -inf whatever shift is, so
// that a key scoring -inf drops out as a masked one does (exp(-inf - -inf) would
// be NaN), as in the CPU kernels.  NaN scores stay NaN.
template <typename A>
__device__ __forceinline__ A Weight(A x, A shift) {
  return x == NegativeInfinity<A>() ? A(0) : Exp(x - shift);
}

template <typename A>
__device__ __forceinline__ A WarpSum(A x) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    x += __shfl_xor_sync(kFullMask, x, offset);
  }
  return x;
}

template <typename A>
__device__ __forceinline__ A WarpMax(A x) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    x = Max(x, __shfl_xor_sync(kFullMask, x, offset));
  }
  return x;
}

// x . row over `width` values: x (already converted) in shared memory, row in
// global memory.  Four partial sums break the chain of dependent adds.
template <typename A, typename T>
__device__ __forceinline__ A Dot(const A* __restrict__ x, const T* __restrict__ row, int width) {
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int c = 0;
  for (; c + 4 <= width; c += 4) {
    s0 += x[c] * ToAcc(row[c]);
    s1 += x[c + 1] * ToAcc(row[c + 1]);
    s2 += x[c + 2] * ToAcc(row[c + 2]);
    s3 += x[c + 3] * ToAcc(row[c + 3]);
  }
  for (; c < width; ++c) s0 += x[c] * ToAcc(row[c]);
  return (s0 + s1) + (s2 + s3);
}

// Copies a row of `width` values into this warp's shared memory, converted.
template <typename A, typename T>
__device__ __forceinline__ void LoadRow(A* __restrict__ dst, const T* __restrict__ row, int width,
                                        int lane) {
  for (int c = lane; c < width; c += kWarpSize) dst[c] = ToAcc(row[c]);
}

// acc[t] += weight * row[lane + 32 t] for the values of the row this lane holds.
template <int kPerLane, typename A, typename T>
__device__ __forceinline__ void AxpyRow(A (&acc)[kPerLane], A weight, const T* __restrict__ row,
                                        int width, int lane) {
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    const int c = lane + t * kWarpSize;
    if (c < width) acc[t] += weight * ToAcc(row[c]);
  }
}

// row[lane + 32 t] = factor * acc[t], converted to the value type.
template <int kPerLane, typename A, typename T>
__device__ __forceinline__ void StoreRow(T* __restrict__ row, const A (&acc)[kPerLane], A factor,
                                         int width, int lane) {
#pragma unroll
  for (int t = 0; t < kPerLane; ++t) {
    const int c = lane + t * kWarpSize;
    if (c < width) row[c] = FromAcc<T>(factor * acc[t]);
  }
}

// The blocks for `tasks` warps, one per (head, row) pair; false where that grid
// would exceed CUDA's limit.
inline bool BlocksFor(int64_t tasks, unsigned* blocks) {
  const int64_t n = (tasks + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (n > 0x7fffffff) return false;
  *blocks = static_cast<unsigned>(n);
  return true;
}

// launch(std::integral_constant<int, kPerLane>{}) with kPerLane = PerLaneFor(width):
// the one place a run-time head size picks a compiled kernel.
template <typename F>
void WithPerLane(int width, F&& launch) {
  switch (PerLaneFor(width)) {
    case 1: launch(std::integral_constant<int, 1>{}); break;
    case 2: launch(std::integral_constant<int, 2>{}); break;
    case 4: launch(std::integral_constant<int, 4>{}); break;
    default: launch(std::integral_constant<int, 8>{}); break;
  }
}

}  // namespace attention_device
}  // namespace fastkern

#endif  // FASTKERN_ATTENTION_DEVICE_CUH_
