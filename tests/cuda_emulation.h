// Runs fastkern's CUDA kernels on the CPU, for tests on machines without a GPU.
//
// tests/test_attention_cuda.py compiles each csrc/*/*.cu as C++ with this header
// included first, after rewriting the two things C++ cannot parse: a launch
// `Kernel<...><<<blocks, threads, shared, stream>>>(args)` becomes
// `::emu::Launch(blocks, threads, shared, stream, Kernel<...>, args)`, and the
// dynamic shared-memory declaration becomes a pointer to ::emu::shared_memory.
//
// A launch runs its blocks one after another, each block's threads as real
// threads; the lanes of a warp meet at a barrier in every shuffle and
// __syncwarp, as a warp's lanes execute them together on a GPU.  The kernels'
// indexing, reductions, chunking and conversions run as written; what this does
// not model is the hardware: memory coalescing, the shared-memory size limit,
// occupancy, and timing.
#ifndef FASTKERN_TESTS_CUDA_EMULATION_H_
#define FASTKERN_TESTS_CUDA_EMULATION_H_

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n)

namespace emu {

constexpr int kWarpSize = 32;

struct Index {
  unsigned x = 0, y = 0, z = 0;
};

struct Warp {
  std::barrier<> meet{kWarpSize};
  alignas(8) unsigned char slots[kWarpSize][8];
};

inline thread_local Index thread_index;
inline thread_local Index block_index;
inline thread_local Warp* warp = nullptr;
inline unsigned char* shared_memory = nullptr;  // the running block's

template <typename K, typename... Args>
void Launch(unsigned blocks, int threads, size_t shared_bytes, cudaStream_t, K kernel,
            Args... args) {
  std::vector<unsigned char> shared(shared_bytes + 16);
  for (unsigned b = 0; b < blocks; ++b) {
    shared_memory = shared.data();
    std::vector<std::unique_ptr<Warp>> warps;
    for (int w = 0; w < threads / kWarpSize; ++w) warps.push_back(std::make_unique<Warp>());
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        thread_index.x = t;
        block_index.x = b;
        warp = warps[t / kWarpSize].get();
        kernel(args...);
      });
    }
    for (auto& thread : pool) thread.join();
  }
}

template <typename T>
T Exchange(T value, int source) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  std::memcpy(warp->slots[thread_index.x % kWarpSize], &value, sizeof(T));
  warp->meet.arrive_and_wait();
  T result;
  std::memcpy(&result, warp->slots[source % kWarpSize], sizeof(T));
  warp->meet.arrive_and_wait();  // nobody writes a slot before everyone has read
  return result;
}

}  // namespace emu

#define threadIdx (::emu::thread_index)
#define blockIdx (::emu::block_index)

template <typename T>
T __shfl_sync(unsigned, T value, int source) {
  return ::emu::Exchange(value, source);
}

template <typename T>
T __shfl_xor_sync(unsigned, T value, int lane_mask) {
  return ::emu::Exchange(value, static_cast<int>(::emu::thread_index.x % 32) ^ lane_mask);
}

inline void __syncwarp(unsigned = 0xffffffffu) { ::emu::warp->meet.arrive_and_wait(); }

inline float __frcp_rn(float x) { return 1.0f / x; }
inline double __drcp_rn(double x) { return 1.0 / x; }

// No launch fails here.
extern "C" inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }

#endif  // FASTKERN_TESTS_CUDA_EMULATION_H_
