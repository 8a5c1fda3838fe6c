"""A bank of filters in one call against one call per filter and PyTorch.

Workload: the 3000x3000 image, eight 4x4 filters, mode "valid", every 5th pixel
in both directions (stride 5), float32 and float64, 1 and 2 threads: one
``correlate2d(image, bank)`` with the (8, 4, 4) bank against eight 2-D calls
and ``torch.nn.functional.conv2d`` with 8 output channels and stride 5 (the same
output, checked before timing).

And the image workload: the 3000x3000 float64 image with two 4x4 filters, mode
"full", every 5th pixel kept, with the default ``workers``: the serial loop of
``scipy.signal.convolve2d(image, f)[::5, ::5]`` it replaces, against a
``convolve2d(image, f, stride=5)`` call per filter and one call with the (2, 4, 4)
bank.

    python -m pytest bench/bench_banks.py --benchmark-only --benchmark-json=banks.json
    python bench/ratios.py banks.json
    python bench/bench_banks.py          # the candidates alternated, a table
"""
import sys

import numpy as np
import pytest

import fastkern

from alternate import alternated

torch = pytest.importorskip("torch") if __name__ != "__main__" else __import__("torch")

N = 3000
DTYPES = [np.float32, np.float64]
THREADS = [1, 2]


def candidates(x, bank, n_threads):
    torch.set_num_threads(n_threads)
    tx = torch.from_numpy(x)[None, None]
    tw = torch.from_numpy(np.ascontiguousarray(bank))[:, None]
    return {
        "fastkern, one call": lambda: fastkern.correlate2d(x, bank, "valid", stride=5,
                                                           workers=n_threads),
        "fastkern, one call per filter": lambda: [
            fastkern.correlate2d(x, f, "valid", stride=5, workers=n_threads) for f in bank],
        "torch conv2d": lambda: torch.nn.functional.conv2d(tx, tw, stride=5),
    }


def inputs(dtype):
    rng = np.random.default_rng(0)
    return rng.random((N, N)).astype(dtype), rng.random((8, 4, 4)).astype(dtype)


def check(x, bank):
    calls = candidates(x, bank, 1)
    want = calls["torch conv2d"]()[0].numpy()
    np.testing.assert_allclose(calls["fastkern, one call"](), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("name", ["fastkern, one call", "fastkern, one call per filter",
                                  "torch conv2d"])
def test_bank(benchmark, dtype, n_threads, name):
    x, bank = inputs(dtype)
    check(x, bank)
    benchmark.group = f"8 filters 4x4, valid, stride 5, {np.dtype(dtype).name}, {n_threads} thread"
    benchmark.pedantic(candidates(x, bank, n_threads)[name], rounds=7, iterations=1,
                       warmup_rounds=1)


def image_workload():
    import scipy.signal
    rng = np.random.default_rng(1)
    x, two = rng.random((N, N)), rng.random((2, 4, 4))
    return {
        "scipy loop": lambda: [scipy.signal.convolve2d(x, f)[::5, ::5] for f in two],
        "fastkern, a call per filter": lambda: [fastkern.convolve2d(x, f, stride=5)
                                                for f in two],
        "fastkern, one call": lambda: fastkern.convolve2d(x, two, stride=5),
    }


@pytest.mark.parametrize("name", ["scipy loop", "fastkern, a call per filter",
                                  "fastkern, one call"])
def test_image_workload(benchmark, name):
    calls = image_workload()
    want = calls["scipy loop"]()
    np.testing.assert_allclose(calls[name](), want, rtol=1e-12, atol=1e-12)
    benchmark.group = "two 4x4 filters, full, every 5th pixel, float64, default workers"
    benchmark.pedantic(calls[name], rounds=5, iterations=1, warmup_rounds=1)


def main(rounds=7):
    print(f"3000x3000, eight 4x4 filters, valid, stride 5; medians of {rounds} alternated "
          "rounds, ms (python bench/bench_banks.py)\n")
    print("| dtype | threads | one call | one call per filter | torch conv2d |")
    print("| --- | --- | --- | --- | --- |")
    for dtype in DTYPES:
        x, bank = inputs(dtype)
        check(x, bank)
        for n_threads in THREADS:
            t = [v * 1e3 for v in alternated(candidates(x, bank, n_threads), rounds).values()]
            print(f"| {np.dtype(dtype).name} | {n_threads} | {t[0]:.1f} | {t[1]:.1f} "
                  f"| {t[2]:.1f} |", flush=True)
    print(f"\nthe image workload: two 4x4 filters, full, every 5th pixel, float64, default "
          f"workers ({fastkern.get_workers()}); medians of {rounds} alternated rounds, ms\n")
    t = alternated(image_workload(), rounds)
    print("| scipy loop | a call per filter | one call | scipy / calls | calls / one call |")
    print("| --- | --- | --- | --- | --- |")
    scipy_t, calls_t, one_t = (v * 1e3 for v in t.values())
    print(f"| {scipy_t:.0f} | {calls_t:.2f} | {one_t:.2f} | {scipy_t / calls_t:.0f}x "
          f"| {calls_t / one_t:.2f}x |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
