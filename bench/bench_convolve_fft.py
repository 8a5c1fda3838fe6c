"""convolve2d at every kernel size (method="auto": direct or FFT) against the
best of what a user would run instead, in the same run.

Workloads (on the project's 2-core machine), each at 1 and 2 threads
(``workers=n`` for fastkern, ``cv2.setNumThreads(n)``, ``scipy.fft.set_workers(n)``):
- 3000x3000 image, mode "same", zero fill, float64 and float32, kernels 4x4, 7x7,
  15x15, 31x31, 63x63, 127x127, 1x63 and 63x1: fastkern auto against
  scipy.signal.fftconvolve (named the reference: the best peer changes with the
  size), scipy.signal.oaconvolve and cv2.filter2D (OpenCV switches to a DFT for
  large kernels); fastkern's direct route too up to 31x31 in area (beyond, it
  takes seconds).  Targets: at no size is auto slower than the best peer by more
  than 1.2x; at 63x63 and 127x127, one thread, auto is at least 2x faster than
  fftconvolve and oaconvolve and within 1.5x of cv2.filter2D; with 2 threads,
  faster than cv2.filter2D; at 63x63 float64, auto with 2 workers at least 1.6x
  faster than with 1.
- the 4096x4096 full autocorrelation,
  ``correlate2d(a, a, "full", boundary="wrap")``, one thread (target: under 10 s;
  scipy.signal.correlate2d does not finish).

Rows run one after another, so a machine whose speed drifts (a shared host) can
favour any of them; ``python bench/fft_table.py`` alternates the candidates
instead and prints the table with the median of each.

    python -m pytest bench/bench_convolve_fft.py --benchmark-only --benchmark-json=fft.json
    python bench/ratios.py fft.json
"""
import contextlib

import cv2
import numpy as np
import pytest
import scipy.fft
import scipy.signal

import fastkern

N = 3000
KERNELS = [(4, 4), (7, 7), (15, 15), (31, 31), (63, 63), (127, 127), (1, 63), (63, 1)]
DTYPES = [np.float64, np.float32]
THREADS = [1, 2]
DIRECT_MAX_AREA = 31 * 31

CASES = [pytest.param(k, d, t, id=f"{k[0]}x{k[1]}-{np.dtype(d).name}-{t}thread")
         for k in KERNELS for d in DTYPES for t in THREADS]
DIRECT_CASES = [c for c in CASES if c.values[0][0] * c.values[0][1] <= DIRECT_MAX_AREA]


def cv2_same(x, k):
    """``convolve2d(x, k, "same")`` with zero fill, through cv2.filter2D.

    filter2D correlates, so the kernel is flipped; "same" keeps the full result
    from offset ``(K - 1) // 2``, which is the anchor ``K // 2`` of the flipped
    kernel in each direction (OpenCV's default, its centre: ``(kw // 2, kh // 2)``
    as (x, y)), for even sizes too.
    """
    kf = np.ascontiguousarray(k[::-1, ::-1])
    anchor = (k.shape[1] // 2, k.shape[0] // 2)
    return cv2.filter2D(x, -1, kf, anchor=anchor, borderType=cv2.BORDER_CONSTANT)


PEERS = {
    "cv2": cv2_same,
    "fftconvolve": lambda x, k: scipy.signal.fftconvolve(x, k, "same"),
    "oaconvolve": lambda x, k: scipy.signal.oaconvolve(x, k, "same"),
}


def check_peer(name, shape, dtype):
    """The peer gives fastkern's answer on a small image with this kernel shape."""
    rng = np.random.default_rng(3)
    x = rng.random((67, 130)).astype(dtype)
    k = rng.random(shape).astype(dtype)
    got = PEERS[name](x, k)
    want = fastkern.convolve2d(x, k, "same", method="direct")
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


@contextlib.contextmanager
def threads(n):
    """n threads for OpenCV and for scipy.fft (fftconvolve, oaconvolve)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        with scipy.fft.set_workers(n):
            yield
    finally:
        cv2.setNumThreads(previous)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((N, N))


def case(benchmark, image, shape, dtype, n_threads):
    benchmark.group = (f"same {N}x{N} {np.dtype(dtype).name} {shape[0]}x{shape[1]}, "
                       f"{n_threads} thread{'s' if n_threads > 1 else ''}")
    k = np.random.default_rng(1).random(shape).astype(dtype)
    return image.astype(dtype), k


# -- one 3000x3000 convolution, mode "same" -------------------------------------------

@pytest.mark.parametrize("shape, dtype, n_threads", CASES)
def test_same_reference_fftconvolve(run, benchmark, image, shape, dtype, n_threads):
    check_peer("fftconvolve", shape, dtype)
    x, k = case(benchmark, image, shape, dtype, n_threads)
    with threads(n_threads):
        run(lambda: PEERS["fftconvolve"](x, k), rounds=3)


@pytest.mark.parametrize("shape, dtype, n_threads", CASES)
def test_same_oaconvolve(run, benchmark, image, shape, dtype, n_threads):
    check_peer("oaconvolve", shape, dtype)
    x, k = case(benchmark, image, shape, dtype, n_threads)
    with threads(n_threads):
        run(lambda: PEERS["oaconvolve"](x, k), rounds=3)


@pytest.mark.parametrize("shape, dtype, n_threads", CASES)
def test_same_cv2_filter2d(run, benchmark, image, shape, dtype, n_threads):
    check_peer("cv2", shape, dtype)
    x, k = case(benchmark, image, shape, dtype, n_threads)
    with threads(n_threads):
        run(lambda: PEERS["cv2"](x, k), rounds=3)


@pytest.mark.parametrize("shape, dtype, n_threads", CASES)
def test_same_fastkern_auto(run, benchmark, image, shape, dtype, n_threads):
    x, k = case(benchmark, image, shape, dtype, n_threads)
    run(lambda: fastkern.convolve2d(x, k, "same", workers=n_threads), rounds=3)


@pytest.mark.parametrize("shape, dtype, n_threads", DIRECT_CASES)
def test_same_fastkern_direct(run, benchmark, image, shape, dtype, n_threads):
    x, k = case(benchmark, image, shape, dtype, n_threads)
    run(lambda: fastkern.convolve2d(x, k, "same", method="direct", workers=n_threads),
        rounds=3)


# -- the 4096x4096 full autocorrelation ---------------------------------------------

@pytest.mark.benchmark(group="full autocorrelation 4096x4096 float64, wrap, 1 thread")
def test_autocorrelation_fastkern_auto(run):
    a = np.random.default_rng(2).random((4096, 4096))
    run(lambda: fastkern.correlate2d(a, a, "full", boundary="wrap", workers=1), rounds=1)
