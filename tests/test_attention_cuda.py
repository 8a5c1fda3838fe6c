"""fastkern.attention on CUDA: the GPU kernels against the CPU kernels, the
dispatch of device arrays, the bindings' errors, nvcc compiling each kernel, and
the kernels themselves run on the CPU.

Four groups, each skipped with its reason where it cannot run:
- GPU tests (marked ``gpu``): need the built ``fastkern._cuda``, a CUDA device,
  and CuPy or PyTorch with CUDA;
- the dispatch and binding tests: need the built ``fastkern._cuda`` (or not at
  all), no device; a fake device-array library backed by host memory checks
  what ``_device`` hands the binding;
- the compile-only test: needs nvcc and the source tree;
- the emulated kernels: the .cu sources compiled as C++ with
  tests/cuda_emulation.h (a warp's lanes as threads meeting at every shuffle),
  against the CPU kernels; need the CUDA headers, a C++20 compiler and the
  source tree, no GPU.
"""
import ctypes
import gc
import math
import multiprocessing
import os
import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

import fastkern
from fastkern.attention import SparseCSR, sparse_attention, sparse_attention_backward
from fastkern.attention import _device
from fastkern.attention.csr import pattern_of

from attention_problems import nonfinite_problem, random_problem

try:
    from fastkern import _cuda
except ImportError:
    _cuda = None

CSRC = Path(__file__).resolve().parent.parent / "csrc"
needs_cuda_module = pytest.mark.skipif(_cuda is None, reason="fastkern._cuda not built "
                                       "(no nvcc at build time, or FASTKERN_CUDA=0)")


def _device_count():
    if _cuda is None:
        return 0
    try:
        return len(_cuda.devices())
    except Exception:
        return 0


HAVE_GPU = _device_count() > 0
NO_GPU_REASON = ("fastkern._cuda not built (no nvcc at build time, or FASTKERN_CUDA=0)"
                 if _cuda is None else "no CUDA device")


# ------------------------------------------------------------ array libraries

class _Lib:
    """A GPU array library as the tests use it."""

    def __init__(self, name):
        self.name = name
        if name == "cupy":
            import cupy
            self.mod = cupy
        else:
            import torch
            self.mod = torch

    def array(self, a, dtype=None):
        a = np.asarray(a) if dtype is None else np.asarray(a, dtype=np.float32)
        if self.name == "cupy":
            return self.mod.asarray(a if dtype is None else a.astype(dtype))
        t = self.mod.from_numpy(np.ascontiguousarray(a)).cuda()
        return t if dtype is None else t.to(getattr(self.mod, dtype))

    def host(self, x):
        if self.name == "cupy":
            return self.mod.asnumpy(x.astype("float64") if x.dtype.kind == "f" else x)
        return x.detach().double().cpu().numpy() if x.is_floating_point() else x.cpu().numpy()

    def dtype(self, x):
        return x.dtype.name if self.name == "cupy" else str(x.dtype).removeprefix("torch.")

    def is_kind(self, x):
        return isinstance(x, self.mod.ndarray if self.name == "cupy" else self.mod.Tensor)

    def synchronize(self):
        if self.name == "cupy":
            self.mod.cuda.Device().synchronize()
        else:
            self.mod.cuda.synchronize()


def _lib_or_skip(name):
    if not HAVE_GPU:
        pytest.skip(NO_GPU_REASON)
    try:
        lib = _Lib(name)
    except ImportError:
        pytest.skip(f"{name} is not installed")
    if name == "torch" and not lib.mod.cuda.is_available():
        pytest.skip("PyTorch has no CUDA here")
    if name == "cupy":
        try:
            lib.mod.cuda.runtime.getDeviceCount()
        except Exception as exc:
            pytest.skip(f"CuPy cannot use the GPU: {exc}")
    return lib


@pytest.fixture(params=["cupy", "torch"])
def lib(request):
    return _lib_or_skip(request.param)


# ---------------------------------------------------------------- GPU == CPU

def _check_against_cpu(lib, q, k, v, g, mask, atol, rtol=0, dtype=None, scale=None):
    """The GPU forward (out, lse) and backward (dq, dk, dv) equal the CPU kernels'
    on the same (rounded) inputs, to atol (and rtol)."""
    if dtype is not None:  # the CPU reference sees the inputs the GPU sees
        q, k, v, g = (lib.host(lib.array(x, dtype)) for x in (q, k, v, g))
        dq_, dk_, dv_, dg_ = (lib.array(x, dtype) for x in (q, k, v, g))
    else:
        dq_, dk_, dv_, dg_ = (lib.array(x) for x in (q, k, v, g))
    want_out, want_lse = sparse_attention(q, k, v, mask, scale=scale, return_lse=True)
    want_grads = sparse_attention_backward(q, k, v, mask, g, scale=scale)

    out, lse = sparse_attention(dq_, dk_, dv_, mask, scale=scale, return_lse=True)
    assert lib.is_kind(out) and lib.is_kind(lse)
    assert lib.dtype(out) == lib.dtype(dq_)
    assert lib.dtype(lse) == ("float64" if lib.dtype(dq_) == "float64" else "float32")
    np.testing.assert_allclose(lib.host(out), want_out, rtol=rtol, atol=atol)
    np.testing.assert_allclose(lib.host(lse), want_lse, rtol=rtol, atol=atol)

    grads = sparse_attention_backward(dq_, dk_, dv_, mask, dg_, scale=scale)
    reused = sparse_attention_backward(dq_, dk_, dv_, mask, dg_, scale=scale, out=out, lse=lse)
    for got, again, want, x in zip(grads, reused, want_grads, (dq_, dk_, dv_)):
        assert lib.is_kind(got) and lib.dtype(got) == lib.dtype(x)
        assert tuple(got.shape) == tuple(x.shape)
        np.testing.assert_allclose(lib.host(got), want, rtol=rtol, atol=atol)
        np.testing.assert_array_equal(lib.host(again), lib.host(got))


@pytest.mark.gpu
@pytest.mark.parametrize("lead, n, m, d, dv, density", [
    ((), 40, 40, 8, 8, 0.2),
    ((3,), 33, 21, 5, 7, 0.3),          # rectangular mask, Dv != D
    ((2, 3), 17, 50, 16, 4, 0.05),
    ((2,), 70, 9, 3, 3, 0.9),
    ((1,), 130, 130, 32, 32, 0.5),      # rows longer than a warp's chunk of 32
    ((2, 2), 196, 196, 12, 12, 0.2),    # the ViT case's shape
    ((1,), 50, 300, 64, 40, 0.7),       # rows of ~200 nonzeros, two values per lane
])
@pytest.mark.parametrize("index", ["int32", "int64"])
def test_float32_matches_cpu(lib, lead, n, m, d, dv, density, index, request):
    if index == "int64":
        request.getfixturevalue("int64_indices")
    rng = np.random.default_rng(n * m + d)
    q, k, v, g, mask = random_problem(rng, lead, n, m, d, dv, density, empty_rows=(0, n // 2))
    csr = SparseCSR.from_dense(mask)
    assert csr.index_dtype == np.dtype(index)
    q, k, v, g = (x.astype(np.float32) for x in (q, k, v, g))
    _check_against_cpu(lib, q, k, v, g, csr, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dim", [1, 12, 31, 32, 33, 64, 65, 128, 129, 200, 256])
def test_every_head_size_path(lib, dim):
    # 1, 2, 4 or 8 values per lane, and the edges between them
    rng = np.random.default_rng(dim)
    q, k, v, g, mask = random_problem(rng, (2,), 45, 38, dim, 257 - dim, 0.4, empty_rows=(2,))
    q, k, v, g = (x.astype(np.float32) for x in (q, k, v, g))
    _check_against_cpu(lib, q, k, v, g, SparseCSR.from_dense(mask), atol=1e-4)


@pytest.mark.gpu
def test_float64_matches_cpu(lib):
    rng = np.random.default_rng(3)
    q, k, v, g, mask = random_problem(rng, (2, 3), 60, 45, 24, 10, 0.3, empty_rows=(4,))
    _check_against_cpu(lib, q, k, v, g, mask, atol=1e-10, scale=0.3)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [("float16", 5e-3), ("bfloat16", 4e-2)])
def test_half_precision_inputs(lib, dtype, tol):
    if lib.name == "cupy" and dtype == "bfloat16":
        pytest.skip("CuPy has no bfloat16")
    rng = np.random.default_rng(4)
    q, k, v, g, mask = random_problem(rng, (2, 2), 64, 64, 32, 32, 0.25, empty_rows=(1,))
    # fp32 sums of the rounded inputs, against float64 sums of the same inputs; the
    # outputs (and the out that delta is taken from) are rounded once more to the dtype
    _check_against_cpu(lib, q, k, v, g, SparseCSR.from_dense(mask), atol=tol, rtol=tol,
                       dtype=dtype)


@pytest.mark.gpu
def test_large_scores_and_long_rows(lib):
    rng = np.random.default_rng(5)
    q, k, v, g, mask = random_problem(rng, (1,), 20, 2000, 16, 16, 0.9, empty_rows=(3,))
    q, k, v, g = ((30 * x).astype(np.float32) for x in (q, k, v, g))
    out = lib.host(sparse_attention(lib.array(q), lib.array(k), lib.array(v), mask))
    assert np.all(np.isfinite(out))
    # scores of ~30: gradients of ~30, so fp32 rounding of 1e-4 relative to those
    _check_against_cpu(lib, q / 30, k, v / 30, g / 30, SparseCSR.from_dense(mask), atol=1e-4,
                       rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("lead, n, m", [((0,), 5, 5), ((2,), 0, 5), ((2,), 5, 0)])
def test_empty_shapes(lib, lead, n, m):
    rng = np.random.default_rng(6)
    q, k, v, g, mask = random_problem(rng, lead, n, m, 4, 3, 0.5)
    q, k, v, g = (lib.array(x.astype(np.float32)) for x in (q, k, v, g))
    out, lse = sparse_attention(q, k, v, mask, return_lse=True)
    assert tuple(out.shape) == lead + (n, 3) and np.all(lib.host(out) == 0)
    assert np.all(lib.host(lse) == -np.inf)
    for got, x in zip(sparse_attention_backward(q, k, v, mask, g), (q, k, v)):
        assert tuple(got.shape) == tuple(x.shape) and np.all(lib.host(got) == 0)


@pytest.mark.gpu
def test_non_contiguous_inputs_and_device_mask(lib):
    rng = np.random.default_rng(7)
    q, k, v, g, mask = random_problem(rng, (3,), 30, 30, 8, 8, 0.3, empty_rows=(2,))
    q, k, v = (x.astype(np.float32) for x in (q, k, v))
    want = sparse_attention(q, k, v, mask)
    qt = lib.array(np.swapaxes(q, 0, 1).copy())           # (30, 3, 8), then a view back
    qt = qt.swapaxes(0, 1) if lib.name == "cupy" else qt.transpose(0, 1)
    got = sparse_attention(qt, lib.array(k), lib.array(v), lib.array(mask))
    np.testing.assert_allclose(lib.host(got), want, rtol=0, atol=1e-5)


@pytest.mark.gpu
def test_mixing_host_and_device_arrays_is_refused(lib):
    q = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="k is a GPU array but q is a host array"):
        sparse_attention(q, lib.array(q), q, np.ones((4, 4), dtype=bool))
    with pytest.raises(TypeError, match="q is a GPU array but grad_out is a host array"):
        sparse_attention_backward(lib.array(q), lib.array(q), lib.array(q),
                                  np.ones((4, 4), dtype=bool), q)
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        x = lib.array(np.ones((4, 3), dtype=np.int32))
        sparse_attention(x, x, x, np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="head sizes up to 256"):
        x = lib.array(np.ones((4, 300), dtype=np.float32))
        sparse_attention(x, x, x, np.ones((4, 4), dtype=bool))


@pytest.mark.gpu
def test_runs_on_the_current_stream(lib):
    rng = np.random.default_rng(8)
    q, k, v, g, mask = random_problem(rng, (8,), 256, 256, 32, 32, 0.3)
    q, k, v = (x.astype(np.float32) for x in (q, k, v))
    want = sparse_attention(q, k, v, mask)
    if lib.name == "cupy":
        stream = lib.mod.cuda.Stream(non_blocking=True)
        with stream:
            got = sparse_attention(lib.array(q), lib.array(k), lib.array(v), mask)
        stream.synchronize()
    else:
        stream = lib.mod.cuda.Stream()
        with lib.mod.cuda.stream(stream):
            got = sparse_attention(lib.array(q), lib.array(k), lib.array(v), mask)
        stream.synchronize()
    np.testing.assert_allclose(lib.host(got), want, rtol=0, atol=1e-4)


@pytest.mark.gpu
def test_torch_autograd_on_cuda():
    lib = _lib_or_skip("torch")
    torch = lib.mod
    from fastkern.attention.torch import Attention, sparse_attention as torch_attention

    mask = SparseCSR.from_dense(np.random.default_rng(9).random((7, 6)) < 0.5)
    q = torch.randn(2, 7, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    k = torch.randn(2, 6, 4, dtype=torch.float64, device="cuda", requires_grad=True)
    v = torch.randn(2, 6, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, k, v: torch_attention(q, k, v, mask), (q, k, v))

    grid = np.random.default_rng(10).random((16, 16)) < 0.3
    np.fill_diagonal(grid, True)
    attn = Attention(32, num_heads=4, attn_mask=SparseCSR.from_dense(grid))
    x = torch.randn(2, 16, 32)
    want = attn(x)
    want.sum().backward()
    want_grad = attn.qkv.weight.grad.clone()
    attn.zero_grad()
    attn.cuda()
    got = attn(x.cuda())
    got.sum().backward()
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=1e-4)
    torch.testing.assert_close(attn.qkv.weight.grad.cpu(), want_grad, rtol=0, atol=1e-4)


@pytest.mark.gpu
def test_numba_device_arrays():
    if not HAVE_GPU:
        pytest.skip(NO_GPU_REASON)
    numba_cuda = pytest.importorskip("numba.cuda")
    if not numba_cuda.is_available():
        pytest.skip("Numba cannot use the GPU")
    rng = np.random.default_rng(11)
    q, k, v, g, mask = random_problem(rng, (2,), 40, 30, 16, 8, 0.3, empty_rows=(1,))
    q, k, v, g = (x.astype(np.float32) for x in (q, k, v, g))
    args = [numba_cuda.to_device(x) for x in (q, k, v)]
    out = sparse_attention(*args, mask)
    assert isinstance(out, type(args[0]))
    np.testing.assert_allclose(out.copy_to_host(), sparse_attention(q, k, v, mask),
                               rtol=0, atol=1e-4)
    grads = sparse_attention_backward(*args, mask, numba_cuda.to_device(g))
    for got, want in zip(grads, sparse_attention_backward(q, k, v, mask, g)):
        np.testing.assert_allclose(got.copy_to_host(), want, rtol=0, atol=1e-4)


# --------------------------------------------- dispatch and bindings, no GPU

class FakeDeviceArray:
    """Host memory presented as GPU memory, as a device array library would."""

    def __init__(self, a):
        self.a = a

    @property
    def shape(self):
        return self.a.shape

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.a.shape, "typestr": self.a.dtype.str, "version": 3,
                "data": (self.a.ctypes.data, False), "strides": None}


class FakeAdapter:
    """_device's adapter for FakeDeviceArray; records every buffer by address."""
    name = "fake device array"
    buffers = {}

    @classmethod
    def keep(cls, a):
        cls.buffers[a.ctypes.data] = a
        return FakeDeviceArray(a)

    @staticmethod
    def owns(x):
        return isinstance(x, FakeDeviceArray)

    @staticmethod
    def device(x):
        return 0

    @staticmethod
    def dtype(x):
        return x.a.dtype.name

    @classmethod
    def contiguous(cls, x):
        return cls.keep(np.ascontiguousarray(x.a))

    @classmethod
    def pointer(cls, x):
        cls.buffers.setdefault(x.a.ctypes.data, x.a)
        return x.a.ctypes.data

    @classmethod
    def empty(cls, shape, dtype, device):
        return cls.keep(np.full(shape, np.nan, dtype=dtype))

    @staticmethod
    def stream(device):
        return 1234

    @classmethod
    def from_host(cls, a, device):
        return cls.keep(np.array(a))

    @staticmethod
    def to_host(x):
        return x.a


class FakeBinding:
    """Stands in for fastkern._cuda: checks each buffer against the size the
    launcher headers document, then computes with the CPU kernels."""
    max_head_dim = 256

    def __init__(self):
        self.calls = []

    @staticmethod
    def view(address, size, dtype):
        a = FakeAdapter.buffers[address]
        assert a.size == size and a.dtype == np.dtype(dtype), (a.shape, a.dtype, size, dtype)
        assert a.flags.c_contiguous
        return a.reshape(-1)

    def _csr(self, offsets, cols, order, rows, columns, index_dtype):
        o = self.view(offsets, rows + 1, index_dtype)
        c = self.view(cols, o[-1], index_dtype)
        r = self.view(order, rows, index_dtype)
        csr = SparseCSR(o, c, (rows, columns))
        np.testing.assert_array_equal(r, csr.row_order)
        return csr

    def forward(self, *, dtype, index_dtype, device, stream, heads, n, m, d, dv, row_offsets,
                column_indices, row_order, q, k, v, scale, out, lse):
        self.calls.append(("forward", dtype, device, stream))
        csr = self._csr(row_offsets, column_indices, row_order, n, m, index_dtype)
        acc = "float64" if dtype == "float64" else "float32"
        q, k, v = (self.view(x, heads * rows * width, dtype).reshape(heads, rows, width)
                   for x, rows, width in ((q, n, d), (k, m, d), (v, m, dv)))
        o, l = sparse_attention(q, k, v, csr, scale=scale, return_lse=True)
        self.view(out, heads * n * dv, dtype)[:] = o.reshape(-1)
        self.view(lse, heads * n, acc)[:] = l.reshape(-1)

    def backward(self, *, dtype, index_dtype, device, stream, heads, n, m, d, dv, row_offsets,
                 column_indices, row_order, t_row_offsets, t_column_indices, t_row_order, q, k,
                 v, out, dout, lse, scale, dq, dk, dv_out, delta):
        self.calls.append(("backward", dtype, device, stream))
        csr = self._csr(row_offsets, column_indices, row_order, n, m, index_dtype)
        t = self._csr(t_row_offsets, t_column_indices, t_row_order, m, n, index_dtype)
        assert t == csr.transpose()
        shaped = {name: self.view(x, heads * rows * width, dtype).reshape(heads, rows, width)
                  for name, x, rows, width in (("q", q, n, d), ("k", k, m, d), ("v", v, m, dv),
                                               ("out", out, n, dv), ("dout", dout, n, dv))}
        lse_ = self.view(lse, heads * n, dtype).reshape(heads, n)
        grads = sparse_attention_backward(shaped["q"], shaped["k"], shaped["v"], csr,
                                          shaped["dout"], scale=scale, out=shaped["out"],
                                          lse=lse_)
        for address, rows, width, g in ((dq, n, d, grads[0]), (dk, m, d, grads[1]),
                                         (dv_out, m, dv, grads[2])):
            self.view(address, heads * rows * width, dtype)[:] = g.reshape(-1)
        self.view(delta, heads * n, dtype)[:] = (shaped["dout"] * shaped["out"]).sum(-1).ravel()


@pytest.fixture
def fake_gpu(monkeypatch):
    binding = FakeBinding()
    monkeypatch.setattr(_device, "_cuda", binding)
    monkeypatch.setattr(_device, "_KINDS", (FakeAdapter,))
    FakeAdapter.buffers.clear()
    yield binding
    FakeAdapter.buffers.clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index", ["int32", "int64"])
def test_dispatch_hands_the_binding_what_its_headers_say(fake_gpu, dtype, index, request):
    if index == "int64":
        request.getfixturevalue("int64_indices")
    rng = np.random.default_rng(12)
    q, k, v, g, mask = random_problem(rng, (2, 3), 21, 17, 6, 5, 0.3, empty_rows=(0,))
    q, k, v, g = (x.astype(dtype) for x in (q, k, v, g))
    csr = SparseCSR.from_dense(mask)
    want_out, want_lse = sparse_attention(q, k, v, csr, return_lse=True)
    want_grads = sparse_attention_backward(q, k, v, csr, g)

    dev = [FakeAdapter.keep(x) for x in (q, k, v, g)]
    out, lse = sparse_attention(*dev[:3], csr, return_lse=True)
    assert isinstance(out, FakeDeviceArray) and isinstance(lse, FakeDeviceArray)
    np.testing.assert_array_equal(out.a, want_out)
    np.testing.assert_array_equal(lse.a, want_lse)
    grads = sparse_attention_backward(*dev[:3], csr, dev[3])
    grads_reusing = sparse_attention_backward(*dev[:3], csr, dev[3], out=out, lse=lse)
    for got, again, want in zip(grads, grads_reusing, want_grads):
        np.testing.assert_array_equal(got.a, want)
        np.testing.assert_array_equal(again.a, want)
    name = np.dtype(dtype).name
    assert fake_gpu.calls == [("forward", name, 0, 1234), ("forward", name, 0, 1234),
                              ("backward", name, 0, 1234), ("backward", name, 0, 1234)]


def test_dispatch_copies_a_mask_to_the_device_once(fake_gpu):
    csr = SparseCSR.from_dense(np.eye(5, dtype=bool))
    x = FakeAdapter.keep(np.ones((5, 2), dtype=np.float32))
    sparse_attention(x, x, x, csr)
    key = id(pattern_of(csr))  # the cache is the SparseCSR's pattern's, for its life
    first = _device._csr_on_device[key][1][FakeAdapter, 0]
    sparse_attention_backward(x, x, x, csr, x)
    assert _device._csr_on_device[key][1][FakeAdapter, 0] is first
    del csr
    gc.collect()
    assert key not in _device._csr_on_device


def test_misaligned_device_arrays_are_refused(fake_gpu):
    # a misaligned load on the device is a sticky error: refuse before launching
    rng = np.random.default_rng(21)
    q, k, v, g, mask = random_problem(rng, (2,), 8, 6, 4, 4, 0.5, np.float32)
    good = [FakeAdapter.keep(x) for x in (q, k, v, g)]
    for i, name in enumerate(("q", "k", "v", "grad_out")):
        x = (q, k, v, g)[i]
        buf = np.zeros(x.nbytes + 4, np.uint8)
        bad = np.frombuffer(buf, np.float32, count=x.size, offset=2).reshape(x.shape)
        args = list(good)
        args[i] = FakeAdapter.keep(bad)
        if i < 3:
            with pytest.raises(ValueError, match=f"{name} must start at a multiple"):
                sparse_attention(*args[:3], mask)
        with pytest.raises(ValueError, match=f"{name} must start at a multiple"):
            sparse_attention_backward(*args[:3], mask, args[3])


def test_dense_masks_host_or_device(fake_gpu):
    mask = np.random.default_rng(13).random((6, 4)) < 0.5
    q, k = np.ones((6, 3), np.float32), np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    want = sparse_attention(q, k, k, mask)
    for m in (mask, FakeAdapter.keep(mask)):
        got = sparse_attention(FakeAdapter.keep(q), FakeAdapter.keep(k), FakeAdapter.keep(k), m)
        np.testing.assert_array_equal(got.a, want)


def test_host_and_device_arrays_mixed_are_refused(fake_gpu):
    a = np.ones((4, 3), dtype=np.float32)
    x = FakeAdapter.keep(a)
    mask = np.ones((4, 4), dtype=bool)
    with pytest.raises(TypeError, match="q is a GPU array but k is a host array"):
        sparse_attention(x, a, x, mask)
    with pytest.raises(TypeError, match="v is a GPU array but q is a host array"):
        sparse_attention(a, a, x, mask)
    with pytest.raises(TypeError, match="q is a GPU array but grad_out is a host array"):
        sparse_attention_backward(x, x, x, mask, a)
    with pytest.raises(TypeError, match="out is a GPU array but q is a host array"):
        sparse_attention_backward(a, a, a, mask, a, out=x, lse=a[:, 0])
    with pytest.raises(TypeError, match="mask is a GPU array but q, k and v are host"):
        sparse_attention(a, a, a, FakeAdapter.keep(mask))


@pytest.mark.parametrize("change, exc, words", [
    (dict(q=np.ones((4, 3), np.int32)), TypeError, "float16, bfloat16, float32 or float64"),
    (dict(k=np.ones((5, 3), np.float64)), TypeError, "same dtype"),
    (dict(q=np.ones(3, np.float32)), ValueError, "shape \\(..., length, dim\\)"),
    (dict(k=np.ones((2, 5, 3), np.float32)), ValueError, "leading"),
    (dict(k=np.ones((5, 2), np.float32)), ValueError, "same last dimension"),
    (dict(v=np.ones((6, 2), np.float32)), ValueError, "same length"),
    (dict(v=np.ones((5, 0), np.float32)), ValueError, "at least 1"),
    (dict(q=np.ones((4, 300), np.float32), k=np.ones((5, 300), np.float32)), ValueError,
     "head sizes up to 256"),
    (dict(mask=np.ones((4, 4), bool)), ValueError, "mask must have shape"),
    (dict(mask=np.ones((4, 5), np.int8)), TypeError, "boolean"),
    (dict(scale=math.nan), ValueError, "finite"),
    (dict(workers=0), ValueError, "workers"),
])
def test_bad_inputs_on_the_device_path(fake_gpu, change, exc, words):
    args = dict(q=np.ones((4, 3), np.float32), k=np.ones((5, 3), np.float32),
                v=np.ones((5, 2), np.float32), mask=np.ones((4, 5), bool))
    args.update(change)
    kwargs = {key: args.pop(key) for key in ("scale", "workers") if key in args}
    for name in ("q", "k", "v"):
        args[name] = FakeAdapter.keep(args[name])
    with pytest.raises(exc, match=words):
        sparse_attention(**args, **kwargs)


def test_bad_backward_arguments_on_the_device_path(fake_gpu):
    x = FakeAdapter.keep(np.ones((4, 3), np.float32))
    mask = np.ones((4, 4), bool)
    out, lse = sparse_attention(x, x, x, mask, return_lse=True)
    with pytest.raises(ValueError, match="grad_out must have shape"):
        sparse_attention_backward(x, x, x, mask, FakeAdapter.keep(np.ones((4, 2), np.float32)))
    with pytest.raises(TypeError, match="grad_out must have dtype float32"):
        sparse_attention_backward(x, x, x, mask, FakeAdapter.keep(np.ones((4, 3))))
    with pytest.raises(ValueError, match="both out and lse"):
        sparse_attention_backward(x, x, x, mask, x, out=out)
    with pytest.raises(ValueError, match="lse must have shape"):
        sparse_attention_backward(x, x, x, mask, x, out=out, lse=out)


def test_unknown_device_arrays_are_refused_clearly():
    class Foreign:
        __cuda_array_interface__ = {"shape": (4, 3), "typestr": "<f4", "version": 3,
                                    "data": (0, False)}
        shape = (4, 3)

    x = Foreign()
    with pytest.raises(TypeError, match="CuPy arrays, Numba device arrays and PyTorch"):
        sparse_attention(x, x, x, np.ones((4, 4), dtype=bool))


def test_dlpack_devices_are_told_from_host_ones():
    class DLPack:
        def __init__(self, device_type):
            self.device_type = device_type

        def __dlpack_device__(self):
            return (self.device_type, 0)

    assert _device.is_device_array(DLPack(2))          # kDLCUDA
    assert not _device.is_device_array(DLPack(1))      # kDLCPU
    assert not _device.is_device_array(np.ones(3))
    assert not _device.is_device_array([1.0, 2.0])


def test_without_cuda_kernels_device_arrays_raise(monkeypatch):
    monkeypatch.setattr(_device, "_cuda", None)
    monkeypatch.setattr(_device, "_KINDS", (FakeAdapter,))
    x = FakeAdapter.keep(np.ones((4, 3), np.float32))
    with pytest.raises(NotImplementedError, match="no CUDA kernels"):
        sparse_attention(x, x, x, np.ones((4, 4), dtype=bool))
    FakeAdapter.buffers.clear()


@needs_cuda_module
def test_cuda_module_reports_devices():
    devices = _cuda.devices()
    assert isinstance(devices, list)
    for info in devices:
        assert set(info) == {"index", "name", "compute_capability", "memory_bytes",
                             "multiprocessors"}
    cfg = fastkern.show_config(mode="dicts")["cuda"]
    assert cfg["built"] is True and cfg["devices"] == devices
    assert _cuda.runtime_version() >= 12000
    assert _cuda.__version__ == fastkern.__version__


@needs_cuda_module
def test_binding_checks_its_arguments():
    args = dict(dtype="float32", index_dtype="int32", device=0, stream=0, heads=1, n=4, m=4,
                d=8, dv=8, row_offsets=0, column_indices=0, row_order=0, q=0, k=0, v=0,
                scale=1.0, out=0, lse=0)
    with pytest.raises(TypeError, match="dtype must be"):
        _cuda.forward(**{**args, "dtype": "float8"})
    with pytest.raises(TypeError, match="index_dtype must be"):
        _cuda.forward(**{**args, "index_dtype": "uint8"})
    with pytest.raises(ValueError, match="d and dv must lie in"):
        _cuda.forward(**{**args, "d": 257})


@needs_cuda_module
@pytest.mark.skipif(HAVE_GPU, reason="checks the error path where no device exists")
def test_cuda_errors_become_exceptions_with_file_and_line():
    args = dict(dtype="float32", index_dtype="int32", device=0, stream=0, heads=1, n=4, m=4,
                d=8, dv=8, row_offsets=0, column_indices=0, row_order=0, q=0, k=0, v=0,
                scale=1.0, out=0, lse=0)
    with pytest.raises(_cuda.CudaError, match=r"cuda\w+: .* at .*bindings\.cpp:\d+") as info:
        _cuda.forward(**args)
    assert isinstance(info.value, RuntimeError)


# ------------------------------------------------------------ nvcc, no GPU

def _find_nvcc():
    candidates = [os.path.join(os.environ[var], "bin", "nvcc")
                  for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)]
    candidates += [shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    return next((p for p in candidates if p and os.access(p, os.X_OK)), None)


CU_SOURCES = sorted(CSRC.glob("*/*.cu"))


@pytest.mark.slow
@pytest.mark.skipif(_find_nvcc() is None, reason="nvcc not found")
@pytest.mark.skipif(not CU_SOURCES, reason="CUDA sources not found (tests run outside the "
                    "source tree)")
def test_each_kernel_compiles_for_sm80_and_sm90(tmp_path):
    nvcc = _find_nvcc()

    def compile_one(src):
        cmd = [nvcc, "-c", str(src), "-o", str(tmp_path / (src.stem + ".o")), "-std=c++17",
               "-O3", f"-I{CSRC}", "--Werror", "all-warnings",
               "-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]
        return src.name, subprocess.run(cmd, capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(compile_one, CU_SOURCES))
    failed = {name: r.stdout + r.stderr for name, r in results if r.returncode}
    assert not failed, failed
    assert sorted(p.name for p in tmp_path.glob("*.o")) == sorted(
        src.stem + ".o" for src in CU_SOURCES)


# ------------------------------------------- the kernels, run on the CPU

EMULATION_ENTRY = r"""
#include "attention/attention_backward_dkdv_cuda.h"
#include "attention/attention_backward_dq_cuda.h"
#include "attention/attention_forward_cuda.h"

using namespace fastkern;

template <typename T, typename I>
int Run(int op, int64_t heads, int64_t n, int64_t m, int d, int dv, void** p, double scale) {
  using A = AccumulatorT<T>;
  auto c = [&](int i) { return static_cast<const I*>(p[i]); };
  auto t = [&](int i) { return static_cast<T*>(p[i]); };
  auto a = [&](int i) { return static_cast<A*>(p[i]); };
  if (op == 0) {  // offsets, cols, order, q, k, v, out, lse
    return CudaSparseAttentionForward<T, I>(heads, n, m, d, dv, c(0), c(1), c(2), t(3), t(4),
                                            t(5), A(scale), t(6), a(7), nullptr);
  }
  if (op == 1) {  // offsets, cols, order, q, k, v, out, dout, lse, dq, delta
    return CudaSparseAttentionBackwardQueries<T, I>(heads, n, m, d, dv, c(0), c(1), c(2),
                                                    t(3), t(4), t(5), t(6), t(7), a(8),
                                                    A(scale), t(9), a(10), nullptr);
  }
  // t_offsets, t_cols, t_order, q, k, v, dout, lse, delta, dk, dv
  return CudaSparseAttentionBackwardKeys<T, I>(heads, n, m, d, dv, c(0), c(1), c(2), t(3),
                                               t(4), t(5), t(6), a(7), a(8), A(scale), t(9),
                                               t(10), nullptr);
}

template <typename T>
int RunIndex(int index64, int op, int64_t heads, int64_t n, int64_t m, int d, int dv,
             void** p, double scale) {
  return index64 ? Run<T, int64_t>(op, heads, n, m, d, dv, p, scale)
                 : Run<T, int32_t>(op, heads, n, m, d, dv, p, scale);
}

// dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16
extern "C" int fk_emulated(int dtype, int index64, int op, int64_t heads, int64_t n,
                           int64_t m, int d, int dv, void** p, double scale) {
  switch (dtype) {
    case 0: return RunIndex<float>(index64, op, heads, n, m, d, dv, p, scale);
    case 1: return RunIndex<double>(index64, op, heads, n, m, d, dv, p, scale);
    case 2: return RunIndex<__half>(index64, op, heads, n, m, d, dv, p, scale);
    default: return RunIndex<__nv_bfloat16>(index64, op, heads, n, m, d, dv, p, scale);
  }
}
"""


def _cuda_include():
    nvcc = _find_nvcc()
    if nvcc is None:
        return None
    dry = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                         capture_output=True, text=True)
    top = re.search(r"^#\$ TOP=(.+)$", dry.stdout + dry.stderr, re.MULTILINE)
    root = Path(top.group(1).strip()).resolve() if top else Path(nvcc).resolve().parent.parent
    include = root / "include"
    return include if (include / "cuda_fp16.h").exists() else None


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The CUDA launchers compiled for the CPU with tests/cuda_emulation.h, via ctypes."""
    include = _cuda_include()
    emulation = Path(__file__).with_name("cuda_emulation.h")
    if include is None or not CU_SOURCES or not emulation.exists():
        pytest.skip("needs the CUDA headers (from nvcc's toolkit) and the source tree")
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    tmp = tmp_path_factory.mktemp("emulated")
    launch = re.compile(r"(\w+<[^<>;]*>)\s*<<<([^;]*?)>>>\s*\(")
    sources = []
    for src in CU_SOURCES:
        text = src.read_text()
        text, launches = launch.subn(r"::emu::Launch(\2, \1, ", text)
        text, shared = re.subn(r"extern __shared__ __align__\(\d+\) unsigned char shared\[\];",
                               "unsigned char* shared = ::emu::shared_memory;", text)
        assert launches and shared, f"{src.name}: launch or shared memory not recognised"
        out = tmp / (src.stem + ".cpp")
        out.write_text(f'#line 1 "{src}"\n' + text)
        sources.append(out)
    (tmp / "entry.cpp").write_text(EMULATION_ENTRY)
    library = tmp / "emulated.so"
    cmd = [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w",
           "-include", str(emulation),
           f"-I{CSRC}", f"-I{CSRC / 'attention'}", f"-I{include}",
           *map(str, sources), str(tmp / "entry.cpp"), "-o", str(library)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        pytest.fail(f"compiling the kernels for the CPU failed:\n{result.stderr[-4000:]}")
    return str(library)


def _load(library):
    lib = ctypes.CDLL(library)
    lib.fk_emulated.restype = ctypes.c_int
    lib.fk_emulated.argtypes = [ctypes.c_int] * 3 + [ctypes.c_int64] * 3 + [ctypes.c_int] * 2 + [
        ctypes.POINTER(ctypes.c_void_p), ctypes.c_double]
    return lib


_EMULATED_DTYPES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


def _to_bf16(a):
    """bfloat16 bits (as uint16) of a, rounded to nearest even."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits += 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def _from_bf16(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _emulated_call(lib, dtype, csr, op, heads, n, m, d, dv, arrays, scale):
    pointers = (ctypes.c_void_p * len(arrays))(*(a.ctypes.data for a in arrays))
    status = lib.fk_emulated(_EMULATED_DTYPES[dtype], int(csr.index_dtype == np.int64), op,
                             heads, n, m, d, dv, pointers, scale)
    assert status == 0


def _emulated_attention(library, dtype, q, k, v, g, csr, scale):
    """out, lse, dq, dk, dv from the emulated kernels, as float64.  They run in a
    child process, so that a kernel that reads or writes out of bounds fails the
    test instead of crashing the test run."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_emulated_attention_here, library, dtype, q, k, v, g, csr, scale)
        try:
            return future.result()
        except BrokenProcessPool:
            pytest.fail("the emulated kernels crashed the process (out-of-bounds access?)")


def _emulated_attention_here(library, dtype, q, k, v, g, csr, scale):
    lib = _load(library)
    lead, n, m, d, dv = q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    heads = math.prod(lead)
    store = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
             "bfloat16": np.uint16}[dtype]
    acc = np.float64 if dtype == "float64" else np.float32
    enc = _to_bf16 if dtype == "bfloat16" else (lambda a: np.ascontiguousarray(a, store))
    dec = _from_bf16 if dtype == "bfloat16" else (lambda a: a)
    q_, k_, v_, g_ = (enc(x) for x in (q, k, v, g))
    out = np.full(lead + (n, dv), 7, store)       # every element must be written
    lse = np.full(lead + (n,), 7, acc)
    dq, delta = np.full(q.shape, 7, store), np.full(lead + (n,), 7, acc)
    dk, dv_ = np.full(k.shape, 7, store), np.full(v.shape, 7, store)
    t = csr.transpose()
    index = [np.array(a) for a in (csr.row_offsets, csr.column_indices, csr.row_order)]
    t_index = [np.array(a) for a in (t.row_offsets, t.column_indices, t.row_order)]
    _emulated_call(lib, dtype, csr, 0, heads, n, m, d, dv, index + [q_, k_, v_, out, lse], scale)
    _emulated_call(lib, dtype, csr, 1, heads, n, m, d, dv,
                   index + [q_, k_, v_, out, g_, lse, dq, delta], scale)
    _emulated_call(lib, dtype, csr, 2, heads, n, m, d, dv,
                   t_index + [q_, k_, v_, g_, lse, delta, dk, dv_], scale)
    out, dq, dk, dv_ = (dec(x).astype(np.float64) for x in (out, dq, dk, dv_))
    return out, lse.astype(np.float64), dq, dk, dv_


@pytest.mark.slow
@pytest.mark.parametrize("lead, n, m, d, dv, density", [
    ((2,), 21, 17, 6, 5, 0.3),           # rectangular, Dv != D
    ((1,), 40, 90, 33, 12, 0.6),         # rows of ~54 nonzeros: two chunks; 2 values per lane
    ((3,), 9, 9, 130, 70, 0.5),          # 8 and 4 values per lane
    ((2,), 5, 7, 1, 256, 0.5),           # head sizes at both ends
])
@pytest.mark.parametrize("index", ["int32", "int64"])
def test_kernels_emulated_on_the_cpu_match_the_cpu_kernels(emulated, lead, n, m, d, dv,
                                                           density, index, request):
    if index == "int64":
        request.getfixturevalue("int64_indices")
    rng = np.random.default_rng(n + m + d)
    q, k, v, g, mask = random_problem(rng, lead, n, m, d, dv, density, empty_rows=(1,))
    csr = SparseCSR.from_dense(mask)
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-4)):
        args = [x.astype(dtype) for x in (q, k, v, g)]
        want_out, want_lse = sparse_attention(*args[:3], csr, return_lse=True)
        want = (want_out, want_lse) + sparse_attention_backward(*args[:3], csr, args[3])
        scale = d ** -0.5
        got = _emulated_attention(emulated, dtype, *args, csr, scale)
        for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=f"{dtype} {name}")
        assert np.all(got[0][..., 1, :] == 0) and np.all(got[1][..., 1] == -np.inf)


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-5)])
def test_kernels_emulated_on_the_cpu_non_finite_scores(emulated, dtype, tol):
    # -inf scores weigh 0 (even over a whole chunk), NaN rows are NaN: as on the CPU
    q, k, v, g, mask = nonfinite_problem(np.dtype(dtype))
    csr = SparseCSR.from_dense(mask)
    out, lse = sparse_attention(q, k, v, csr, scale=0.5, return_lse=True)
    want = (out, lse) + sparse_attention_backward(q, k, v, csr, g, scale=0.5)
    got = _emulated_attention(emulated, dtype, q, k, v, g, csr, 0.5)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"{dtype} {name}")
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{dtype} {name}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [("float16", 5e-3), ("bfloat16", 4e-2)])
def test_kernels_emulated_on_the_cpu_half_precision(emulated, dtype, tol):
    rng = np.random.default_rng(14)
    q, k, v, g, mask = random_problem(rng, (2,), 24, 40, 16, 16, 0.4, empty_rows=(0,))
    csr = SparseCSR.from_dense(mask)
    if dtype == "float16":
        rounded = [x.astype(np.float16).astype(np.float64) for x in (q, k, v, g)]
    else:
        rounded = [_from_bf16(_to_bf16(x)).astype(np.float64) for x in (q, k, v, g)]
    want_out, want_lse = sparse_attention(*rounded[:3], csr, return_lse=True)
    want = (want_out, want_lse) + sparse_attention_backward(*rounded[:3], csr, rounded[3])
    got = _emulated_attention(emulated, dtype, *rounded, csr, 16 ** -0.5)
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"{dtype} {name}")
