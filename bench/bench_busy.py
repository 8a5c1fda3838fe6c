"""Every kernel on a busy machine: the default ``workers`` against ``workers=1``
while another process holds one core with a busy loop (the ``busy_core``
fixture), and the same pair on idle cores.

With a core held, a thread placed there shares it, and a call waits for that
thread's share; by default a call takes only the CPUs that other processes are
not running (fastkern._workers.busy_cpus), so the default must stay within 1.1x
of workers=1.  On idle cores the default must keep its speed-up.

    python -m pytest bench/bench_busy.py --benchmark-only --benchmark-json=busy.json
    python bench/ratios.py busy.json
    python bench/bench_busy.py [rounds]     # both tables, the pair alternated
"""
import os
import sys

import numpy as np
import pytest

import fastkern
from fastkern.attention import SparseCSR, axial_2d_pattern, local_2d_pattern, sparse_attention
from fastkern.datasets import coal_mining_disasters

sys.path.insert(0, os.path.dirname(__file__))
from alternate import alternated  # noqa: E402
from conftest import BusyCore  # noqa: E402


def workloads():
    """name -> call(workers): each kernel on a workload of 10-200 ms."""
    rng = np.random.default_rng(0)
    image = rng.random((3000, 3000))
    image32 = image.astype(np.float32)
    small = rng.random((4, 4))
    two = rng.random((2, 4, 4))
    bank = rng.random((8, 4, 4)).astype(np.float32)
    big = rng.random((63, 63))
    taps = np.exp(-0.5 * (np.arange(15) - 7.0) ** 2 / 9.0)
    data = rng.poisson(4.0, 100_000).astype(np.float64)
    counts = coal_mining_disasters().counts
    grid = 48
    mask = SparseCSR.from_dense(axial_2d_pattern(grid, grid) | local_2d_pattern(grid, grid, 2))
    q, k, v = rng.standard_normal((3, 1, 4, grid * grid, 32)).astype(np.float32)
    return {
        "convolve2d 3000x3000, 4x4, full": lambda w: fastkern.convolve2d(image, small, workers=w),
        "two 4x4 filters, full, every 5th pixel, a call each": lambda w: [
            fastkern.convolve2d(image, f, stride=5, workers=w) for f in two],
        "eight 4x4 filters float32, valid, stride 5, one call": lambda w: fastkern.correlate2d(
            image32, bank, "valid", stride=5, workers=w),
        "convolve2d 3000x3000, 63x63, same (FFT)": lambda w: fastkern.convolve2d(
            image, big, "same", workers=w),
        "sepconvolve2d 3000x3000, 15 taps, same": lambda w: fastkern.sepconvolve2d(
            image, taps, taps, "same", workers=w),
        "bootstrap mean, n=100,000, 1,000 resamples": lambda w: fastkern.bootstrap(
            data, "mean", n_resamples=1000, method="percentile", seed=0, workers=w),
        "gibbs, 2 chains of 200,000": lambda w: fastkern.gibbs(200_000, 10, chains=2, seed=1,
                                                               workers=w),
        "gibbs_switchpoint, 2 chains of 20,000": lambda w: fastkern.gibbs_switchpoint(
            counts, 20_000, chains=2, seed=1, workers=w),
        "sparse_attention 2,304 tokens, 4 heads": lambda w: sparse_attention(
            q, k, v, mask, workers=w),
    }


NAMES = list(workloads())


@pytest.fixture(scope="module")
def calls():
    return workloads()


@pytest.mark.parametrize("workers", [None, 1], ids=["default", "workers=1"])
@pytest.mark.parametrize("name", NAMES)
def test_busy_core(benchmark, busy_core, calls, name, workers):
    benchmark.group = f"one core busy: {name}"
    benchmark.pedantic(calls[name], args=(workers,), rounds=9, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("workers", [None, 1], ids=["default", "workers=1"])
@pytest.mark.parametrize("name", NAMES)
def test_idle(benchmark, calls, name, workers):
    benchmark.group = f"idle: {name}"
    benchmark.pedantic(calls[name], args=(workers,), rounds=9, iterations=1, warmup_rounds=1)


def table(calls, rounds, busy):
    label = "one core held by a busy process" if busy else "idle cores"
    print(f"\n{label}: medians of {rounds} alternated rounds, ms "
          f"(default workers = {fastkern.get_workers()})\n")
    print("| workload | default | workers=1 | default / workers=1 |")
    print("| --- | --- | --- | --- |")
    for name, fn in calls.items():
        pair = {"default": lambda: fn(None), "one": lambda: fn(1)}
        if busy:
            with BusyCore():
                t = alternated(pair, rounds)
        else:
            t = alternated(pair, rounds)
        print(f"| {name} | {t['default'] * 1e3:.1f} | {t['one'] * 1e3:.1f} "
              f"| {t['default'] / t['one']:.2f} |", flush=True)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    calls = workloads()
    table(calls, rounds, busy=True)
    table(calls, rounds, busy=False)
