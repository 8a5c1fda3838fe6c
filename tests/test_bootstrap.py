"""fastkern.bootstrap against scipy.stats.bootstrap and plain NumPy loops."""
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastkern import _bootstrap, _interrupt
from fastkern.bootstrap import (BLOCK_SIZE, BootstrapResult, ConfidenceInterval,
                                DegenerateDataWarning, bootstrap)

RNG = np.random.default_rng(20240611)
COUNTS = RNG.poisson(4.0, size=200).astype(np.float64)       # many ties
NORMAL = RNG.normal(size=150)
PARTNER = 0.5 * NORMAL + RNG.normal(size=150)                   # paired with NORMAL
OTHER = RNG.normal(1.0, 2.0, size=170)                          # unpaired second sample


def _mean_diff(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _pearsonr(x, y, axis):
    return scipy.stats.pearsonr(x, y, axis=axis).statistic


# id -> (data, fastkern statistic and options, the same statistic for scipy, paired)
CASES = {
    "mean-counts": (COUNTS, "mean", {}, lambda x, axis: np.mean(x, axis=axis), False),
    "mean-normal": (NORMAL, "mean", {}, lambda x, axis: np.mean(x, axis=axis), False),
    "median-counts": (COUNTS, "median", {}, lambda x, axis: np.median(x, axis=axis), False),
    "median-even": (NORMAL, "median", {}, lambda x, axis: np.median(x, axis=axis), False),
    "median-odd": (NORMAL[:-1], "median", {}, lambda x, axis: np.median(x, axis=axis), False),
    "quantile-0.3": (NORMAL, "quantile", {"q": 0.3},
                     lambda x, axis: np.quantile(x, 0.3, axis=axis), False),
    "quantile-counts": (COUNTS, "quantile", {"q": 0.73},
                        lambda x, axis: np.quantile(x, 0.73, axis=axis), False),
    "quantile-1": (NORMAL, "quantile", {"q": 1.0},
                   lambda x, axis: np.quantile(x, 1.0, axis=axis), False),
    "var-ddof1": (NORMAL, "var", {"ddof": 1}, lambda x, axis: np.var(x, ddof=1, axis=axis),
                  False),
    "std-ddof0": (NORMAL, "std", {"ddof": 0}, lambda x, axis: np.std(x, ddof=0, axis=axis),
                  False),
    "trimmed-counts": (COUNTS, "trimmed_mean", {"proportiontocut": 0.1},
                       lambda x, axis: scipy.stats.trim_mean(x, 0.1, axis=axis), False),
    "trimmed-normal": (NORMAL, "trimmed_mean", {"proportiontocut": 0.25},
                       lambda x, axis: scipy.stats.trim_mean(x, 0.25, axis=axis), False),
    "mean_diff-paired": ((NORMAL, PARTNER), "mean_diff", {}, _mean_diff, True),
    "mean_diff-unpaired": ((NORMAL, OTHER), "mean_diff", {}, _mean_diff, False),
    "pearsonr": ((NORMAL, PARTNER), "pearsonr", {}, _pearsonr, True),
    "callable-max": (NORMAL, lambda x, axis: np.max(x, axis=axis) - np.min(x, axis=axis), {},
                     lambda x, axis: np.max(x, axis=axis) - np.min(x, axis=axis), False),
    "callable-two": ((NORMAL, OTHER), _mean_diff, {}, _mean_diff, False),
}
METHODS = ["percentile", "basic", "BCa"]
ALTERNATIVES = ["two-sided", "less", "greater"]


def _samples(data):
    return data if isinstance(data, tuple) else (data,)


def _numpy_block(case, seed, n_resamples, block):
    """The statistic of every resample of one block, by a plain NumPy loop over the
    documented stream."""
    data, _, _, scipy_stat, paired = CASES[case]
    samples = _samples(data)
    n_blocks = -(-n_resamples // BLOCK_SIZE)
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    rng = np.random.Generator(np.random.PCG64(children[block]))
    out = []
    for _ in range(min(BLOCK_SIZE, n_resamples - block * BLOCK_SIZE)):
        if paired:
            i = rng.integers(0, samples[0].size, size=samples[0].size)
            resample = [s[i] for s in samples]
        else:
            resample = [s[rng.integers(0, s.size, size=s.size)] for s in samples]
        out.append(scipy_stat(*resample, axis=-1))
    return np.array(out)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES)
def test_interval_equals_scipy_on_the_same_distribution(case, method, alternative):
    data, statistic, options, scipy_stat, paired = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate BCa: NaN in both
        res = bootstrap(data, statistic, n_resamples=999, method=method,
                        alternative=alternative, paired=paired, seed=3, **options)
        ref = scipy.stats.bootstrap(_samples(data), scipy_stat, n_resamples=0,
                                    bootstrap_result=res, method=method,
                                    alternative=alternative, paired=paired,
                                    vectorized=True)
    np.testing.assert_allclose(res.confidence_interval, ref.confidence_interval,
                               rtol=0, atol=1e-9)
    assert res.standard_error == pytest.approx(ref.standard_error, rel=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_one_block_is_reproduced_by_a_numpy_loop(case):
    data, statistic, options, _, paired = CASES[case]
    n_resamples = 3 * BLOCK_SIZE - 5          # the last block is short
    res = bootstrap(data, statistic, n_resamples=n_resamples, method="percentile",
                    paired=paired, seed=11, **options)
    for block in (1, 2):
        expected = _numpy_block(case, 11, n_resamples, block)
        got = res.bootstrap_distribution[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]
        if case.endswith("counts") or statistic in ("median", "quantile"):
            np.testing.assert_array_equal(got, expected)  # exact: order statistics, integers
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# Large samples: many chunks per resample, in the kernels' pipelined loop, and
# draws rejected by Lemire's method (some 20 per resample at n = 300,007) that
# shift the stream by a 32-bit half.
LARGE = np.random.default_rng(7).poisson(50.0, size=300_007).astype(np.float64)
LARGE_Y = np.random.default_rng(8).poisson(20.0, size=200_003).astype(np.float64)


@pytest.mark.parametrize("statistic, data, options, numpy_stat, exact", [
    ("mean", LARGE, {}, np.mean, True),                       # integers: exact sums
    ("mean", LARGE.astype(np.float32), {}, np.mean, False),
    ("var", LARGE, {"ddof": 1}, lambda x: np.var(x, ddof=1), False),
    ("std", LARGE.astype(np.float32), {"ddof": 0}, np.std, False),
    ("median", LARGE, {}, np.median, True),
    ("quantile", LARGE, {"q": 0.9}, lambda x: np.quantile(x, 0.9), True),
    ("mean_diff", (LARGE, LARGE_Y), {}, None, True),
])
def test_large_sample_block_is_reproduced_by_a_numpy_loop(statistic, data, options,
                                                          numpy_stat, exact):
    samples = data if isinstance(data, tuple) else (data,)
    res = bootstrap(data, statistic, n_resamples=BLOCK_SIZE + 3, method="percentile",
                    seed=21, workers=2, **options)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(21).spawn(2)[1]))
    expected = []
    for _ in range(3):
        resample = [s[rng.integers(0, s.size, size=s.size)] for s in samples]
        if statistic == "mean_diff":
            expected.append(np.mean(resample[0]) - np.mean(resample[1]))
        else:
            expected.append(numpy_stat(resample[0]))
    got = res.bootstrap_distribution[BLOCK_SIZE:]
    if exact:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12 if data.dtype == np.float64
                                   else 1e-6)


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("spare", [False, True])
def test_inline_pcg64_is_numpys_stream(portable, spare):
    """The kernels' C copy of PCG64 (both forms of its 128-bit arithmetic) continues a
    NumPy PCG64 exactly, with or without a spare 32-bit half in its state."""
    for seed in [0, 1, 2**40 + 3, 12345678901234567890]:
        bit_generator = np.random.PCG64(np.random.SeedSequence(seed))
        if spare:
            np.random.Generator(bit_generator).integers(0, 7, size=3, dtype=np.uint32)
            assert bit_generator.state["has_uint32"]
        got = _bootstrap._pcg64_raw(bit_generator, 1000, portable)
        np.testing.assert_array_equal(got, bit_generator.random_raw(1000))


# Bounds around the switch from 32-bit to 64-bit draws, with many rejections
# (2**32 - 2, 3e9) and few (100,000).
INTEGER_BOUNDS = [1, 2, 3, 1000, 100_000, 2**31 + 1, 3_000_000_000, 2**32 - 2, 2**32 - 1,
                  2**32, 2**32 + 1, 2**40 + 5, 2**63 + 12345, 2**64 - 1]


@pytest.fixture(params=["avx512", "portable"])
def products(request):
    """Both copies of the bounded draws' multiplies: AVX-512 (where this build and
    CPU have it, else the portable loop again) and the portable loop."""
    before = _bootstrap._pcg64_use_avx512()
    _bootstrap._pcg64_use_avx512(request.param == "avx512")
    yield request.param
    _bootstrap._pcg64_use_avx512(before)


@pytest.mark.parametrize("n", INTEGER_BOUNDS)
def test_inline_integers_are_generator_integers(n, products):
    """fk_pcg64_integers gives Generator.integers(0, n, size) and leaves the stream
    where NumPy leaves it, for counts around its chunk size and any spare."""
    for count in [0, 1, 2, 3, 5, 16, 17, 255, 256, 257, 1001]:
        for spare_draws in [0, 1, 2]:
            bit_generator = np.random.PCG64(np.random.SeedSequence([n % 2**64, count]))
            rng = np.random.Generator(bit_generator)
            rng.integers(0, 5, size=spare_draws, dtype=np.uint32)   # odd: a spare half
            got, state = _bootstrap._pcg64_integers(bit_generator, n, count)
            expected = rng.integers(0, n, size=count, dtype=np.uint64)
            np.testing.assert_array_equal(got, expected)
            after = bit_generator.state
            assert state["state"] == after["state"]["state"]
            assert state["has_uint32"] == after["has_uint32"]
            if state["has_uint32"]:
                assert state["uinteger"] == after["uinteger"]


@pytest.mark.parametrize("case", ["mean-counts", "median-even", "trimmed-normal", "std-ddof0",
                                  "mean_diff-unpaired", "pearsonr"])
def test_spread_matches_scipys_own_bootstrap(case):
    data, statistic, options, scipy_stat, paired = CASES[case]
    res = bootstrap(data, statistic, n_resamples=4000, method="percentile", paired=paired,
                    seed=5, **options)
    ref = scipy.stats.bootstrap(_samples(data), scipy_stat, n_resamples=4000,
                                method="percentile", paired=paired, vectorized=True, rng=6)
    # two independent estimates of one standard error: about 1.6% apart each
    assert res.standard_error == pytest.approx(ref.standard_error, rel=0.1)
    assert np.median(res.bootstrap_distribution) == pytest.approx(
        np.median(ref.bootstrap_distribution), abs=0.2 * ref.standard_error)


@pytest.mark.parametrize("case", ["mean-normal", "median-counts", "quantile-0.3",
                                  "pearsonr", "mean_diff-unpaired", "callable-two"])
def test_result_does_not_depend_on_workers(case):
    data, statistic, options, _, paired = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # BCa of a median of counts
        results = [bootstrap(data, statistic, n_resamples=700, paired=paired, seed=8,
                             workers=w, **options) for w in (1, 2, 3, -1)]
    for res in results[1:]:
        np.testing.assert_array_equal(res.bootstrap_distribution,
                                      results[0].bootstrap_distribution)
        np.testing.assert_array_equal(res.confidence_interval,
                                      results[0].confidence_interval)


def test_callable_sees_the_same_resamples_as_the_builtin():
    builtin = bootstrap((NORMAL, OTHER), "mean_diff", n_resamples=300, seed=4)
    for batch in (None, 1, 7, 1000):
        res = bootstrap((NORMAL, OTHER), _mean_diff, n_resamples=300, seed=4, batch=batch)
        np.testing.assert_allclose(res.bootstrap_distribution,
                                   builtin.bootstrap_distribution, rtol=1e-13)
        np.testing.assert_allclose(res.confidence_interval, builtin.confidence_interval,
                                   rtol=1e-12)
    paired = bootstrap((NORMAL, PARTNER), _pearsonr, n_resamples=300, seed=4, paired=True,
                       batch=50)
    builtin = bootstrap((NORMAL, PARTNER), "pearsonr", n_resamples=300, seed=4, paired=True)
    np.testing.assert_allclose(paired.bootstrap_distribution, builtin.bootstrap_distribution,
                               rtol=1e-12)


def test_seed_kinds():
    by_int = bootstrap(NORMAL, n_resamples=200, seed=9).bootstrap_distribution
    ss = np.random.SeedSequence(9)
    by_ss = bootstrap(NORMAL, n_resamples=200, seed=ss).bootstrap_distribution
    np.testing.assert_array_equal(by_int, by_ss)
    assert ss.n_children_spawned == 0                     # the caller's object is untouched
    np.testing.assert_array_equal(
        by_ss, bootstrap(NORMAL, n_resamples=200, seed=ss).bootstrap_distribution)

    gen = np.random.default_rng(1)
    first = bootstrap(NORMAL, n_resamples=200, seed=gen).bootstrap_distribution
    second = bootstrap(NORMAL, n_resamples=200, seed=gen).bootstrap_distribution
    assert not np.array_equal(first, second)               # the generator moved on
    words = np.random.default_rng(1).integers(0, 2**64, size=4, dtype=np.uint64).tolist()
    by_words = bootstrap(NORMAL, n_resamples=200, seed=np.random.SeedSequence(words))
    np.testing.assert_array_equal(first, by_words.bootstrap_distribution)

    a = bootstrap(NORMAL, n_resamples=200).bootstrap_distribution
    b = bootstrap(NORMAL, n_resamples=200).bootstrap_distribution
    assert not np.array_equal(a, b)


def test_result_fields_and_reuse():
    res = bootstrap(NORMAL, "std", n_resamples=500, seed=2)
    assert isinstance(res, BootstrapResult)
    assert isinstance(res.confidence_interval, ConfidenceInterval)
    low, high = res.confidence_interval
    assert low < np.std(NORMAL, ddof=1) < high
    assert res.bootstrap_distribution.shape == (500,)
    assert res.bootstrap_distribution.dtype == np.float64
    assert res.standard_error == np.std(res.bootstrap_distribution, ddof=1)

    # n_resamples=0 with a previous result: a new interval, no new resamples
    again = bootstrap(NORMAL, "std", n_resamples=0, bootstrap_result=res,
                      method="percentile", confidence_level=0.9)
    np.testing.assert_array_equal(again.bootstrap_distribution, res.bootstrap_distribution)
    fresh = bootstrap(NORMAL, "std", n_resamples=500, seed=2, method="percentile",
                      confidence_level=0.9)
    assert again.confidence_interval == fresh.confidence_interval

    more = bootstrap(NORMAL, "std", n_resamples=100, bootstrap_result=res, seed=3)
    assert more.bootstrap_distribution.shape == (600,)
    np.testing.assert_array_equal(more.bootstrap_distribution[:500],
                                  res.bootstrap_distribution)


def test_degenerate_bca_is_nan_with_a_warning():
    constant = np.full(30, 2.5)
    with pytest.warns(DegenerateDataWarning):
        res = bootstrap(constant, "mean", n_resamples=100, seed=0)
    assert np.isnan(res.confidence_interval.low) and np.isnan(res.confidence_interval.high)
    res = bootstrap(constant, "mean", n_resamples=100, seed=0, method="percentile")
    assert res.confidence_interval == (2.5, 2.5)


def test_float32_and_integer_data():
    x32 = NORMAL.astype(np.float32)
    r32 = bootstrap(x32, "mean", n_resamples=200, seed=1)
    r64 = bootstrap(x32.astype(np.float64), "mean", n_resamples=200, seed=1)
    np.testing.assert_allclose(r32.bootstrap_distribution, r64.bootstrap_distribution,
                               rtol=1e-12)
    ints = COUNTS.astype(np.int64)
    np.testing.assert_array_equal(
        bootstrap(ints, "median", n_resamples=200, seed=1,
                  method="percentile").bootstrap_distribution,
        bootstrap(COUNTS, "median", n_resamples=200, seed=1,
                  method="percentile").bootstrap_distribution)
    assert bootstrap(list(COUNTS[:20]), n_resamples=10, seed=1).bootstrap_distribution.size == 10


def test_bca_at_n_100000_is_fast_in_memory():
    x = np.random.default_rng(0).normal(size=100_000)
    for statistic, options in [("mean", {}), ("median", {}), ("var", {}),
                               ("trimmed_mean", {"proportiontocut": 0.1}),
                               ("quantile", {"q": 0.9})]:
        tracemalloc.start()
        try:
            res = bootstrap(x, statistic, n_resamples=1000, seed=0, **options)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        low, high = res.confidence_interval
        assert np.isfinite(low) and np.isfinite(high) and low < high
        assert peak < 150e6


@pytest.mark.parametrize("statistic, data", [("mean", NORMAL[:20]), ("median", COUNTS[:20]),
                                             ("mean", np.stack([NORMAL[:20], OTHER[:20]]))])
def test_memory_is_the_distribution_and_one_sorted_copy(statistic, data):
    """Besides bootstrap_distribution, a call holds O(n_blocks) state and, while it
    computes the interval, one sorted copy of (a row of) the distribution."""
    n_resamples = 400_000
    n_blocks = -(-n_resamples // BLOCK_SIZE)
    tracemalloc.start()
    try:
        res = bootstrap(data, statistic, n_resamples=n_resamples, method="percentile",
                        seed=0, workers=2, axis=-1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = res.bootstrap_distribution.nbytes
    row = 8 * n_resamples
    assert peak < output + row + 256 * n_blocks + 500_000


def test_the_gil_is_released(assert_releases_gil):
    x = np.random.default_rng(0).normal(size=100_000)
    assert_releases_gil(lambda scale: lambda: bootstrap(
        x, "mean", n_resamples=scale * BLOCK_SIZE, method="percentile", seed=0, workers=1))


# -- Ctrl-C: every long call stops within the fixture's bound, then works again ----

LONG_X = np.random.default_rng(61).poisson(20.0, size=400_000).astype(np.float64)
LONG_Y = LONG_X + np.random.default_rng(62).normal(size=LONG_X.size)
# 2e10 draws and more per call: minutes on any machine, in a few MB.
LONG_RESAMPLES = 50_000
LONG_CALLS = {
    "mean": dict(data=LONG_X),
    "var": dict(data=LONG_X, statistic="var"),
    "median": dict(data=LONG_X, statistic="median"),
    "quantile": dict(data=LONG_X, statistic="quantile", q=0.9),
    "trimmed_mean": dict(data=LONG_X, statistic="trimmed_mean", proportiontocut=0.1),
    "pearsonr": dict(data=(LONG_X, LONG_Y), statistic="pearsonr", paired=True),
    "mean_diff-paired": dict(data=(LONG_X, LONG_Y), statistic="mean_diff", paired=True),
    "mean_diff": dict(data=(LONG_X, LONG_Y), statistic="mean_diff"),
    "axis": dict(data=np.stack([LONG_X, LONG_Y]), axis=1),
    "callable": dict(data=LONG_X, statistic=lambda x, axis: np.mean(x, axis=axis)),
    "callable-one": dict(data=LONG_X, statistic=lambda x: np.mean(x)),
}


# -- data at extreme scales: the statistic's sums are scaled, never overflow --------

# (statistic, data, power): at scale s the statistic is s**power times its value at 1
SCALED = {"mean": ("mean", NORMAL, 1), "std": ("std", NORMAL, 1), "var": ("var", NORMAL, 2),
          "mean_diff": ("mean_diff", (NORMAL, OTHER), 1),
          "pearsonr": ("pearsonr", (NORMAL, PARTNER), 0)}
SCALES = [1e-300, 1e-170, 1e-100, 1e100, 1e155, 1e300, 1e306]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("case", SCALED)
def test_extreme_scales_give_the_scaled_result(case, scale):
    statistic, data, power = SCALED[case]
    factor = scale ** power if case != "var" or 1e-150 < scale < 1e150 else None
    if factor is None:
        pytest.skip("the variance itself is beyond float64's range")
    samples = _samples(data)
    kwargs = dict(n_resamples=500, seed=4, paired=case == "pearsonr")
    ref = bootstrap(data, statistic, **kwargs)
    res = bootstrap(tuple(s * scale for s in samples) if len(samples) == 2
                    else data * scale, statistic, **kwargs)
    np.testing.assert_allclose(res.bootstrap_distribution,
                               ref.bootstrap_distribution * factor, rtol=1e-12)
    np.testing.assert_allclose(res.confidence_interval,
                               np.multiply(ref.confidence_interval, factor), rtol=1e-9)
    assert res.standard_error == pytest.approx(ref.standard_error * factor, rel=1e-9)


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1.0, 1e155, 1e300])
def test_pearsonr_at_any_scale_is_scipys(scale):
    x, y = NORMAL * scale, PARTNER * scale
    res = bootstrap((x, y), "pearsonr", paired=True, n_resamples=700, seed=6)
    ref = scipy.stats.bootstrap((x, y), _pearsonr, n_resamples=0, bootstrap_result=res,
                                paired=True, vectorized=True)
    np.testing.assert_allclose(res.confidence_interval, ref.confidence_interval, rtol=0,
                               atol=1e-9)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(6).spawn(11)[0]))
    for r in range(BLOCK_SIZE):
        i = rng.integers(0, x.size, size=x.size)
        assert res.bootstrap_distribution[r] == pytest.approx(
            scipy.stats.pearsonr(x[i], y[i]).statistic, rel=1e-12)


@pytest.fixture
def signal_interval():
    """Set how often a call looks at the signals (fastkern._interrupt) for one test."""
    before = _interrupt.interval()
    yield _interrupt.interval
    _interrupt.interval(before)


@pytest.mark.parametrize("case", ["mean-normal", "var-ddof1", "median-counts",
                                  "trimmed-normal", "mean_diff-unpaired", "pearsonr",
                                  "callable-two"])
def test_signal_checks_do_not_change_results(case, signal_interval):
    """A call that looks at the signals between any two stretches of resamples
    gives the values of one that never looks, bit for bit."""
    data, statistic, options, _, paired = CASES[case]
    batch = {"batch": 37} if callable(statistic) else {}   # batches end inside blocks

    def run(workers):
        return bootstrap(data, statistic, n_resamples=40 * BLOCK_SIZE - 9, paired=paired,
                         method="percentile", seed=12, workers=workers, **options,
                         **batch).bootstrap_distribution

    signal_interval(float("inf"))
    expected = run(1)
    signal_interval(1e-9)
    for workers in (1, 2, 3):
        np.testing.assert_array_equal(run(workers), expected)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", LONG_CALLS)
def test_ctrl_c_stops_a_long_call(case, workers, assert_interruptible):
    kwargs = LONG_CALLS[case]
    small_kwargs = {**kwargs, "data": (NORMAL, PARTNER) if isinstance(kwargs["data"], tuple)
                    else NORMAL[None, :] if kwargs.get("axis") else NORMAL}
    expected = bootstrap(**small_kwargs, n_resamples=200, seed=1).bootstrap_distribution

    def small():
        res = bootstrap(**small_kwargs, n_resamples=200, seed=1, workers=workers)
        np.testing.assert_array_equal(res.bootstrap_distribution, expected)

    # SIGINT at 0.5 s: after the set-up (sorting the sample, preparing its values),
    # in the kernel
    assert_interruptible(lambda: bootstrap(**kwargs, n_resamples=LONG_RESAMPLES,
                                           method="percentile", seed=0, workers=workers),
                         small, delay=0.5)


def test_two_threads_at_once_get_their_own_results():
    jobs = [(NORMAL, "median", {}), (COUNTS, "trimmed_mean", {"proportiontocut": 0.2}),
            ((NORMAL, PARTNER), "pearsonr", {"paired": True})]
    expected = [bootstrap(d, s, n_resamples=300, seed=k, **o).bootstrap_distribution
                for k, (d, s, o) in enumerate(jobs)]
    results = [None] * len(jobs)

    def work(k):
        d, s, o = jobs[k]
        results[k] = bootstrap(d, s, n_resamples=300, seed=k, workers=2,
                               **o).bootstrap_distribution

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


BAD_INPUTS = [
    (dict(data=[]), ValueError, "data must not be empty"),
    (dict(data=[1.0]), ValueError, "at least two"),
    (dict(data=[1.0, np.nan, 3.0]), ValueError, "data contains NaN"),
    (dict(data=[1.0, np.inf, 3.0]), ValueError, "data contains an infinite"),
    (dict(data=([1.0, 2.0], [1.0, np.nan]), statistic="mean_diff"), ValueError,
     r"data\[1\] contains NaN"),
    (dict(data=np.ones((3, 3)), axis=2), ValueError, "axis 2 is out of range"),
    (dict(axis=1), ValueError, "axis 1 is out of range for data"),
    (dict(axis=1.5), TypeError, "axis must be an integer"),
    (dict(data=np.ones((0, 3))), ValueError, "data must not be empty"),
    (dict(data=np.array([[1.0, 2.0], [3.0, np.nan], [4.0, 5.0]])), ValueError,
     r"data contains NaN \(at index \(1, 1\)\)"),
    (dict(data=(np.ones((4, 2)), np.ones((4, 3))), statistic="mean_diff"), ValueError,
     "must broadcast"),
    (dict(data=np.arange(10.0).reshape(5, 2), bootstrap_result=BootstrapResult(
        None, np.ones(4), None)), ValueError, "must have shape"),
    (dict(bootstrap_result=BootstrapResult(None, np.ones((2, 4)), None)), ValueError,
     "must have shape"),
    (dict(data=[1j, 2j]), TypeError, "real"),
    (dict(data=["a", "b"]), TypeError, "real numbers"),
    (dict(n_resamples=0), ValueError, "n_resamples"),
    (dict(n_resamples=-5), ValueError, "n_resamples"),
    (dict(n_resamples=10.5), TypeError, "n_resamples"),
    (dict(confidence_level=1.0), ValueError, "confidence_level"),
    (dict(confidence_level=0), ValueError, "confidence_level"),
    (dict(confidence_level="high"), TypeError, "confidence_level"),
    (dict(statistic="mode"), ValueError, "statistic must be"),
    (dict(statistic=3), TypeError, "statistic"),
    (dict(method="bootstrap-t"), ValueError, "method"),
    (dict(alternative="bigger"), ValueError, "alternative"),
    (dict(statistic="quantile"), ValueError, "needs q"),
    (dict(statistic="quantile", q=1.5), ValueError, r"q must be in \[0, 1\]"),
    (dict(statistic="mean", q=0.5), ValueError, "q is only used"),
    (dict(statistic="trimmed_mean"), ValueError, "needs proportiontocut"),
    (dict(statistic="trimmed_mean", proportiontocut=0.5), ValueError, "proportiontocut"),
    (dict(statistic="var", ddof=-1), ValueError, "ddof"),
    (dict(statistic="var", ddof=10), ValueError, "ddof"),
    (dict(statistic="mean_diff"), ValueError, "takes 2 sample"),
    (dict(data=([1.0, 2.0], [3.0, 4.0])), ValueError, "takes 1 sample"),
    (dict(data=([1.0, 2.0, 3.0], [3.0, 4.0]), statistic="mean_diff", paired=True),
     ValueError, "same length"),
    (dict(data=([1.0, 2.0], [3.0, 4.0]), statistic="pearsonr"), ValueError, "paired=True"),
    (dict(paired="yes"), TypeError, "paired"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(seed=np.random.RandomState(0)), TypeError, "seed"),
    (dict(workers=0), ValueError, "workers"),
    (dict(statistic=lambda x: x.mean(), vectorized=True), TypeError, "takes no axis"),
    (dict(statistic=np.mean, vectorized="no"), TypeError, "vectorized"),
    (dict(statistic="mean", vectorized=False), ValueError, "vectorized is only used"),
    (dict(statistic=lambda x, axis: np.mean(x)), ValueError, "one value per resample"),
    (dict(statistic=np.mean, batch=0), ValueError, "batch"),
    (dict(bootstrap_result=object()), TypeError, "bootstrap_result"),
    # every argument, with wrong types and values out of range
    (dict(data=None), ValueError, "data must be a 1-D array"),
    (dict(data=np.array(["1", "2"])), TypeError, "data must hold real numbers"),
    (dict(data=np.array([1, 2], dtype="datetime64[s]")), TypeError, "data must hold real"),
    (dict(data=[1.0, 2**2000, 3.0]), ValueError, "data holds a number beyond float64"),
    (dict(data=2**2000), ValueError, "data"),
    (dict(n_resamples=2**63), ValueError, "n_resamples must be at most"),
    (dict(n_resamples=2**60), MemoryError, "n_resamples is too large"),
    (dict(n_resamples=10**15), MemoryError, "n_resamples is too large"),
    (dict(data=np.ones((3, 4)), n_resamples=10**15), MemoryError, "n_resamples is too large"),
    (dict(n_resamples=True), TypeError, "n_resamples"),
    (dict(n_resamples=np.float64(10)), TypeError, "n_resamples"),
    (dict(n_resamples=None), TypeError, "n_resamples"),
    (dict(workers=2**31), ValueError, "workers must be at most"),
    (dict(workers=2**63), ValueError, "workers must be at most"),
    (dict(workers=-10**6), ValueError, "workers value out of range"),
    (dict(workers=1.5), TypeError, "workers"),
    (dict(workers="2"), TypeError, "workers"),
    (dict(workers=True), TypeError, "workers"),
    (dict(statistic=np.mean, workers=2**31), ValueError, "workers"),
    (dict(n_resamples=0, bootstrap_result=BootstrapResult(None, np.ones(4), None),
          workers=0), ValueError, "workers"),
    (dict(confidence_level=np.nan), ValueError, "confidence_level must be finite"),
    (dict(confidence_level=None), TypeError, "confidence_level"),
    (dict(confidence_level=[0.9]), TypeError, "confidence_level"),
    (dict(statistic="quantile", q=np.nan), ValueError, "q must be finite"),
    (dict(statistic="quantile", q=-0.1), ValueError, r"q must be in \[0, 1\]"),
    (dict(statistic="quantile", q="0.5"), TypeError, "q must be a real number"),
    (dict(statistic="quantile", q=True), TypeError, "q must be a real number"),
    (dict(statistic="quantile", q=2**2000), ValueError, "^q "),
    (dict(statistic="std", ddof=np.inf), ValueError, "ddof must be finite"),
    (dict(statistic="std", ddof=None), TypeError, "ddof must be a real number"),
    (dict(statistic="std", ddof=2**2000), ValueError, "^ddof "),
    (dict(statistic="trimmed_mean", proportiontocut=-0.1), ValueError, "proportiontocut"),
    (dict(statistic="trimmed_mean", proportiontocut=np.nan), ValueError, "proportiontocut"),
    (dict(statistic="trimmed_mean", proportiontocut="0.1"), TypeError, "proportiontocut"),
    (dict(statistic=np.mean, proportiontocut=0.1), ValueError, "proportiontocut is only"),
    (dict(statistic=np.mean, batch=-1), ValueError, "batch must be at least 1"),
    (dict(statistic=np.mean, batch=1.5), TypeError, "batch must be an integer"),
    (dict(statistic=np.mean, batch="3"), TypeError, "batch must be an integer"),
    (dict(statistic=np.mean, batch=True), TypeError, "batch must be an integer"),
    (dict(batch=0), ValueError, "batch"),
    (dict(method=None), TypeError, "method must be a string"),
    (dict(alternative=["less"]), TypeError, "alternative must be a string"),
    (dict(paired=None), TypeError, "paired must be True or False"),
    (dict(paired=np.array([True])), TypeError, "paired must be True or False"),
    (dict(statistic=np.mean, vectorized=np.array([True])), TypeError, "vectorized"),
    (dict(axis=None), TypeError, "axis must be an integer"),
    (dict(axis=2**63), ValueError, "^axis "),
    (dict(seed=[1, -2]), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(bootstrap_result=BootstrapResult(None, np.array(["a", "b"]), None)), TypeError,
     "bootstrap_result.bootstrap_distribution must be an array of real numbers"),
    (dict(statistic=None), TypeError, "statistic must be a string or a callable"),
    (dict(statistic=["mean"]), TypeError, "statistic must be a string or a callable"),
    (dict(statistic=lambda x, axis: x[..., 0] + 1j), TypeError, "statistic must return real"),
]


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_statistic_of_one_resample_equals_vectorised_form(paired, method):
    # vectorized=False (or a callable without axis): called once per resample,
    # on the same resamples as the vectorised form, so the results agree
    rng = np.random.default_rng(41)
    x, y = rng.normal(size=40), rng.normal(size=40)

    def one(a, b):
        return np.percentile(a, 80) - np.median(b)

    def vec(a, b, axis=-1):
        return np.percentile(a, 80, axis=axis) - np.median(b, axis=axis)

    ref = bootstrap((x, y), vec, n_resamples=300, method=method, paired=paired, seed=3,
                    batch=7)
    for kwargs in ({}, {"vectorized": False}):
        res = bootstrap((x, y), one, n_resamples=300, method=method, paired=paired, seed=3,
                        batch=7, **kwargs)
        np.testing.assert_allclose(res.bootstrap_distribution, ref.bootstrap_distribution,
                                   rtol=1e-12)
        np.testing.assert_allclose(res.confidence_interval, ref.confidence_interval,
                                   rtol=1e-12)


def test_vectorized_false_calls_once_per_resample_even_with_axis():
    x = np.random.default_rng(42).normal(size=30)
    shapes = []

    def stat(a, axis=-1):
        shapes.append(np.shape(a))
        return np.mean(a, axis=axis)

    res = bootstrap(x, stat, n_resamples=20, method="percentile", vectorized=False, seed=1)
    assert res.bootstrap_distribution.shape == (20,)
    assert set(shapes) == {(30,)}
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=0, method="percentile",
                                bootstrap_result=res)
    assert ref.confidence_interval.low == pytest.approx(res.confidence_interval.low, rel=1e-9)


# -- samples of several dimensions: one bootstrap per element of the other axes ---

@pytest.mark.parametrize("statistic, options", [("mean", {}), ("median", {}),
                                                ("quantile", {"q": 0.3}),
                                                (lambda x, axis: np.std(x, axis=axis), {})])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_each_element_is_the_one_dimensional_bootstrap(statistic, options, axis):
    rng = np.random.default_rng(51)
    data = rng.normal(size=(3, 40, 2)) if axis == 1 else \
        np.moveaxis(rng.normal(size=(40, 3, 2)), 0, axis)
    res = bootstrap(data, statistic, n_resamples=150, seed=9, axis=axis, **options)
    batch = np.moveaxis(data, axis, -1)
    assert res.confidence_interval.low.shape == batch.shape[:-1]
    assert res.standard_error.shape == batch.shape[:-1]
    assert res.bootstrap_distribution.shape == (*batch.shape[:-1], 150)
    for index in np.ndindex(*batch.shape[:-1]):
        one = bootstrap(batch[index], statistic, n_resamples=150, seed=9, **options)
        np.testing.assert_array_equal(res.bootstrap_distribution[index],
                                      one.bootstrap_distribution)
        assert res.confidence_interval.low[index] == one.confidence_interval.low
        assert res.confidence_interval.high[index] == one.confidence_interval.high
        assert res.standard_error[index] == one.standard_error


@pytest.mark.parametrize("method", METHODS)
def test_batched_interval_equals_scipys_on_the_same_distribution(method):
    rng = np.random.default_rng(52)
    x = rng.normal(size=(4, 60))
    y = rng.normal(size=(1, 45)) + 0.5      # broadcast against x's 4 rows
    res = bootstrap((x, y), "mean_diff", n_resamples=400, method=method, axis=1, seed=2)
    assert res.bootstrap_distribution.shape == (4, 400)
    ref = scipy.stats.bootstrap((x, y), _mean_diff, n_resamples=0, method=method, axis=1,
                                bootstrap_result=res, vectorized=True)
    np.testing.assert_allclose(res.confidence_interval.low, ref.confidence_interval.low,
                               rtol=1e-9)
    np.testing.assert_allclose(res.confidence_interval.high, ref.confidence_interval.high,
                               rtol=1e-9)


def test_batched_result_can_be_extended_and_seeds_once():
    x = np.random.default_rng(53).poisson(3.0, size=(30, 2)).astype(float)
    x[:, 1] = x[:, 0]                        # two equal columns: equal results
    first = bootstrap(x, "mean", n_resamples=100, seed=np.random.default_rng(4),
                      method="percentile")
    np.testing.assert_array_equal(first.bootstrap_distribution[0],
                                  first.bootstrap_distribution[1])
    more = bootstrap(x, "mean", n_resamples=50, seed=5, method="percentile",
                     bootstrap_result=first)
    assert more.bootstrap_distribution.shape == (2, 150)
    np.testing.assert_array_equal(more.bootstrap_distribution[:, :100],
                                  first.bootstrap_distribution)


@pytest.mark.parametrize("kwargs, error, match", BAD_INPUTS)
def test_bad_input_names_the_argument(kwargs, error, match):
    kwargs = {"data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "n_resamples": 10, **kwargs}
    with pytest.raises(error, match=match):
        bootstrap(**kwargs)


def test_a_batch_beyond_memory_names_batch():
    # a batch is at most n_resamples rows, so no call can ask for one too large to
    # index; the helper that allocates every batch's indices says which argument
    # to change
    from fastkern.resampling._checks import _index_array
    with pytest.raises(MemoryError, match="batch is too large"):
        _index_array((2**62, 4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 60), n_resamples=st.integers(1, 3 * BLOCK_SIZE + 1),
       statistic=st.sampled_from(["mean", "median", "quantile", "var", "trimmed_mean"]),
       ties=st.booleans(), method=st.sampled_from(METHODS), seed=st.integers(0, 2**32))
def test_any_shape(n, n_resamples, statistic, ties, method, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=n).astype(float) if ties else rng.normal(size=n)
    options = {"quantile": {"q": 0.37}, "trimmed_mean": {"proportiontocut": 0.2},
               "var": {"ddof": 0}}.get(statistic, {})
    scipy_stat = {
        "mean": lambda x, axis: np.mean(x, axis=axis),
        "median": lambda x, axis: np.median(x, axis=axis),
        "quantile": lambda x, axis: np.quantile(x, 0.37, axis=axis),
        "var": lambda x, axis: np.var(x, axis=axis),
        "trimmed_mean": lambda x, axis: scipy.stats.trim_mean(x, 0.2, axis=axis),
    }[statistic]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = bootstrap(x, statistic, n_resamples=n_resamples, method=method, seed=seed,
                        workers=1, **options)
        res2 = bootstrap(x, statistic, n_resamples=n_resamples, method=method, seed=seed,
                         workers=2, **options)
        ref = scipy.stats.bootstrap((x,), scipy_stat, n_resamples=0, bootstrap_result=res,
                                    method=method, vectorized=True)
    np.testing.assert_array_equal(res.bootstrap_distribution, res2.bootstrap_distribution)
    if method == "BCa":
        # BCa counts the resamples below the observed statistic; one equal to it in
        # exact arithmetic (a resample of the same multiset as x) lands on either
        # side by rounding, in scipy's arithmetic and in ours
        theta = scipy_stat(x, axis=-1)
        assume(not np.any(np.isclose(res.bootstrap_distribution, theta, rtol=1e-12, atol=0)))
    np.testing.assert_allclose(res.confidence_interval, ref.confidence_interval,
                               rtol=0, atol=1e-9)
    # the first resample, by NumPy
    rng0 = np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed).spawn(-(-n_resamples // BLOCK_SIZE))[0]))
    first = scipy_stat(x[rng0.integers(0, n, size=n)], axis=-1)
    assert res.bootstrap_distribution[0] == pytest.approx(first, rel=1e-12, abs=1e-12)


def _unaligned(a):
    """a's values in a buffer that starts one byte past an aligned address."""
    buf = np.empty(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(buf[1:].data, dtype=a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("statistic", ["mean", "var", "median", "pearsonr"])
def test_unaligned_data(dtype, statistic):
    # data that arrive unaligned (pickled, from a network frame) are read whole
    rng = np.random.default_rng(3)
    x = (rng.normal(size=300) * 10).astype(dtype)
    y = (x + rng.normal(size=300) * 5).astype(dtype)
    data = (x, y) if statistic == "pearsonr" else (x,)
    kw = dict(paired=statistic == "pearsonr", n_resamples=200, seed=2, method="percentile")
    want = bootstrap(data, statistic, **kw).bootstrap_distribution
    got = bootstrap(tuple(_unaligned(d) for d in data), statistic, **kw).bootstrap_distribution
    np.testing.assert_array_equal(got, want)
    cols = np.stack([x, x[::-1]], axis=1)
    want = bootstrap(cols, "mean", axis=0, **kw).bootstrap_distribution
    got = bootstrap(_unaligned(cols), "mean", axis=0, **kw).bootstrap_distribution
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("statistic", ["mean", "pearsonr", "median"])
def test_unpickled_plans_with_unaligned_arrays(statistic):
    # a Dask worker unpickles a plan with its arrays left in place in the message
    # (pickle protocol 5, out-of-band buffers), often unaligned
    import pickle

    from fastkern.resampling.bootstrap import _plan, resample_blocks

    rng = np.random.default_rng(4)
    x = rng.normal(size=500)
    data = (x, x + rng.normal(size=500)) if statistic == "pearsonr" else (x,)
    plan = _plan(data, statistic, 300, 0.9, "percentile", "two-sided",
                 statistic == "pearsonr", None, 1, None, None, None, 5, None)
    want = resample_blocks(plan, 0, plan.n_blocks, 1)
    buffers = []
    payload = pickle.dumps(plan, protocol=5, buffer_callback=buffers.append)
    moved = []
    for b in buffers:   # each buffer's bytes one past an aligned address
        raw = np.frombuffer(b.raw(), dtype=np.uint8)
        moved.append(np.empty(raw.size + 1, dtype=np.uint8)[1:])
        moved[-1][:] = raw
    got = resample_blocks(pickle.loads(payload, buffers=moved), 0, plan.n_blocks, 2)
    np.testing.assert_array_equal(got, want)
