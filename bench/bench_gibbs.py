"""Benchmarks of fastkern's Gibbs samplers against what a user would run instead.

    python -m pytest bench/bench_gibbs.py

The bivariate sampler, one chain of n = 100,000 samples at thin 10 (10**6 steps),
with workers=1, against:
- a Python loop calling a NumPy Generator per draw (target: fastkern >= 40x faster);
- the widely taught Cython sampler that calls numpy.random per draw
  (bench/cython_gibbs.pyx, built here with pyximport as a user would build it);
- the same loop compiled by numba, if numba is installed.
Then two chains on 2 threads against 1 (target: >= 1.7x), and the switchpoint
sampler on the coal-mining disasters against a NumPy loop vectorised over years.

The last test reports the medians' ratios and checks the targets.  Timings on a
shared machine are noisy: read medians, and rerun when the spread is wide.
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


def _record(benchmark, name):
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS[name] = benchmark.stats.stats.median


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

@pytest.mark.benchmark(group="gibbs: 1 chain, n=100000, thin=10")
def test_fastkern_one_chain(benchmark):
    samples = benchmark(gibbs, N, THIN, seed=1, workers=1)
    assert samples.shape == (1, N, 2)
    _record(benchmark, "fastkern")


@pytest.mark.benchmark(group="gibbs: 1 chain, n=100000, thin=10")
def test_python_loop_one_chain(benchmark):
    samples = benchmark.pedantic(python_gibbs, args=(N, THIN, 1), rounds=3, iterations=1)
    assert samples.shape == (N, 2)
    _record(benchmark, "python loop")


@pytest.mark.benchmark(group="gibbs: 1 chain, n=100000, thin=10")
def test_cython_per_draw_numpy_one_chain(benchmark, cython_gibbs):
    samples = benchmark.pedantic(cython_gibbs, args=(N, THIN), rounds=3, iterations=1)
    assert samples.shape == (N, 2)
    _record(benchmark, "cython")


@pytest.mark.benchmark(group="gibbs: 1 chain, n=100000, thin=10")
def test_numba_one_chain(benchmark, numba_gibbs):
    samples = benchmark(numba_gibbs, N, THIN, 1)
    assert samples.shape == (N, 2)
    _record(benchmark, "numba")


# ---------------------------------------------------------------------------
# two chains over threads

@pytest.mark.benchmark(group="gibbs: 2 chains, n=100000, thin=10")
@pytest.mark.parametrize("workers", [1, 2])
def test_fastkern_two_chains(benchmark, workers):
    samples = benchmark(gibbs, N, THIN, chains=2, seed=1, workers=workers)
    assert samples.shape == (2, N, 2)
    _record(benchmark, f"two chains, {workers} worker(s)")


# ---------------------------------------------------------------------------
# the switchpoint model

@pytest.mark.benchmark(group="switchpoint: coal-mining disasters, 20000 sweeps")
def test_fastkern_switchpoint(benchmark):
    counts = coal_mining_disasters().counts
    trace = benchmark(gibbs_switchpoint, counts, SWITCHPOINT_SWEEPS, burn=100, seed=1,
                      workers=1)
    assert abs(trace["early_rate"].mean() - 3.07) < 0.1
    _record(benchmark, "fastkern switchpoint")


@pytest.mark.benchmark(group="switchpoint: coal-mining disasters, 20000 sweeps")
def test_numpy_switchpoint(benchmark):
    counts = coal_mining_disasters().counts
    trace = benchmark.pedantic(numpy_switchpoint, args=(counts, SWITCHPOINT_SWEEPS, 100, 1),
                               rounds=3, iterations=1)
    assert abs(trace[:, 1].mean() - 3.07) < 0.1
    _record(benchmark, "numpy switchpoint")


# ---------------------------------------------------------------------------

def test_speed_targets(request):
    """Report the ratios of the medians above and check the speed targets."""
    if "fastkern" not in MEDIANS:
        pytest.skip("benchmarks disabled or not run")
    write = request.config.pluginmanager.get_plugin("terminalreporter").write_line
    fk = MEDIANS["fastkern"]
    write("")
    write(f"gibbs, 1 chain, n={N}, thin={THIN}: fastkern workers=1 median {fk * 1e3:.1f} ms")
    for name in ("python loop", "cython", "numba"):
        if name in MEDIANS:
            write(f"  {name:<12} median {MEDIANS[name] * 1e3:9.1f} ms: fastkern "
                  f"{MEDIANS[name] / fk:6.1f}x faster")
    t1, t2 = MEDIANS["two chains, 1 worker(s)"], MEDIANS["two chains, 2 worker(s)"]
    write(f"gibbs, 2 chains: 2 workers {t1 / t2:.2f}x faster than 1 "
          f"({t1 * 1e3:.1f} ms -> {t2 * 1e3:.1f} ms)")
    if "numpy switchpoint" in MEDIANS:
        write(f"switchpoint, {SWITCHPOINT_SWEEPS} sweeps: fastkern "
              f"{MEDIANS['numpy switchpoint'] / MEDIANS['fastkern switchpoint']:.1f}x "
              "faster than the NumPy loop")

    assert MEDIANS["python loop"] / fk >= 40, "target: >= 40x faster than the Python loop"
    if cpu_count() >= 2:
        assert t1 / t2 >= 1.7, "target: 2 chains on 2 workers >= 1.7x faster than on 1"
