"""What Ctrl-C costs: each kernel's call as usual, its threads checking for an
interrupt between short units of work and the calling thread looking at the
signals every 0.05 s (fastkern._interrupt), against the same call that never
looks (``fastkern._interrupt.interval(float("inf"))``).  The two should be within
noise of each other.

    python -m pytest bench/bench_interrupt.py --benchmark-only \
        --benchmark-columns=min,median,max,rounds --benchmark-json=interrupt.json
    python bench/ratios.py interrupt.json

Rows run one after another, so a machine whose speed drifts (a shared host) can
favour either side; ``python bench/bench_interrupt.py`` alternates the two calls
instead, 15 times each, and prints the ratio of their medians.
"""
import numpy as np
import pytest

import fastkern
from fastkern import _interrupt
from fastkern.attention import SparseCSR, random_pattern, sparse_attention


def _workloads():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((3000, 3000))
    kernel = rng.standard_normal((15, 15))
    x = rng.normal(size=100_000)
    counts = fastkern.datasets.coal_mining_disasters()[1]
    mask = SparseCSR.from_dense(random_pattern(4096, 0.9, seed=1))  # 10% of keys per row
    q = rng.standard_normal((4, 4096, 64)).astype(np.float32)
    return {
        "convolve2d 3000x3000 float64, 15x15, same": lambda w: fastkern.convolve2d(
            image, kernel, "same", workers=w),
        "bootstrap mean n=1e5, 2000 resamples": lambda w: fastkern.bootstrap(
            x, "mean", n_resamples=2000, method="percentile", seed=1, workers=w),
        "gibbs 2 chains x 1e6 steps": lambda w: fastkern.gibbs(
            100_000, 10, chains=2, seed=1, workers=w),
        "gibbs_switchpoint 2 chains x 20000 sweeps": lambda w: fastkern.gibbs_switchpoint(
            counts, 20_000, chains=2, seed=1, workers=w),
        "sparse_attention 4 heads, N=4096, 410 keys/row, D=64": lambda w: sparse_attention(
            q, q, q, mask, workers=w),
    }


WORKLOADS = _workloads()


@pytest.fixture
def never_look():
    previous = _interrupt.interval(float("inf"))
    yield
    _interrupt.interval(previous)


@pytest.mark.parametrize("workers", [1, None], ids=["workers=1", "workers=default"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_with_checks(benchmark, name, workers):
    benchmark.group = f"{name}, {'one thread' if workers == 1 else 'all threads'}"
    benchmark.pedantic(WORKLOADS[name], args=(workers,), rounds=7, warmup_rounds=1)


@pytest.mark.parametrize("workers", [1, None], ids=["workers=1", "workers=default"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_reference_never_looks(benchmark, never_look, name, workers):
    benchmark.group = f"{name}, {'one thread' if workers == 1 else 'all threads'}"
    benchmark.pedantic(WORKLOADS[name], args=(workers,), rounds=7, warmup_rounds=1)


def interleaved(reps=15):
    """Median times with and without looking at the signals, the two alternated."""
    import time

    for name, call in WORKLOADS.items():
        for workers in (1, None):
            times = {0.05: [], float("inf"): []}
            call(workers)
            for _ in range(reps):
                for seconds in times:
                    previous = _interrupt.interval(seconds)
                    start = time.perf_counter()
                    call(workers)
                    times[seconds].append(time.perf_counter() - start)
                    _interrupt.interval(previous)
            checks, never = (float(np.median(t)) for t in times.values())
            print(f"{name}, workers={workers}: {checks * 1e3:.1f} ms with checks, "
                  f"{never * 1e3:.1f} ms never looking, ratio {checks / never:.3f}")


if __name__ == "__main__":
    interleaved()
