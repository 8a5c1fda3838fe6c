"""fastkern.permutation_test against scipy.stats.permutation_test, in the same session.

Workloads (issue 16):

- two samples of 10,000 normal values, 9,999 permutations, difference of means
  ("independent"): fastkern with workers=1 and workers=2, scipy with a vectorised
  statistic (its default batch: all permutations at once);
- Pearson's r of 10,000 pairs, 9,999 permutations ("pairings");
- the paired test: mean difference of 10,000 pairs, 9,999 permutations ("samples").

Run:

    python -m pytest bench/bench_permutation.py --benchmark-only \\
        --benchmark-group-by=group --benchmark-columns=min,median,max,rounds

or, as a table of medians with the contenders alternated (steadier on a shared
machine):

    python bench/bench_permutation.py [rounds]

The targets are printed at the end with the measured ratios of medians: the
difference of means at least 30x scipy at one thread and 1.8x more on two;
pearsonr pairings and the paired test at least 20x scipy.
"""
import sys

import numpy as np
import pytest
import scipy.stats

from fastkern import permutation_test

N = 10_000
N_RESAMPLES = 9_999
_RNG = np.random.default_rng(0)
X = _RNG.normal(0.0, 1.0, N)
Y = _RNG.normal(0.02, 1.0, N)
PAIRED_Y = X + _RNG.normal(0.01, 0.5, N)


def _mean_diff(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _pearsonr(x, y, axis):
    return scipy.stats.pearsonr(x, y, axis=axis).statistic


# workload -> (data, fastkern statistic, scipy statistic, permutation_type)
WORKLOADS = {
    "mean_diff": ((X, Y), "mean_diff", _mean_diff, "independent"),
    "pearsonr": ((X, PAIRED_Y), "pearsonr", _pearsonr, "pairings"),
    "paired": ((X, PAIRED_Y), "mean_diff", _mean_diff, "samples"),
}
TARGETS = [  # (workload, faster, slower, at least this many times faster)
    ("mean_diff", "fastkern workers=1", "scipy", 30.0),
    ("mean_diff", "fastkern workers=2", "fastkern workers=1", 1.8),
    ("pearsonr", "fastkern workers=1", "scipy", 20.0),
    ("paired", "fastkern workers=1", "scipy", 20.0),
]

_medians = {}   # (workload, contender) -> median seconds


def run_fastkern(workload, workers):
    data, statistic, _, permutation_type = WORKLOADS[workload]
    return permutation_test(data, statistic, permutation_type=permutation_type,
                            n_resamples=N_RESAMPLES, seed=0, workers=workers).pvalue


def run_scipy(workload):
    data, _, statistic, permutation_type = WORKLOADS[workload]
    return scipy.stats.permutation_test(data, statistic, permutation_type=permutation_type,
                                        n_resamples=N_RESAMPLES, vectorized=True,
                                        rng=0).pvalue


def _verdicts(medians):
    lines = ["permutation_test targets (ratios of median times, this run):"]
    for workload, fast, slow, target in TARGETS:
        if (workload, fast) in medians and (workload, slow) in medians:
            ratio = medians[workload, slow] / medians[workload, fast]
            verdict = "met" if ratio >= target else "NOT met"
            lines.append(f"  {workload:<9} {fast} vs {slow}: {ratio:6.2f}x "
                         f"(target >= {target}x: {verdict})")
    return lines


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in ["", *_verdicts(_medians)]:
                reporter.write_line(line)


def _run(benchmark, workload, contender, fn, *args, rounds):
    benchmark.group = f"permutation_test {workload}: n={N:,}, {N_RESAMPLES:,} permutations"
    benchmark.extra_info["contender"] = contender
    p = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1,
                           warmup_rounds=1 if rounds > 3 else 0)
    _medians[workload, contender] = benchmark.stats.stats.median
    assert 0 < p <= 1


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("workers", [1, 2])
def test_fastkern(benchmark, workload, workers):
    _run(benchmark, workload, f"fastkern workers={workers}", run_fastkern, workload, workers,
         rounds=7)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_scipy(benchmark, workload):
    _run(benchmark, workload, "scipy", run_scipy, workload, rounds=3)


def main(rounds=5):
    """The table: each workload's contenders alternated (bench/alternate.py)."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from alternate import alternated

    medians = {}
    print(f"{'workload':<10} {'scipy':>10} {'workers=1':>10} {'workers=2':>10} "
          f"{'scipy/w1':>9} {'w1/w2':>6}")
    for workload in WORKLOADS:
        calls = {"scipy": lambda w=workload: run_scipy(w),
                 "fastkern workers=1": lambda w=workload: run_fastkern(w, 1),
                 "fastkern workers=2": lambda w=workload: run_fastkern(w, 2)}
        times = alternated(calls, rounds)
        for name, t in times.items():
            medians[workload, name] = t
        s, one, two = (times[k] for k in calls)
        print(f"{workload:<10} {s:9.3f}s {one:9.4f}s {two:9.4f}s {s / one:8.1f}x "
              f"{one / two:5.2f}x", flush=True)
    print("\n".join(_verdicts(medians)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
