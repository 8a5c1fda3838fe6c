"""Every kernel hammered from 8 Python threads at once: each result must equal the
serial one.  On free-threaded CPython this runs truly in parallel; elsewhere the
kernels still overlap outside the GIL."""
import concurrent.futures

import numpy as np
import pytest

import fastkern

N_THREADS = 8
ROUNDS = 4


def _convolve_cases():
    rng = np.random.default_rng(0)
    cases = []
    for i, dtype in enumerate([np.float32, np.float64, np.complex128, np.int32]):
        a = (rng.standard_normal((150 + i, 170)) * 10).astype(dtype)
        b = (rng.standard_normal((5, 4)) * 10).astype(dtype)
        cases.append(lambda a=a, b=b: fastkern.convolve2d(a, b, "same", "symm", workers=2))
        cases.append(lambda a=a, b=b: fastkern.correlate2d(a, b, stride=(2, 3), workers=1))
    return cases


def _bootstrap_cases():
    rng = np.random.default_rng(1)
    x = rng.poisson(4.0, size=3000).astype(float)
    y = x + rng.normal(size=3000)
    cases = []
    for statistic, kwargs in [("mean", {}), ("median", {"method": "percentile"}),
                              ("trimmed_mean", {"proportiontocut": 0.1}),
                              ("quantile", {"q": 0.25, "method": "basic"})]:
        cases.append(lambda s=statistic, kw=kwargs: fastkern.bootstrap(
            x, s, n_resamples=300, seed=3, workers=2, **kw).bootstrap_distribution)
    cases.append(lambda: fastkern.bootstrap((x, y), "pearsonr", paired=True, n_resamples=300,
                                            seed=4, workers=1).confidence_interval)
    return cases


def _permutation_cases():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=2000), rng.normal(size=1500)
    cases = [lambda s=statistic, t=kind: fastkern.permutation_test(
                 (x, y) if t == "independent" else (x[:1500], y), s, permutation_type=t,
                 n_resamples=300, seed=3, workers=2).null_distribution
             for kind, statistic in [("independent", "mean_diff"), ("independent", "t"),
                                     ("independent", "median_diff"), ("pairings", "spearmanr"),
                                     ("samples", "mean_diff")]]
    cases.append(lambda: fastkern.permutation_test(
        (x, y), lambda a, b, axis: np.max(a, axis=axis) - np.max(b, axis=axis),
        n_resamples=200, seed=4, workers=1).null_distribution)
    return cases


def _gibbs_cases():
    years, counts = fastkern.datasets.coal_mining_disasters()
    return [lambda: fastkern.gibbs(2000, 2, chains=3, seed=5, workers=2),
            lambda: fastkern.gibbs_switchpoint(counts, 500, chains=2, seed=6, workers=1)]


def _attention_cases():
    from fastkern.attention import (SparseCSR, local_2d_pattern, sparse_attention,
                                    sparse_attention_backward)

    rng = np.random.default_rng(7)
    mask = SparseCSR.from_dense(local_2d_pattern(12, 12, 2))
    q, k, v, g = (rng.standard_normal((2, 144, 16)) for _ in range(4))
    return [lambda: sparse_attention(q, k, v, mask, workers=2),
            lambda: sparse_attention_backward(q, k, v, mask, g, workers=1),
            lambda: sparse_attention(q.astype(np.float32), k.astype(np.float32),
                                     v.astype(np.float32), mask, workers=1)]


def _locate_cases():
    data = fastkern.datasets.synthetic_events(20, 12, shape=(25, 25, 8), noise=0.2,
                                              missing=0.1, seed=8)
    args = (data.amplitudes, data.stations, data.x, data.y, data.z)
    return [lambda: fastkern.locate_events(*args, data.a, attenuation=data.attenuation,
                                           workers=2).error,
            lambda: fastkern.locate_events(*args, None, attenuation=data.attenuation,
                                           workers=1).amplitude]


KERNELS = {"convolve": _convolve_cases, "bootstrap": _bootstrap_cases,
           "permutation": _permutation_cases, "gibbs": _gibbs_cases,
           "attention": _attention_cases, "locate": _locate_cases}


def _assert_same(got, want):
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            _assert_same(got[key], want[key])
    elif isinstance(want, (tuple, list)):
        for g, w in zip(got, want):
            _assert_same(g, w)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("topic", sorted(KERNELS))
def test_eight_threads_match_serial(topic):
    cases = KERNELS[topic]()
    serial = [case() for case in cases]
    jobs = [(i, case) for _ in range(ROUNDS) for i, case in enumerate(cases)]
    with concurrent.futures.ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(lambda job: (job[0], job[1]()), jobs))
    for i, result in results:
        _assert_same(result, serial[i])


def test_set_workers_is_per_thread():
    seen = {}

    def worker(n):
        with fastkern.set_workers(n):
            seen[n] = fastkern.get_workers()

    with fastkern.set_workers(1):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(worker, [2, 3]))
        assert fastkern.get_workers() == 1
    if fastkern.show_config(mode="dicts")["openmp"]["enabled"]:
        assert seen == {2: 2, 3: 3}
