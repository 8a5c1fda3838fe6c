// fastkern._cuda: the CUDA kernels behind pybind11.
//
// The functions take device pointers, sizes, a device ordinal and a stream as
// plain integers: fastkern/attention/_device.py reads them off CuPy, Numba or
// PyTorch arrays after validating shapes, dtypes and devices, so this module
// depends on no array library.  Every launch runs with the GIL released, on the
// caller's device and stream; a CUDA error becomes fastkern._cuda.CudaError (a
// RuntimeError) naming the call, file and line.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_runtime_api.h>

#include "attention/attention_backward_dkdv_cuda.h"
#include "attention/attention_backward_dq_cuda.h"
#include "attention/attention_common_cuda.h"
#include "attention/attention_forward_cuda.h"

#ifndef FASTKERN_VERSION
#define FASTKERN_VERSION "unknown"
#endif

namespace py = pybind11;

namespace fastkern {
namespace {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void Check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
  throw CudaError(std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status) +
                  " (" + call + " at " + file + ":" + std::to_string(line) + ")");
}

#define CUDA_CALL(expr) ::fastkern::Check((expr), #expr, __FILE__, __LINE__)

// Makes `device` current for this thread's CUDA runtime for its lifetime, and
// restores the device that was current before.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    CUDA_CALL(cudaGetDevice(&previous_));
    if (previous_ != device_) CUDA_CALL(cudaSetDevice(device_));
  }
  ~DeviceGuard() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_;
  int previous_ = 0;
};

template <typename T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}, Tag<I>{}) for the value type named by dtype and the index
// type named by index_dtype (NumPy's names).
template <typename F>
void DispatchTypes(const std::string& dtype, const std::string& index_dtype, F&& f) {
  auto with_index = [&](auto value) {
    if (index_dtype == "int32") {
      f(value, Tag<int32_t>{});
    } else if (index_dtype == "int64") {
      f(value, Tag<int64_t>{});
    } else {
      throw py::type_error("index_dtype must be 'int32' or 'int64', got '" + index_dtype + "'");
    }
  };
  if (dtype == "float32") {
    with_index(Tag<float>{});
  } else if (dtype == "float64") {
    with_index(Tag<double>{});
  } else if (dtype == "float16") {
    with_index(Tag<__half>{});
  } else if (dtype == "bfloat16") {
    with_index(Tag<__nv_bfloat16>{});
  } else {
    throw py::type_error("dtype must be 'float32', 'float64', 'float16' or 'bfloat16', got '" +
                         dtype + "'");
  }
}

void CheckSizes(int64_t heads, int64_t n, int64_t m, int64_t d, int64_t dv) {
  if (heads < 0 || n < 0 || m < 0) {
    throw py::value_error("heads, n and m must be non-negative");
  }
  if (d < 1 || d > kCudaMaxHeadDim || dv < 1 || dv > kCudaMaxHeadDim) {
    throw py::value_error("d and dv must lie in [1, " + std::to_string(kCudaMaxHeadDim) +
                          "], got " + std::to_string(d) + " and " + std::to_string(dv));
  }
}

template <typename T>
T* Pointer(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

cudaStream_t Stream(std::uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

void Forward(const std::string& dtype, const std::string& index_dtype, int device,
             std::uintptr_t stream, int64_t heads, int64_t n, int64_t m, int64_t d, int64_t dv,
             std::uintptr_t row_offsets, std::uintptr_t column_indices, std::uintptr_t row_order,
             std::uintptr_t q, std::uintptr_t k, std::uintptr_t v, double scale,
             std::uintptr_t out, std::uintptr_t lse) {
  CheckSizes(heads, n, m, d, dv);
  DispatchTypes(dtype, index_dtype, [&](auto value, auto index) {
    using T = typename decltype(value)::type;
    using I = typename decltype(index)::type;
    using A = AccumulatorT<T>;
    py::gil_scoped_release release;
    DeviceGuard guard(device);
    CUDA_CALL((CudaSparseAttentionForward<T, I>(
        heads, n, m, static_cast<int>(d), static_cast<int>(dv), Pointer<const I>(row_offsets),
        Pointer<const I>(column_indices), Pointer<const I>(row_order), Pointer<const T>(q),
        Pointer<const T>(k), Pointer<const T>(v), static_cast<A>(scale), Pointer<T>(out),
        Pointer<A>(lse), Stream(stream))));
  });
}

void Backward(const std::string& dtype, const std::string& index_dtype, int device,
              std::uintptr_t stream, int64_t heads, int64_t n, int64_t m, int64_t d, int64_t dv,
              std::uintptr_t row_offsets, std::uintptr_t column_indices, std::uintptr_t row_order,
              std::uintptr_t t_row_offsets, std::uintptr_t t_column_indices,
              std::uintptr_t t_row_order, std::uintptr_t q, std::uintptr_t k, std::uintptr_t v,
              std::uintptr_t out, std::uintptr_t dout, std::uintptr_t lse, double scale,
              std::uintptr_t dq, std::uintptr_t dk, std::uintptr_t dv_out,
              std::uintptr_t delta) {
  CheckSizes(heads, n, m, d, dv);
  DispatchTypes(dtype, index_dtype, [&](auto value, auto index) {
    using T = typename decltype(value)::type;
    using I = typename decltype(index)::type;
    using A = AccumulatorT<T>;
    py::gil_scoped_release release;
    DeviceGuard guard(device);
    // in stream order: the key side reads the delta the query side writes
    CUDA_CALL((CudaSparseAttentionBackwardQueries<T, I>(
        heads, n, m, static_cast<int>(d), static_cast<int>(dv), Pointer<const I>(row_offsets),
        Pointer<const I>(column_indices), Pointer<const I>(row_order), Pointer<const T>(q),
        Pointer<const T>(k), Pointer<const T>(v), Pointer<const T>(out), Pointer<const T>(dout),
        Pointer<const A>(lse), static_cast<A>(scale), Pointer<T>(dq), Pointer<A>(delta),
        Stream(stream))));
    CUDA_CALL((CudaSparseAttentionBackwardKeys<T, I>(
        heads, n, m, static_cast<int>(d), static_cast<int>(dv), Pointer<const I>(t_row_offsets),
        Pointer<const I>(t_column_indices), Pointer<const I>(t_row_order), Pointer<const T>(q),
        Pointer<const T>(k), Pointer<const T>(v), Pointer<const T>(dout), Pointer<const A>(lse),
        Pointer<const A>(delta), static_cast<A>(scale), Pointer<T>(dk), Pointer<T>(dv_out),
        Stream(stream))));
  });
}

// The CUDA devices this process can use; empty where there is no driver or no
// device (importing and asking never fails for those).
py::list Devices() {
  py::list result;
  int count = 0;
  cudaError_t status;
  {
    py::gil_scoped_release release;
    status = cudaGetDeviceCount(&count);
  }
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    return result;
  }
  CUDA_CALL(status);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    CUDA_CALL(cudaGetDeviceProperties(&prop, i));
    py::dict info;
    info["index"] = i;
    info["name"] = std::string(prop.name);
    info["compute_capability"] = std::to_string(prop.major) + "." + std::to_string(prop.minor);
    info["memory_bytes"] = static_cast<uint64_t>(prop.totalGlobalMem);
    info["multiprocessors"] = prop.multiProcessorCount;
    result.append(info);
  }
  return result;
}

// The device that owns the memory at `address`, or -1 for host memory the
// device cannot address as its own (pageable, or unregistered).
int PointerDevice(std::uintptr_t address) {
  cudaPointerAttributes attributes;
  CUDA_CALL(cudaPointerGetAttributes(&attributes, reinterpret_cast<const void*>(address)));
  if (attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged) {
    return attributes.device;
  }
  return -1;
}

int DriverVersion() {
  int version = 0;
  if (cudaDriverGetVersion(&version) != cudaSuccess) version = 0;
  return version;
}

int RuntimeVersion() {
  int version = 0;
  CUDA_CALL(cudaRuntimeGetVersion(&version));
  return version;
}

}  // namespace
}  // namespace fastkern

PYBIND11_MODULE(_cuda, m, py::mod_gil_not_used()) {
  using namespace fastkern;
  m.doc() = "fastkern's CUDA kernels (private: use fastkern.attention).";
  m.attr("__version__") = FASTKERN_VERSION;
  m.attr("max_head_dim") = kCudaMaxHeadDim;
  py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);

  m.def("devices", &Devices,
        "List of dicts (index, name, compute_capability, memory_bytes, multiprocessors), one "
        "per CUDA device; empty without a driver or a device.");
  m.def("driver_version", &DriverVersion,
        "The CUDA driver's version as an integer (13000 for 13.0); 0 without a driver.");
  m.def("runtime_version", &RuntimeVersion,
        "The version of the CUDA runtime linked into this module (13000 for 13.0).");
  m.def("pointer_device", &PointerDevice, py::arg("address"),
        "The ordinal of the device owning the memory at address, -1 for host memory.");
  m.def("forward", &Forward, py::arg("dtype"), py::arg("index_dtype"), py::arg("device"),
        py::arg("stream"), py::arg("heads"), py::arg("n"), py::arg("m"), py::arg("d"),
        py::arg("dv"), py::arg("row_offsets"), py::arg("column_indices"), py::arg("row_order"),
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("scale"), py::arg("out"),
        py::arg("lse"),
        "Sparse attention forward on (heads, n, d) / (heads, m, d) / (heads, m, dv) device "
        "arrays: writes out (heads, n, dv) and lse (heads, n).  Pointers and the stream are "
        "integers; validation is the caller's.");
  m.def("backward", &Backward, py::arg("dtype"), py::arg("index_dtype"), py::arg("device"),
        py::arg("stream"), py::arg("heads"), py::arg("n"), py::arg("m"), py::arg("d"),
        py::arg("dv"), py::arg("row_offsets"), py::arg("column_indices"), py::arg("row_order"),
        py::arg("t_row_offsets"), py::arg("t_column_indices"), py::arg("t_row_order"),
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("dout"),
        py::arg("lse"), py::arg("scale"), py::arg("dq"), py::arg("dk"), py::arg("dv_out"),
        py::arg("delta"),
        "Sparse attention backward: writes dq (heads, n, d), dk (heads, m, d), dv_out "
        "(heads, m, dv) and the workspace delta (heads, n).");
}
