"""Two Python threads against one: each kernel called with ``workers=1``, with
pure-Python work of about the same length between calls.

On a free-threaded CPython (3.13t, 3.14t) both halves of the work run in
parallel, so two threads do twice the work of one in the same time on two
free cores (a speed-up near 2).  With the GIL only the kernels overlap; the
Python work takes turns, and the speed-up stays nearer 1.33 (one part in three
runs alone).

    python bench/bench_freethreaded.py          # the speed-up per kernel
    python -m pytest bench/bench_freethreaded.py --benchmark-only \
        --benchmark-columns=min,median,max,rounds

The script alternates the serial and the threaded run, ``--repeat`` times each,
and prints the ratio of their medians; tools/freethreaded.sh runs it as its
scaling check and reports it without judging it (a shared machine is noisy).
"""
import argparse
import math
import statistics
import sys
import sysconfig
import threading
import time

import numpy as np
import pytest

import fastkern
from fastkern.attention import SparseCSR, random_pattern, sparse_attention


def _workloads():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1000, 1000))
    kernel = rng.standard_normal((9, 9))
    x = rng.normal(size=20_000)
    counts = fastkern.datasets.coal_mining_disasters()[1]
    mask = SparseCSR.from_dense(random_pattern(1024, 0.9, seed=1))
    q = rng.standard_normal((2, 1024, 64)).astype(np.float32)
    return {
        "convolve2d": lambda: fastkern.convolve2d(image, kernel, "same", workers=1),
        "bootstrap": lambda: fastkern.bootstrap(x, "mean", n_resamples=1000,
                                                method="percentile", seed=1, workers=1),
        "gibbs": lambda: fastkern.gibbs(50_000, 10, chains=1, seed=1, workers=1),
        "gibbs_switchpoint": lambda: fastkern.gibbs_switchpoint(counts, 5_000, chains=1,
                                                                seed=1, workers=1),
        "sparse_attention": lambda: sparse_attention(q, q, q, mask, workers=1),
    }


WORKLOADS = _workloads()


def python_work(n):
    """Pure-Python work: a loop that holds the GIL where there is one."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _duration(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _python_steps_like(seconds):
    """The loop length whose python_work lasts about `seconds`."""
    n = 10_000
    while _duration(lambda: python_work(n)) < seconds / 4:
        n *= 2
    return max(1, int(n * seconds / _duration(lambda: python_work(n))))


def make_task(call, min_seconds=0.3):
    """One thread's share: the kernel call, then as long in Python, as many times
    as make it last at least `min_seconds` on this machine."""
    call()  # warm up
    seconds = min(_duration(call) for _ in range(3))
    steps = _python_steps_like(seconds)
    rounds = max(2, math.ceil(min_seconds / (2 * seconds)))

    def task():
        for _ in range(rounds):
            call()
            python_work(steps)

    return task


def run_threads(task, n_threads):
    threads = [threading.Thread(target=task) for _ in range(n_threads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def speedup(task, repeat=5):
    """Serial time of two tasks over their time on two threads (median of
    `repeat` alternated runs)."""
    serial, threaded = [], []
    for _ in range(repeat):
        serial.append(_duration(lambda: (task(), task())))
        threaded.append(run_threads(task, 2))
    return statistics.median(serial) / statistics.median(threaded), serial, threaded


def build_name():
    free = sysconfig.get_config_var("Py_GIL_DISABLED") == 1
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return (f"Python {sys.version.split()[0]}, "
            f"{'free-threaded build' if free else 'GIL build'}, GIL {'on' if gil else 'off'}")


@pytest.mark.parametrize("threads", [1, 2], ids=["one thread, task x2", "two threads"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_two_threads(benchmark, name, threads):
    task = make_task(WORKLOADS[name])
    benchmark.group = f"{name}, workers=1, with Python work ({build_name()})"
    if threads == 1:
        benchmark.pedantic(lambda: (task(), task()), rounds=5, warmup_rounds=1)
    else:
        benchmark.pedantic(run_threads, args=(task, 2), rounds=5, warmup_rounds=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("names", nargs="*", default=list(WORKLOADS))
    args = parser.parse_args(argv)
    print(build_name())
    print(f"{'kernel (workers=1) + Python work':34s} {'serial x2':>10s} {'2 threads':>10s}"
          f" {'speed-up':>9s}")
    for name in args.names:
        ratio, serial, threaded = speedup(make_task(WORKLOADS[name]), args.repeat)
        print(f"{name:34s} {statistics.median(serial):9.3f}s {statistics.median(threaded):9.3f}s"
              f" {ratio:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
