"""fastkern.bootstrap against what users run instead, in the same session.

Workload: n = 100,000 Poisson(4) counts, 1,000 resamples, a 95% percentile
interval of the mean and of the median.  Contenders:

- fastkern.bootstrap with workers=1 and workers=2;
- scipy.stats.bootstrap (vectorised statistic, one batch: its default);
- the hand-written loop: np.random.randint indices and a list comprehension;
- the same loop split over a multiprocessing.Pool (map_async), one process per
  CPU, four chunks per process (the pool is started once, outside the timing);
- the NumPy-vectorised version: x[rng.integers(0, n, size=(100, n))] and the
  statistic along axis 1, 100 resamples (80 MB of indices) at a time.

Run:

    python -m pytest bench/bench_bootstrap.py --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,max,rounds

The targets (issue 3) are printed at the end with the measured ratios of medians:
workers=1 at least 10x faster than scipy for the mean and the median, and
workers=2 at least 1.6x faster than workers=1.  On a shared machine, rerun when
the spread (max / min) of a row is large.
"""
import multiprocessing
import os

import numpy as np
import pytest
import scipy.stats

from fastkern.bootstrap import bootstrap
from fastkern._workers import cpu_count

N = 100_000
N_RESAMPLES = 1_000
X = np.random.default_rng(0).poisson(4.0, size=N).astype(np.float64)
STATISTICS = {"mean": np.mean, "median": np.median}
VECTORISED_BATCH = 100
TARGETS = [  # (statistic, faster, slower, at least this many times faster)
    ("mean", "fastkern workers=1", "scipy.stats.bootstrap", 10.0),
    ("median", "fastkern workers=1", "scipy.stats.bootstrap", 10.0),
    ("mean", "fastkern workers=2", "fastkern workers=1", 1.6),
    ("median", "fastkern workers=2", "fastkern workers=1", 1.6),
]

_medians = {}   # (statistic, contender) -> median seconds


def _percentile_ci(dist):
    return tuple(np.percentile(dist, [2.5, 97.5]))


def fastkern_ci(statistic, workers):
    res = bootstrap(X, statistic, n_resamples=N_RESAMPLES, method="percentile", seed=0,
                    workers=workers)
    return tuple(res.confidence_interval)


def scipy_ci(statistic):
    res = scipy.stats.bootstrap((X,), STATISTICS[statistic], n_resamples=N_RESAMPLES,
                                method="percentile", rng=0)
    return tuple(res.confidence_interval)


def _loop(statistic, seed, count):
    np.random.seed(seed)
    f = STATISTICS[statistic]
    return [f(X[np.random.randint(0, N, size=N)]) for _ in range(count)]


def loop_ci(statistic):
    return _percentile_ci(_loop(statistic, 0, N_RESAMPLES))


def _loop_chunk(args):
    return _loop(*args)


def pool_ci(pool, n_processes, statistic):
    n_chunks = 4 * n_processes
    sizes = [len(c) for c in np.array_split(np.arange(N_RESAMPLES), n_chunks)]
    chunks = [(statistic, seed, size) for seed, size in enumerate(sizes)]
    dist = np.concatenate(pool.map_async(_loop_chunk, chunks).get())
    return _percentile_ci(dist)


def vectorised_ci(statistic):
    rng = np.random.default_rng(0)
    f = STATISTICS[statistic]
    dist = np.concatenate([f(X[rng.integers(0, N, size=(VECTORISED_BATCH, N))], axis=1)
                           for _ in range(N_RESAMPLES // VECTORISED_BATCH)])
    return _percentile_ci(dist)


@pytest.fixture(scope="module")
def pool():
    n_processes = cpu_count()
    # fork: the workers inherit X, as a hand-written script's workers would
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with context.Pool(n_processes) as p:
        p.map(abs, range(n_processes))  # start every worker before timing
        yield p, n_processes


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "bootstrap targets (ratios of median times, this run):"]
    for statistic, fast, slow, target in TARGETS:
        if (statistic, fast) in _medians and (statistic, slow) in _medians:
            ratio = _medians[statistic, slow] / _medians[statistic, fast]
            verdict = "met" if ratio >= target else "NOT met"
            lines.append(f"  {statistic:<7} {fast} vs {slow}: {ratio:6.2f}x "
                         f"(target >= {target}x: {verdict})")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)


def _run(benchmark, statistic, contender, fn, *args, rounds, group=""):
    benchmark.group = f"bootstrap {statistic}: n={N:,}, {N_RESAMPLES:,} resamples{group}"
    benchmark.extra_info["contender"] = contender
    low, high = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1,
                                   warmup_rounds=1 if rounds > 3 else 0)
    _medians[statistic, contender] = benchmark.stats.stats.median
    # every contender estimates the same interval
    assert low < STATISTICS[statistic](X) + 0.1 and high > STATISTICS[statistic](X) - 0.1


@pytest.mark.parametrize("statistic", STATISTICS)
@pytest.mark.parametrize("workers", [1, 2])
def test_fastkern(benchmark, statistic, workers):
    _run(benchmark, statistic, f"fastkern workers={workers}", fastkern_ci, statistic,
         workers, rounds=7)


@pytest.mark.parametrize("statistic", STATISTICS)
def test_scipy(benchmark, statistic):
    _run(benchmark, statistic, "scipy.stats.bootstrap", scipy_ci, statistic, rounds=3)


@pytest.mark.parametrize("statistic", STATISTICS)
def test_hand_written_loop(benchmark, statistic):
    _run(benchmark, statistic, "randint loop", loop_ci, statistic, rounds=3)


@pytest.mark.parametrize("statistic", STATISTICS)
def test_multiprocessing_pool(benchmark, pool, statistic):
    p, n_processes = pool
    _run(benchmark, statistic, f"randint loop, Pool({n_processes}).map_async", pool_ci, p,
         n_processes, statistic, rounds=3)


@pytest.mark.parametrize("statistic", STATISTICS)
def test_numpy_vectorised(benchmark, statistic):
    _run(benchmark, statistic, "NumPy vectorised", vectorised_ci, statistic, rounds=3)
