"""GPU dispatch of fastkern.attention: device arrays in, the CUDA kernels, device arrays out.

``ops.sparse_attention`` and ``ops.sparse_attention_backward`` hand their arguments
here when any of them lives on a GPU.  This module checks that all of them are
arrays of one library on one CUDA device, validates shapes and dtypes exactly as
the CPU path does, allocates the results with that library, and calls
``fastkern._cuda`` with their device pointers, on the arrays' device and on the
library's current stream.  The results are arrays of the same library.

The libraries (one adapter class each):

- CuPy arrays, run on CuPy's current stream;
- Numba device arrays, run on the legacy default stream;
- PyTorch CUDA tensors, run on PyTorch's current stream (``fastkern.attention.torch``
  adds autograd).

The mask stays a host :class:`SparseCSR`: its index arrays are copied to each
device once and cached for the life of the SparseCSR object.  A dense boolean
mask (host or device) is converted to CSR on the host at every call.
"""
import math
import sys
import threading
import weakref

import numpy as np

from .._workers import resolve_workers
from .csr import SparseCSR

try:
    from .. import _cuda
except ImportError:  # built without nvcc, or with FASTKERN_CUDA=0
    _cuda = None

__all__ = ["is_device_array", "on_device", "sparse_attention", "sparse_attention_backward"]

_KDL_CPU = 1  # DLPack's device type for host memory
# value dtype -> the dtype of sums, of lse and of delta on the GPU
_ACCUMULATOR = {"float16": "float32", "bfloat16": "float32",
                "float32": "float32", "float64": "float64"}


class _CuPy:
    name = "CuPy array"

    @staticmethod
    def owns(x):
        cupy = sys.modules.get("cupy")
        return cupy is not None and isinstance(x, cupy.ndarray)

    @staticmethod
    def device(x):
        return x.device.id

    @staticmethod
    def dtype(x):
        return x.dtype.name

    @staticmethod
    def contiguous(x):
        import cupy
        return cupy.ascontiguousarray(x)

    @staticmethod
    def pointer(x):
        return x.data.ptr

    @staticmethod
    def empty(shape, dtype, device):
        import cupy
        with cupy.cuda.Device(device):
            return cupy.empty(shape, dtype=dtype)

    @staticmethod
    def stream(device):
        import cupy
        with cupy.cuda.Device(device):
            return cupy.cuda.get_current_stream().ptr

    @staticmethod
    def from_host(a, device):
        import cupy
        with cupy.cuda.Device(device):
            return cupy.asarray(a)

    @staticmethod
    def to_host(x):
        import cupy
        return cupy.asnumpy(x)


class _Numba:
    name = "Numba device array"

    @staticmethod
    def owns(x):
        if "numba.cuda" not in sys.modules:
            return False
        from numba.cuda.cudadrv.devicearray import DeviceNDArray
        return isinstance(x, DeviceNDArray)

    @staticmethod
    def device(x):
        pointer = _Numba.pointer(x)
        if not pointer:  # an empty array has no memory to ask about
            from numba import cuda
            return cuda.get_current_device().id
        device = _cuda.pointer_device(pointer)
        if device < 0:
            raise TypeError("a Numba array's memory is not on a CUDA device")
        return device

    @staticmethod
    def dtype(x):
        return x.dtype.name

    @staticmethod
    def contiguous(x):
        if not x.is_c_contiguous():
            raise ValueError("Numba device arrays must be C-contiguous (copy them with "
                             "numba.cuda.device_array and a kernel, or use CuPy)")
        return x

    @staticmethod
    def pointer(x):
        return x.__cuda_array_interface__["data"][0]

    @staticmethod
    def empty(shape, dtype, device):
        from numba import cuda
        with cuda.gpus[device]:
            return cuda.device_array(shape, dtype=dtype)

    @staticmethod
    def stream(device):
        return 0  # the legacy default stream: ordered with every blocking stream

    @staticmethod
    def from_host(a, device):
        from numba import cuda
        with cuda.gpus[device]:
            return cuda.to_device(a)

    @staticmethod
    def to_host(x):
        return x.copy_to_host()


class _Torch:
    name = "PyTorch tensor"

    @staticmethod
    def owns(x):
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(x, torch.Tensor)

    @staticmethod
    def device(x):
        if x.device.type != "cuda":
            raise TypeError(f"tensors on {x.device} are not supported: the GPU kernels take "
                            f"CUDA tensors")
        return x.device.index

    @staticmethod
    def dtype(x):
        return str(x.dtype).removeprefix("torch.")

    @staticmethod
    def contiguous(x):
        return x.detach().contiguous()

    @staticmethod
    def pointer(x):
        return x.data_ptr()

    @staticmethod
    def empty(shape, dtype, device):
        import torch
        return torch.empty(shape, dtype=getattr(torch, dtype), device=torch.device("cuda", device))

    @staticmethod
    def stream(device):
        import torch
        return torch.cuda.current_stream(device).cuda_stream

    @staticmethod
    def from_host(a, device):
        import torch
        return torch.from_numpy(a).to(torch.device("cuda", device))

    @staticmethod
    def to_host(x):
        return x.detach().cpu().numpy()


_KINDS = (_Torch, _CuPy, _Numba)


def is_device_array(x):
    """True for an array in GPU memory: a CUDA tensor, a CuPy or Numba array, or any
    object with ``__cuda_array_interface__`` or a non-CPU ``__dlpack_device__``."""
    if x is None or isinstance(x, (np.ndarray, np.generic)):
        return False
    if _Torch.owns(x):  # before the protocols: a tensor that requires grad refuses them
        return x.device.type != "cpu"
    try:
        if hasattr(x, "__cuda_array_interface__"):
            return True
        dlpack_device = getattr(x, "__dlpack_device__", None)
        return dlpack_device is not None and int(dlpack_device()[0]) != _KDL_CPU
    except Exception:
        return False


def on_device(*arrays):
    """True if any of the arrays is a GPU array (see :func:`is_device_array`)."""
    return any(is_device_array(x) for x in arrays)


def _type_name(x):
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def _resolve(named):
    """The adapter and the device of the (name, array) pairs, all of which must be
    arrays of one supported library on one CUDA device."""
    first, x0 = next((name, x) for name, x in named if is_device_array(x))
    names = ", ".join(name for name, _ in named)
    for name, x in named:
        if not is_device_array(x):
            raise TypeError(f"{first} is a GPU array but {name} is a host array "
                            f"({_type_name(x)}): pass {names} all on one GPU, or all on "
                            f"the host")
    kind = next((kind for kind in _KINDS if kind.owns(x0)), None)
    if kind is None:
        raise TypeError(f"{first} is a GPU array of type {_type_name(x0)}; the GPU kernels "
                        f"take CuPy arrays, Numba device arrays and PyTorch tensors (wrap "
                        f"it without a copy with cupy.asarray or cupy.from_dlpack)")
    for name, x in named:
        if not kind.owns(x):
            raise TypeError(f"{first} is a {kind.name} but {name} is a {_type_name(x)}: pass "
                            f"{names} from one array library")
    if _cuda is None:
        raise NotImplementedError(
            f"{first} is a GPU array, but this build of fastkern has no CUDA kernels (it was "
            f"built where nvcc was not found, or with FASTKERN_CUDA=0): rebuild it with "
            f"FASTKERN_CUDA=1, or pass host arrays")
    devices = {name: kind.device(x) for name, x in named}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on cuda:{d}" for name, d in devices.items())
        raise ValueError(f"{names} must be on one device, got {where}")
    return kind, devices[first]


def _check_arrays(kind, q, k, v):
    """(dtype, leading axes, n, m, d, dv) of q, k, v, with the CPU path's checks."""
    dtypes = []
    for x, name in ((q, "q"), (k, "k"), (v, "v")):
        dtype = kind.dtype(x)
        if dtype not in _ACCUMULATOR:
            raise TypeError(f"{name} must be float16, bfloat16, float32 or float64 on a GPU, "
                            f"got dtype {dtype}")
        if len(x.shape) < 2:
            raise ValueError(f"{name} must have shape (..., length, dim), got shape "
                             f"{tuple(x.shape)}")
        dtypes.append(dtype)
    qs, ks, vs = tuple(q.shape), tuple(k.shape), tuple(v.shape)
    if len(set(dtypes)) > 1:
        raise TypeError(f"q, k and v must have the same dtype, got {dtypes[0]}, {dtypes[1]} "
                        f"and {dtypes[2]}")
    if qs[:-2] != ks[:-2] or qs[:-2] != vs[:-2]:
        raise ValueError(f"q, k and v must have the same leading (batch, head) axes, got "
                         f"shapes {qs}, {ks} and {vs}")
    if qs[-1] != ks[-1]:
        raise ValueError(f"q and k must have the same last dimension, got shapes {qs} and {ks}")
    if ks[-2] != vs[-2]:
        raise ValueError(f"k and v must have the same length (axis -2), got shapes {ks} "
                         f"and {vs}")
    if qs[-1] == 0 or vs[-1] == 0:
        raise ValueError(f"q and v must have a last dimension of at least 1, got shapes "
                         f"{qs} and {vs}")
    limit = _cuda.max_head_dim
    if qs[-1] > limit or vs[-1] > limit:
        raise ValueError(f"the GPU kernels take head sizes up to {limit}, got D = {qs[-1]} "
                         f"and Dv = {vs[-1]}")
    return dtypes[0], qs[:-2], qs[-2], ks[-2], qs[-1], vs[-1]


_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def _check_aligned(kind, named):
    """ValueError for an array whose memory does not start at a multiple of its
    element size (an odd offset into a buffer): the kernels load whole elements,
    and a misaligned load is a sticky CUDA error, the end of the process's use
    of the device."""
    for name, x in named:
        size = _ITEMSIZE[kind.dtype(x)]
        if kind.pointer(x) % size:
            raise ValueError(f"{name} must start at a multiple of its element size "
                             f"({size} bytes) in device memory: pass a copy of it")


def _check_like(kind, x, name, dtype, shape):
    if kind.dtype(x) != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {kind.dtype(x)}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")


def _prepare_mask(mask, kind, n, m):
    """mask as the Pattern of an (n, m) SparseCSR (see ops._check_mask)."""
    from .ops import _check_mask

    if not isinstance(mask, SparseCSR) and is_device_array(mask):
        if not kind.owns(mask):
            raise TypeError(f"mask is a {_type_name(mask)}; pass a SparseCSR, or a boolean "
                            f"mask on the host or as a {kind.name}")
        mask = kind.to_host(mask)
    return _check_mask(mask, n, m)


def _prepare_scale(scale, d, dtype):
    from .ops import _check_scale

    return float(_check_scale(scale, d, np.dtype(_ACCUMULATOR[dtype])))


# id(Pattern) -> (weak reference to it, {(adapter, device): device index arrays})
_csr_on_device = {}
# Held while _csr_on_device is looked up and filled: two threads that copied the
# same pattern at once would each keep only one copy alive, and the other
# thread's kernel would read freed device memory.  Reentrant: the weak
# reference's callback may run on a thread that holds it.
_csr_on_device_lock = threading.RLock()


def _forget_device_csr(key):
    with _csr_on_device_lock:
        _csr_on_device.pop(key, None)


def _device_csr(pattern, kind, device):
    """The Pattern's (row_offsets, column_indices, row_order) on the device, copied
    once (a SparseCSR holds one Pattern for life), whichever threads ask."""
    key = id(pattern)
    with _csr_on_device_lock:
        entry = _csr_on_device.get(key)
        if entry is None or entry[0]() is not pattern:
            ref = weakref.ref(pattern, lambda _, key=key: _forget_device_csr(key))
            entry = _csr_on_device[key] = (ref, {})
        arrays = entry[1].get((kind, device))
        if arrays is None:
            arrays = tuple(kind.from_host(np.array(a), device)
                           for a in (pattern.offsets, pattern.cols, pattern.order))
            entry[1][(kind, device)] = arrays
    return tuple(kind.pointer(a) for a in arrays)


def _forward(kind, device, dtype, pattern, lead, n, m, d, dv, q, k, v, scale):
    out = kind.empty(lead + (n, dv), dtype, device)
    lse = kind.empty(lead + (n,), _ACCUMULATOR[dtype], device)
    offsets, cols, order = _device_csr(pattern, kind, device)
    p = kind.pointer
    _cuda.forward(dtype=dtype, index_dtype=pattern.offsets.dtype.name, device=device,
                  stream=kind.stream(device), heads=math.prod(lead), n=n, m=m, d=d, dv=dv,
                  row_offsets=offsets, column_indices=cols, row_order=order,
                  q=p(q), k=p(k), v=p(v), scale=scale, out=p(out), lse=p(lse))
    return out, lse


def sparse_attention(q, k, v, mask, *, scale=None, workers=None, return_lse=False):
    """:func:`fastkern.attention.sparse_attention` on GPU arrays.

    ``workers`` is checked as on the CPU and otherwise unused.  ``lse`` is float32
    for float16, bfloat16 and float32 inputs, float64 for float64.
    """
    resolve_workers(workers)
    kind, device = _resolve([("q", q), ("k", k), ("v", v)])
    dtype, lead, n, m, d, dv = _check_arrays(kind, q, k, v)
    pattern = _prepare_mask(mask, kind, n, m)
    scale = _prepare_scale(scale, d, dtype)
    q, k, v = (kind.contiguous(x) for x in (q, k, v))
    _check_aligned(kind, [("q", q), ("k", k), ("v", v)])
    out, lse = _forward(kind, device, dtype, pattern, lead, n, m, d, dv, q, k, v, scale)
    return (out, lse) if return_lse else out


def sparse_attention_backward(q, k, v, mask, grad_out, *, scale=None, workers=None,
                              out=None, lse=None):
    """:func:`fastkern.attention.sparse_attention_backward` on GPU arrays."""
    resolve_workers(workers)
    named = [("q", q), ("k", k), ("v", v), ("grad_out", grad_out)]
    named += [(name, x) for name, x in (("out", out), ("lse", lse)) if x is not None]
    kind, device = _resolve(named)
    dtype, lead, n, m, d, dv = _check_arrays(kind, q, k, v)
    _check_like(kind, grad_out, "grad_out", dtype, lead + (n, dv))
    if (out is None) != (lse is None):
        raise ValueError("pass both out and lse from the forward pass, or neither")
    pattern = _prepare_mask(mask, kind, n, m)
    scale = _prepare_scale(scale, d, dtype)
    q, k, v, grad_out = (kind.contiguous(x) for x in (q, k, v, grad_out))
    _check_aligned(kind, [("q", q), ("k", k), ("v", v), ("grad_out", grad_out)])
    if out is None:
        out, lse = _forward(kind, device, dtype, pattern, lead, n, m, d, dv, q, k, v, scale)
    else:
        _check_like(kind, out, "out", dtype, lead + (n, dv))
        _check_like(kind, lse, "lse", _ACCUMULATOR[dtype], lead + (n,))
        out, lse = kind.contiguous(out), kind.contiguous(lse)
        _check_aligned(kind, [("out", out), ("lse", lse)])
    dq = kind.empty(lead + (n, d), dtype, device)
    dk = kind.empty(lead + (m, d), dtype, device)
    dv_ = kind.empty(lead + (m, dv), dtype, device)
    delta = kind.empty(lead + (n,), _ACCUMULATOR[dtype], device)
    offsets, cols, order = _device_csr(pattern, kind, device)
    t_offsets, t_cols, t_order = _device_csr(pattern.transpose(), kind, device)
    p = kind.pointer
    _cuda.backward(dtype=dtype, index_dtype=pattern.offsets.dtype.name, device=device,
                   stream=kind.stream(device), heads=math.prod(lead), n=n, m=m, d=d, dv=dv,
                   row_offsets=offsets, column_indices=cols, row_order=order,
                   t_row_offsets=t_offsets, t_column_indices=t_cols, t_row_order=t_order,
                   q=p(q), k=p(k), v=p(v), out=p(out), dout=p(grad_out), lse=p(lse),
                   scale=scale, dq=p(dq), dk=p(dk), dv_out=p(dv_), delta=p(delta))
    return dq, dk, dv_
