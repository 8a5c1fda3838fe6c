"""sepconvolve2d against cv2.sepFilter2D, and against the 2-D call it replaces.

Workload: the 3000x3000 image, mode "same", zero fill, a Gaussian of 7, 15, 31
and 63 taps (sigma = taps / 6) in both directions, float64 and float32, 1 and 2
threads (``workers=n``; ``cv2.setNumThreads(n)``).  Target: faster than
cv2.sepFilter2D (the flipped factors, the default anchor: the same output,
checked before timing) in every row.  ``convolve2d`` with the outer product
(method "auto": direct, or the FFT for the larger filters) is the 2-D baseline.

    python -m pytest bench/bench_separable.py --benchmark-only --benchmark-json=sep.json
    python bench/ratios.py sep.json
    python bench/bench_separable.py          # the candidates alternated, a table
"""
import sys

import cv2
import numpy as np
import pytest

import fastkern

from alternate import alternated

N = 3000
TAPS = [7, 15, 31, 63]
DTYPES = [np.float64, np.float32]
THREADS = [1, 2]
CASES = [pytest.param(k, d, t, id=f"{k}-{np.dtype(d).name}-{t}thread")
         for k in TAPS for d in DTYPES for t in THREADS]


def gaussian(taps, dtype):
    t = np.arange(taps) - (taps - 1) / 2
    g = np.exp(-t * t / (2 * (taps / 6) ** 2))
    return (g / g.sum()).astype(dtype)


def cv2_same(x, g):
    """``sepconvolve2d(x, g, g, "same")`` through cv2.sepFilter2D (which correlates)."""
    k = np.ascontiguousarray(g[::-1])
    return cv2.sepFilter2D(x, -1, k, k, anchor=(g.size // 2, g.size // 2),
                           borderType=cv2.BORDER_CONSTANT)


def candidates(x, g, n_threads):
    cv2.setNumThreads(n_threads)
    return {
        "fastkern.sepconvolve2d": lambda: fastkern.sepconvolve2d(x, g, g, "same",
                                                                 workers=n_threads),
        "cv2.sepFilter2D": lambda: cv2_same(x, g),
        "fastkern.convolve2d (2-D)": lambda: fastkern.convolve2d(x, np.outer(g, g), "same",
                                                                 workers=n_threads),
    }


def check(taps, dtype):
    x = np.random.default_rng(3).random((67, 130)).astype(dtype)
    g = gaussian(taps, dtype)
    want = fastkern.convolve2d(x, np.outer(g, g), "same", method="direct")
    for got in (cv2_same(x, g), fastkern.sepconvolve2d(x, g, g, "same")):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((N, N))


@pytest.mark.parametrize("taps,dtype,n_threads", CASES)
@pytest.mark.parametrize("name", ["fastkern.sepconvolve2d", "cv2.sepFilter2D (reference)",
                                  "fastkern.convolve2d (2-D)"])
def test_gaussian(benchmark, image, taps, dtype, n_threads, name):
    check(taps, dtype)
    benchmark.group = f"same 3000x3000 {np.dtype(dtype).name}, Gaussian {taps}, {n_threads} thread"
    x = image.astype(dtype)
    call = candidates(x, gaussian(taps, dtype), n_threads)[name.replace(" (reference)", "")]
    benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)


def main(rounds=5):
    image = np.random.default_rng(0).random((N, N))
    print(f"{N}x{N}, same, zero fill, Gaussian in both directions; medians of {rounds} "
          f"alternated rounds, ms (python bench/bench_separable.py)\n")
    print("| taps | dtype | threads | sepconvolve2d | cv2.sepFilter2D | convolve2d 2-D "
          "| sep / cv2 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for taps in TAPS:
        for dtype in DTYPES:
            check(taps, dtype)
            x = image.astype(dtype)
            for n_threads in THREADS:
                calls = candidates(x, gaussian(taps, dtype), n_threads)
                sep, cv, two = (v * 1e3 for v in alternated(calls, rounds).values())
                print(f"| {taps} | {np.dtype(dtype).name} | {n_threads} | {sep:.1f} | {cv:.1f} "
                      f"| {two:.1f} | {sep / cv:.2f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
