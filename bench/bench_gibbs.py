"""Benchmarks of fastkern's Gibbs samplers against what a user would run instead.

The bivariate sampler, one chain of n = 100,000 samples at thin 10 (10**6 steps),
with workers=1, against:
- a Python loop calling a NumPy Generator per draw (target: fastkern >= 40x faster);
- the widely taught Cython sampler that calls numpy.random per draw
  (bench/cython_gibbs.pyx, built here with pyximport as a user would build it);
- the same loop compiled by numba, if numba is installed.
Then two chains on 2 threads against 1 (target: >= 1.7x), and the switchpoint
sampler on the coal-mining disasters against a NumPy loop vectorised over years.

Run:

    python -m pytest bench/bench_gibbs.py --benchmark-only \
        --benchmark-columns=min,median,max,rounds

The speed-ups are printed at the end, as ratios of medians and of the fastest
rounds, with the targets.  Timings on a shared machine are noisy: rerun when the
spread (max / min) of a row is large, or when medians and fastest rounds disagree.
"""
import math
import pathlib
import sys

import numpy as np
import pytest

from fastkern._workers import cpu_count
from fastkern.datasets import coal_mining_disasters
from fastkern.gibbs import gibbs, gibbs_switchpoint

N, THIN = 100_000, 10
SWITCHPOINT_SWEEPS = 20_000
MEDIANS = {}  # benchmark name -> median seconds
MINIMA = {}   # benchmark name -> fastest round, seconds


def _record(benchmark, name):
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS[name] = benchmark.stats.stats.median
        MINIMA[name] = benchmark.stats.stats.min


# ---------------------------------------------------------------------------
# the references

def python_gibbs(n, thin, seed):
    """The common approach: a Python loop, one NumPy call per draw."""
    rng = np.random.default_rng(seed)
    x = y = 0.0
    samples = np.empty((n, 2))
    for i in range(n):
        for _ in range(thin):
            x = rng.gamma(3.0, 1.0 / (y * y + 4))
            y = rng.normal(1.0 / (x + 1), 1.0 / math.sqrt(2 * x + 2))
        samples[i] = x, y
    return samples


@pytest.fixture(scope="module")
def cython_gibbs(tmp_path_factory):
    pyximport = pytest.importorskip("pyximport")
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    importers = pyximport.install(build_dir=str(tmp_path_factory.mktemp("pyxbld")),
                                  language_level=3)
    try:
        import cython_gibbs
    except Exception as exc:  # no C compiler, say
        pytest.skip(f"could not build bench/cython_gibbs.pyx: {exc}")
    finally:
        pyximport.uninstall(*importers)
        sys.path.pop(0)
    return cython_gibbs.gibbs


@pytest.fixture(scope="module")
def numba_gibbs():
    numba = pytest.importorskip("numba")

    @numba.njit
    def sampler(n, thin, seed):
        np.random.seed(seed)  # numba's own generator
        x = 0.0
        y = 0.0
        samples = np.empty((n, 2))
        for i in range(n):
            for _ in range(thin):
                x = np.random.gamma(3.0, 1.0 / (y * y + 4))
                y = np.random.normal(1.0 / (x + 1), 1.0 / math.sqrt(2 * x + 2))
            samples[i, 0] = x
            samples[i, 1] = y
        return samples

    sampler(10, 1, 0)  # compile outside the timings
    return sampler


def numpy_switchpoint(counts, n, burn, seed):
    """The switchpoint sampler as a user would write it in NumPy: one sweep per
    Python iteration, vectorised over the years."""
    rng = np.random.default_rng(seed)
    counts = np.asarray(counts, dtype=np.int64)
    T = counts.size
    k = np.arange(T)
    C = np.concatenate([[0], np.cumsum(counts)])
    s, alpha, beta = T // 2, 1.0, 1.0
    trace = np.empty((n, 3))
    for sweep in range(burn + n):
        early = rng.standard_gamma(alpha + C[s]) / (beta + s)
        late = rng.standard_gamma(alpha + (C[T] - C[s])) / (beta + (T - s))
        log_w = C[:T] * np.log(early) + (C[T] - C[:T]) * np.log(late) - k * early - (T - k) * late
        w = np.cumsum(np.exp(log_w - log_w.max()))
        s = min(int(np.searchsorted(w, rng.random() * w[-1], side="right")), T - 1)
        if sweep >= burn:
            trace[sweep - burn] = s, early, late
    return trace


# ---------------------------------------------------------------------------
# one chain, 10**6 steps

ONE_CHAIN = f"gibbs: 1 chain, n={N:,}, thin={THIN}"


@pytest.mark.benchmark(group=ONE_CHAIN)
def test_fastkern_one_chain(benchmark):
    samples = benchmark(gibbs, N, THIN, seed=1, workers=1)
    assert samples.shape == (1, N, 2)
    _record(benchmark, "fastkern workers=1")


@pytest.mark.benchmark(group=ONE_CHAIN)
def test_reference_python_loop_one_chain(benchmark, run):
    samples = run(lambda: python_gibbs(N, THIN, 1), rounds=3)
    assert samples.shape == (N, 2)
    _record(benchmark, "Python loop, NumPy per draw")


@pytest.mark.benchmark(group=ONE_CHAIN)
def test_cython_per_draw_numpy_one_chain(benchmark, run, cython_gibbs):
    samples = run(lambda: cython_gibbs(N, THIN), rounds=3)
    assert samples.shape == (N, 2)
    _record(benchmark, "Cython, numpy.random per draw")


@pytest.mark.benchmark(group=ONE_CHAIN)
def test_numba_one_chain(benchmark, numba_gibbs):
    samples = benchmark(numba_gibbs, N, THIN, 1)
    assert samples.shape == (N, 2)
    _record(benchmark, "numba")


# ---------------------------------------------------------------------------
# two chains over threads

TWO_CHAINS = f"gibbs: 2 chains, n={N:,}, thin={THIN}"


@pytest.mark.benchmark(group=TWO_CHAINS)
def test_two_chains_reference_1_worker(benchmark):
    samples = benchmark(gibbs, N, THIN, chains=2, seed=1, workers=1)
    assert samples.shape == (2, N, 2)
    _record(benchmark, "2 chains, workers=1")


@pytest.mark.benchmark(group=TWO_CHAINS)
def test_two_chains_2_workers(benchmark):
    samples = benchmark(gibbs, N, THIN, chains=2, seed=1, workers=2)
    assert samples.shape == (2, N, 2)
    _record(benchmark, "2 chains, workers=2")


# ---------------------------------------------------------------------------
# the switchpoint model

SWITCHPOINT = f"gibbs_switchpoint: coal-mining disasters, {SWITCHPOINT_SWEEPS:,} sweeps"


@pytest.mark.benchmark(group=SWITCHPOINT)
def test_switchpoint_fastkern(benchmark):
    counts = coal_mining_disasters().counts
    trace = benchmark(gibbs_switchpoint, counts, SWITCHPOINT_SWEEPS, burn=100, seed=1,
                      workers=1)
    assert abs(trace["early_rate"].mean() - 3.07) < 0.1
    _record(benchmark, "switchpoint fastkern workers=1")


@pytest.mark.benchmark(group=SWITCHPOINT)
def test_switchpoint_reference_numpy_loop(benchmark, run):
    counts = coal_mining_disasters().counts
    trace = run(lambda: numpy_switchpoint(counts, SWITCHPOINT_SWEEPS, 100, 1), rounds=3)
    assert abs(trace[:, 1].mean() - 3.07) < 0.1
    _record(benchmark, "switchpoint NumPy loop")


# ---------------------------------------------------------------------------
# the targets

TARGETS = [  # (faster, slower, at least this many times faster)
    ("fastkern workers=1", "Python loop, NumPy per draw", 40.0),
    ("fastkern workers=1", "Cython, numpy.random per draw", None),
    ("fastkern workers=1", "numba", None),
    ("2 chains, workers=2", "2 chains, workers=1", 1.7),
    ("switchpoint fastkern workers=1", "switchpoint NumPy loop", None),
]


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """After the benchmarks: each comparison as a ratio of medians and of the
    fastest rounds, and whether the targets are met."""
    yield
    lines = ["", "gibbs: speed-ups, this run (medians; fastest rounds)"]
    for fast, slow, target in TARGETS:
        if fast in MEDIANS and slow in MEDIANS:
            line = (f"  {fast} vs {slow}: {MEDIANS[slow] / MEDIANS[fast]:6.2f}x "
                    f"({MEDIANS[slow] * 1e3:.1f} / {MEDIANS[fast] * 1e3:.1f} ms); "
                    f"{MINIMA[slow] / MINIMA[fast]:6.2f}x")
            if target is not None:
                met = MEDIANS[slow] / MEDIANS[fast] >= target
                line += f"  (target >= {target}x: {'met' if met else 'NOT met'})"
            lines.append(line)
    if cpu_count() < 2:
        lines.append("  (one CPU here: the 2-worker target does not apply)")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and len(lines) > 2:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)
