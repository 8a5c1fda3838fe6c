"""The measurements behind method="auto"'s cost model (src/fastkern/convolve.py,
_DIRECT_NS and _DIRECT_STRIDED_NS; src/fastkern/_fftconv.py, _OWN_NS):

    python bench/fft_calibrate.py [direct] [families] [fft]

prints, on one thread, the direct route's cost per multiply-add and per output
(2000x2000 image, mode "same", square kernels, unit and strided outputs), its
time with each kernel family the CPU runs (the cost model's _ISA_SLOWDOWN), and the
FFT route's cost per tile element for power-of-two square tiles (3000x3000 image,
33x33 kernel), in float64 and float32.  Best of 3 calls each; the machine's
speed drifts, so fit the model to the shape of these figures, not to one run.
"""
import time

import numpy as np

from fastkern import _convolve
from fastkern.convolve import _plane_args, _problem, correlate2d


def best(fn, repeat=3):
    # every call here runs on one thread: its CPU time is what the model predicts,
    # and unlike wall time it does not grow while other processes hold the core
    t = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        t = min(t, time.process_time() - start)
    return t


def direct(rng):
    print("direct route, 2000x2000, same, one thread")
    print("| dtype | kernel | stride | ms | ns per multiply-add | ns per output |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dtype in (np.float64, np.float32):
        x = rng.random((2000, 2000)).astype(dtype)
        for k in (3, 7, 15, 31):
            kernel = rng.random((k, k)).astype(dtype)
            for stride in (1, 2, 5):
                t = best(lambda: correlate2d(x, kernel, "same", stride=stride,
                                             method="direct", workers=1))
                outs = (-(-2000 // stride)) ** 2
                print(f"| {np.dtype(dtype).name} | {k}x{k} | {stride} | {t * 1e3:.1f} "
                      f"| {t / outs / k / k * 1e9:.4f} | {t / outs * 1e9:.2f} |", flush=True)


def families(rng):
    print("\ndirect route by kernel family (fastkern._convolve._isa), 2000x2000, same: "
          "ms, and the ratio to the best family")
    best_isa = _convolve._isa()
    try:
        for dtype in (np.float64, np.float32):
            x = rng.random((2000, 2000)).astype(dtype)
            for k in (7, 15, 31):
                kernel = rng.random((k, k)).astype(dtype)
                times = {}
                for isa in ("avx512", "avx2", "base", "scalar"):
                    _convolve._isa(isa)
                    times[_convolve._isa()] = best(lambda: correlate2d(
                        x, kernel, "same", method="direct", workers=1), 2)
                first = times[best_isa]
                print(f"{np.dtype(dtype).name} {k}x{k}: " + ", ".join(
                    f"{isa} {t * 1e3:.1f} ({t / first:.2f})" for isa, t in times.items()),
                    flush=True)
    finally:
        _convolve._isa(best_isa)


def fft(rng):
    print("\nFFT route, 3000x3000, 33x33, same, one thread, square tiles")
    print("| dtype | tile | tiles | ms | ns per tile element |")
    print("| --- | --- | --- | --- | --- |")
    for dtype in (np.float64, np.float32):
        x = rng.random((3000, 3000)).astype(dtype)
        kernel = rng.random((33, 33)).astype(dtype)
        pb = _problem(x, kernel, "same", "fill", 0, 1, False)
        out = np.empty(pb.out_shape, dtype)
        args = _plane_args(pb, pb.image, pb.kernel, out)
        for tile in (64, 128, 256, 512, 1024, 2048):
            per = tile - 33 + 1
            tiles = -(-3000 // per)
            t = best(lambda: _convolve.fft_correlate(*args, *pb.off, *pb.steps, pb.boundary,
                                                     tile, tile, per, per, 1), 2)
            print(f"| {np.dtype(dtype).name} | {tile}x{tile} | {tiles}x{tiles} | {t * 1e3:.0f} "
                  f"| {t / (tiles * tiles * tile * tile) * 1e9:.2f} |", flush=True)


if __name__ == "__main__":
    import sys
    parts = {"direct": direct, "families": families, "fft": fft}
    rng = np.random.default_rng(0)
    for name in sys.argv[1:] or parts:
        parts[name](rng)
