// Types and limits shared by the CUDA sparse-attention launchers and their callers.
//
// Plain C++ (no kernels): bindings.cpp, compiled by the host compiler, includes it.
#ifndef FASTKERN_ATTENTION_COMMON_CUDA_H_
#define FASTKERN_ATTENTION_COMMON_CUDA_H_

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace fastkern {

// Largest head size (d of q and k, dv of v) the kernels take: a warp holds a
// row of the output, kCudaMaxHeadDim / 32 values per lane, in registers.
constexpr int kCudaMaxHeadDim = 256;

// The type sums are accumulated in, and the type of the row log-sum-exp and of
// the backward's delta: fp32 for fp32, fp16 and bf16 values, fp64 for fp64.
template <typename T>
struct Accumulator {
  using type = float;
};
template <>
struct Accumulator<double> {
  using type = double;
};
template <typename T>
using AccumulatorT = typename Accumulator<T>::type;

}  // namespace fastkern

// Calls MACRO(T, I) for every (value, index) type pair the launchers are
// instantiated for.
#define FASTKERN_FOR_EACH_ATTENTION_TYPE(MACRO) \
  MACRO(float, int32_t)                         \
  MACRO(float, int64_t)                         \
  MACRO(double, int32_t)                        \
  MACRO(double, int64_t)                        \
  MACRO(__half, int32_t)                        \
  MACRO(__half, int64_t)                        \
  MACRO(__nv_bfloat16, int32_t)                 \
  MACRO(__nv_bfloat16, int64_t)

#endif  // FASTKERN_ATTENTION_COMMON_CUDA_H_
