"""fastkern on free-threaded CPython (3.13t, 3.14t): no GIL at all.

- Importing every fastkern module leaves the GIL disabled (an extension module
  that does not declare itself free-threading compatible would turn it back on).
- N Python threads, each calling every public kernel with ``workers=1`` and doing
  pure-Python work between calls, get the serial calls' results.  Without a GIL
  the Python work runs in parallel with the other threads' kernels and Python
  work, which is what these tests exercise; they are skipped on a GIL build,
  where tests/test_threads.py covers threads.
- The state fastkern shares between threads (a SparseCSR's transpose, built on
  first use; the ``set_workers`` default; the CUDA extension's per-pattern device
  copies) stays consistent under many threads.  These tests run on any build.

tools/freethreaded.sh builds a free-threaded interpreter and runs the suite with it.
"""
import concurrent.futures
import dataclasses
import gc
import importlib
import pkgutil
import sys
import sysconfig
import threading

import numpy as np
import pytest

import fastkern
from fastkern.attention import (SparseCSR, local_2d_pattern, random_pattern,
                                sparse_attention, sparse_attention_backward)

FREE_THREADED = sysconfig.get_config_var("Py_GIL_DISABLED") == 1
free_threaded_only = pytest.mark.skipif(
    not FREE_THREADED,
    reason="needs a free-threaded CPython (Py_GIL_DISABLED); tools/freethreaded.sh runs it")

N_THREADS = 8
ROUNDS = 3


def _dask(name):
    """A fastkern.dask call computed on Dask's threaded scheduler."""
    da = pytest.importorskip("dask.array", reason="fastkern.dask needs Dask")
    import fastkern.dask as fk_dask
    rng = np.random.default_rng(11)
    if name == "convolve2d":
        x = da.from_array(rng.standard_normal((90, 80)), chunks=(40, 30))
        call = lambda: fk_dask.convolve2d(x, np.ones((3, 4)), "same", "wrap")  # noqa: E731
    elif name == "bootstrap":
        x = rng.normal(size=2000)
        call = lambda: fk_dask.bootstrap(x, "mean", n_resamples=200, seed=2)  # noqa: E731
    else:
        call = lambda: fk_dask.gibbs(300, chains=3, seed=3)  # noqa: E731
    return lambda: fastkern_dask_compute(call())


def fastkern_dask_compute(result):
    import dask

    if hasattr(result, "compute"):
        return result.compute(scheduler="threads")
    return dask.compute(result, scheduler="threads")[0]


def _kernels():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((120, 130))
    image32 = image.astype(np.float32)
    small = rng.standard_normal((5, 4))
    large = rng.standard_normal((25, 25))
    column, row = rng.standard_normal(7), rng.standard_normal(5)
    x = rng.poisson(4.0, size=2000).astype(float)
    y = x + rng.normal(size=2000)
    counts = fastkern.datasets.coal_mining_disasters()[1]
    mask = SparseCSR.from_dense(local_2d_pattern(10, 10, 2))
    rmask = SparseCSR.from_dense(random_pattern(64, 0.8, seed=1))
    q, k, v, g = (rng.standard_normal((2, 100, 8)) for _ in range(4))
    q64 = rng.standard_normal((64, 16)).astype(np.float32)
    items = [rng.standard_normal((40, 40)) for _ in range(6)]
    w = 1
    # (name, call): every public kernel with workers=1; adding a kernel is one line
    return [
        ("convolve2d direct", lambda: fastkern.convolve2d(image, small, "same", "symm",
                                                          method="direct", workers=w)),
        ("convolve2d fft", lambda: fastkern.convolve2d(image, large, "same", method="fft",
                                                       workers=w)),
        ("convolve2d int", lambda: fastkern.convolve2d(
            (image * 10).astype(np.int32), (small * 10).astype(np.int32), workers=w)),
        ("correlate2d", lambda: fastkern.correlate2d(image32, small, "valid", stride=(2, 3),
                                                     workers=w)),
        ("sepconvolve2d", lambda: fastkern.sepconvolve2d(image, column, row, "same",
                                                         workers=w)),
        ("sepcorrelate2d", lambda: fastkern.sepcorrelate2d(image32, column, row, "full",
                                                           "wrap", workers=w)),
        ("bootstrap BCa", lambda: fastkern.bootstrap(x, "mean", n_resamples=300, seed=3,
                                                     workers=w)),
        ("bootstrap paired", lambda: fastkern.bootstrap((x, y), "pearsonr", paired=True,
                                                        n_resamples=200, seed=4, workers=w)),
        ("gibbs", lambda: fastkern.gibbs(2000, 2, chains=2, seed=5, workers=w)),
        ("gibbs_switchpoint", lambda: fastkern.gibbs_switchpoint(counts, 300, chains=2,
                                                                 seed=6, workers=w)),
        ("sparse_attention", lambda: sparse_attention(q, k, v, mask, workers=w)),
        ("sparse_attention_backward", lambda: sparse_attention_backward(
            q, k, v, mask, g, workers=w)),
        ("sparse_attention random", lambda: sparse_attention(q64, q64, q64, rmask,
                                                             workers=w)),
        ("parallel_map", lambda: list(fastkern.parallel_map(
            lambda a: fastkern.convolve2d(a, small, workers=w), items,
            num_parallel_calls=2))),
        ("dask convolve2d", lambda: _dask("convolve2d")()),
        ("dask bootstrap", lambda: _dask("bootstrap")()),
        ("dask gibbs", lambda: _dask("gibbs")()),
    ]


KERNELS = _kernels()


def _arrays(result):
    """The arrays of a kernel's result, in order, whatever its container."""
    if isinstance(result, dict):
        return [a for key in sorted(result) for a in _arrays(result[key])]
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in _arrays(item)]
    if dataclasses.is_dataclass(result):
        return [a for f in dataclasses.fields(result) for a in _arrays(getattr(result, f.name))]
    return [np.asarray(result)]


def _assert_same(got, want):
    got, want = _arrays(got), _arrays(want)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def python_work(n=3000):
    """Pure-Python work between kernel calls: it holds the GIL where there is one."""
    table = {}
    for i in range(n):
        table[i % 97] = table.get(i % 97, 0) + i * i
    return sum(table.values())


def _run_threads(target, n_threads):
    """target(i) on n_threads threads started together; their results, in order."""
    barrier = threading.Barrier(n_threads)

    def start(i):
        barrier.wait()
        return target(i)

    with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(start, range(n_threads)))


@free_threaded_only
def test_importing_fastkern_leaves_the_gil_disabled():
    imported = []
    for info in pkgutil.walk_packages(fastkern.__path__, "fastkern."):
        if info.name == "fastkern.__main__":  # runs the main job when imported
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency (torch, dask, the CUDA build)
            continue
        imported.append(info.name)
    assert "fastkern._attention" in imported
    assert not sys._is_gil_enabled(), f"importing these enabled the GIL: {imported}"


@free_threaded_only
@pytest.mark.parametrize("name", [name for name, _ in KERNELS])
def test_threads_with_python_work_match_serial(name):
    call = dict(KERNELS)[name]
    want = call()
    expected_work = python_work()

    def thread(i):
        results = []
        for _ in range(ROUNDS):
            results.append(call())
            assert python_work() == expected_work
        return results

    for results in _run_threads(thread, N_THREADS):
        for got in results:
            _assert_same(got, want)
    assert not sys._is_gil_enabled()


@free_threaded_only
def test_all_kernels_at_once_match_serial():
    """Every thread walks the whole table, each from a different place in it, so
    that different kernels run at the same time."""
    available = []
    for name, call in KERNELS:
        try:
            available.append((name, call, call()))
        except pytest.skip.Exception:
            pass

    def thread(i):
        results = []
        for j in range(len(available)):
            name, call, _ = available[(i + j) % len(available)]
            results.append((name, call()))
            python_work(500)
        return results

    want = {name: result for name, _, result in available}
    for results in _run_threads(thread, N_THREADS):
        for name, got in results:
            _assert_same(got, want[name])


# ---------------------------------------------------------------- shared state

def test_transpose_is_built_once_under_many_threads():
    n_threads = 16
    for seed in range(20):
        mask = SparseCSR.from_dense(random_pattern(300, 0.7, seed=seed))
        want = mask.to_dense().T
        seen = _run_threads(lambda i: mask.transpose(), n_threads)
        assert all(t is seen[0] for t in seen)
        assert seen[0].transpose() is mask
        np.testing.assert_array_equal(seen[0].to_dense(), want)


def test_transposed_pattern_is_built_once_under_many_threads():
    from fastkern.attention.csr import pattern_of

    for seed in range(20):
        pattern = pattern_of(SparseCSR.from_dense(random_pattern(200, 0.5, seed=seed)))
        seen = _run_threads(lambda i: pattern.transpose(), 16)
        assert all(t is seen[0] for t in seen)
        assert seen[0].transpose() is pattern


def test_backward_with_a_fresh_mask_under_many_threads():
    """Every thread's first backward pass asks the same new mask for its
    transpose at once."""
    rng = np.random.default_rng(3)
    q, k, v, g = (rng.standard_normal((1, 144, 8)) for _ in range(4))
    dense = local_2d_pattern(12, 12, 3)
    want = sparse_attention_backward(q, k, v, SparseCSR.from_dense(dense), g, workers=1)
    for _ in range(5):
        mask = SparseCSR.from_dense(dense)
        for got in _run_threads(
                lambda i: sparse_attention_backward(q, k, v, mask, g, workers=1), 16):
            _assert_same(got, want)


def test_set_workers_stays_with_its_thread_under_many_threads():
    from fastkern._workers import _default_workers

    cpus = fastkern._workers.cpu_count()
    parallel = fastkern.show_config(mode="dicts")["openmp"]["enabled"]

    def thread(i):
        n = i % 4 + 1
        want = min(n, 4 * cpus) if parallel else 1
        for _ in range(200):
            with fastkern.set_workers(n):
                assert fastkern.get_workers() == want
                with fastkern.set_workers(-1):
                    assert fastkern.get_workers() == (cpus if parallel else 1)
                assert fastkern.get_workers() == want
            python_work(50)
        return _default_workers.get()   # the set_workers default this thread sees

    with fastkern.set_workers(1):
        # threads started here begin with no default, or with this block's value
        # where Python copies the context into new threads
        inherited = 1 if getattr(sys.flags, "thread_inherit_context", False) else None
        assert _run_threads(thread, 16) == [inherited] * 16
        assert _default_workers.get() == 1
    assert _default_workers.get() is None


def test_device_copies_are_made_once_under_many_threads():
    """The CUDA route's cache of a pattern's device arrays (an adapter that stands
    in for CuPy, Numba or PyTorch; no GPU needed): every thread gets the same
    arrays, copied once, kept while the pattern lives."""
    from fastkern.attention import _device
    from fastkern.attention.csr import pattern_of

    class Kind:
        def __init__(self):
            self.copies = 0
            self.lock = threading.Lock()

        def from_host(self, a, device):
            with self.lock:
                self.copies += 1
            python_work(200)  # widen the window between looking and storing
            return np.array(a)

        def pointer(self, a):
            return a.ctypes.data

    for seed in range(10):
        kind = Kind()
        pattern = pattern_of(SparseCSR.from_dense(random_pattern(50, 0.5, seed=seed)))
        seen = _run_threads(lambda i: _device._device_csr(pattern, kind, 0), 16)
        assert all(s == seen[0] for s in seen)
        assert kind.copies == 3  # offsets, columns, row order: once each
        assert _device._device_csr(pattern, kind, 0) == seen[0]
        key = id(pattern)
        del pattern
        gc.collect()
        assert key not in _device._csr_on_device
