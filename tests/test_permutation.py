"""fastkern.permutation_test against scipy.stats.permutation_test and plain NumPy loops."""
import tracemalloc

import numpy as np
import pytest
import scipy.stats

import fastkern
from fastkern import permutation_test
from fastkern.resampling import BLOCK_SIZE
from fastkern.resampling.permutation import null_blocks, _plan

RNG = np.random.default_rng(20261130)
ALTERNATIVES = ["two-sided", "less", "greater"]


def _mean_diff(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _median_diff(x, y, axis):
    return np.median(x, axis=axis) - np.median(y, axis=axis)


def _welch(x, y, axis):
    return scipy.stats.ttest_ind(x, y, equal_var=False, axis=axis).statistic


def _pearsonr(x, y, axis):
    return scipy.stats.pearsonr(x, y, axis=axis).statistic


def _spearmanr(x, y, axis):
    rx, ry = scipy.stats.rankdata(x, axis=axis), scipy.stats.rankdata(y, axis=axis)
    return scipy.stats.pearsonr(rx, ry, axis=axis).statistic


# id -> (permutation_type, fastkern statistic, scipy statistic, data maker)
BUILT_IN = {
    "mean_diff": ("independent", "mean_diff", _mean_diff,
                  lambda r, n: (r.normal(0.5, 1, n), r.normal(0, 1, n + 1))),
    "median_diff": ("independent", "median_diff", _median_diff,
                    lambda r, n: (r.normal(0.5, 1, n + 1), r.normal(0, 1, n))),
    "t": ("independent", "t", _welch, lambda r, n: (r.normal(0.5, 1, n), r.normal(0, 2, n + 2))),
    "pearsonr": ("pairings", "pearsonr", _pearsonr,
                 lambda r, n: (lambda x: (x, x + r.normal(0, 2, n)))(r.normal(size=n))),
    "spearmanr": ("pairings", "spearmanr", _spearmanr,
                  lambda r, n: (lambda x: (x, x + r.normal(0, 2, n)))(r.normal(size=n))),
    "paired": ("samples", "mean_diff", _mean_diff,
               lambda r, n: (lambda x: (x + 0.3, x + r.normal(0, 1, n)))(r.normal(size=n))),
}
# sizes whose distinct permutations are a few thousand at most
EXACT_SIZE = {"mean_diff": 6, "median_diff": 5, "t": 5, "pearsonr": 5, "spearmanr": 5,
              "paired": 10}


# ------------------------------------------------------------------ exact test

@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("case", list(BUILT_IN))
def test_exact_pvalue_is_scipys(case, alternative):
    permutation_type, statistic, reference, make = BUILT_IN[case]
    for seed in range(3):
        data = make(np.random.default_rng(seed), EXACT_SIZE[case])
        got = permutation_test(data, statistic, permutation_type=permutation_type,
                               alternative=alternative, n_resamples=np.inf)
        want = scipy.stats.permutation_test(data, reference, permutation_type=permutation_type,
                                            alternative=alternative, n_resamples=np.inf)
        assert got.pvalue == want.pvalue
        assert got.statistic == pytest.approx(want.statistic, rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(got.null_distribution, want.null_distribution, rtol=1e-10,
                                   atol=1e-13)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_exact_with_ties_is_scipys(alternative):
    """Integer data: many permutations tie with the observed statistic, and
    scipy's tolerance decides; the p-values are equal."""
    x, y = np.array([1.0, 2, 2, 3, 5]), np.array([2.0, 2, 3, 4])
    for permutation_type, statistic, reference in [
            ("independent", "mean_diff", _mean_diff), ("independent", "median_diff", _median_diff),
            ("samples", "mean_diff", _mean_diff)]:
        data = (x, y) if permutation_type == "independent" else (x[:4], y)
        got = permutation_test(data, statistic, permutation_type=permutation_type,
                               alternative=alternative, n_resamples=10**6)
        want = scipy.stats.permutation_test(data, reference, permutation_type=permutation_type,
                                            alternative=alternative, n_resamples=10**6)
        assert got.pvalue == want.pvalue


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("permutation_type, data", [
    ("independent", (np.arange(3.0), np.arange(2.0) + 0.5, np.array([4.0, 1, 2]))),
    ("pairings", (np.array([1.0, 4, 2, 3]),)),
    ("samples", (np.array([1.0, -2, 3, 0.5, 2]),)),
    ("samples", (np.array([1.0, 2, 3]), np.array([0.5, 2.5, 1]), np.array([3.0, 0, 1]))),
])
def test_exact_callables_are_scipys(permutation_type, data, alternative):
    def statistic(*samples, axis):
        return sum((k + 1) * np.mean(s, axis=axis) for k, s in enumerate(samples)) + \
            np.sum(samples[0] * np.arange(samples[0].shape[axis]), axis=axis)

    got = permutation_test(data, statistic, permutation_type=permutation_type,
                           alternative=alternative, n_resamples=np.inf)
    want = scipy.stats.permutation_test(data, statistic, permutation_type=permutation_type,
                                        alternative=alternative, n_resamples=np.inf)
    assert got.pvalue == want.pvalue
    np.testing.assert_allclose(got.null_distribution, want.null_distribution, rtol=1e-12)


def test_exact_rule_is_scipys():
    """Exact when n_resamples is at least scipy's count of permutations."""
    x, y = np.arange(4.0), np.arange(3.0) + 0.5
    exact = permutation_test((x, y), n_resamples=35)
    want = scipy.stats.permutation_test((x, y), _mean_diff, n_resamples=35)
    assert exact.null_distribution.size == 35 and exact.pvalue == want.pvalue
    res = permutation_test((x, y), n_resamples=34, seed=1)
    assert res.null_distribution.size == 34
    assert res.pvalue * 35 == pytest.approx(round(res.pvalue * 35))   # (count + 1) / 35


# ------------------------------------------------------------------ randomized

def _blocks(seed, n):
    children = np.random.SeedSequence(seed).spawn(-(-n // BLOCK_SIZE))
    for b, child in enumerate(children):
        yield np.random.Generator(np.random.PCG64(child)), range(
            b * BLOCK_SIZE, min((b + 1) * BLOCK_SIZE, n))


def _loop_independent(samples, statistic, seed, n):
    """The docstring's loop, for any number of samples: the largest last."""
    sizes = [s.size for s in samples]
    last = max(range(len(sizes)), key=lambda i: (sizes[i], i))
    order = [i for i in range(len(samples)) if i != last] + [last]
    z = np.concatenate([samples[i] for i in order])
    m = z.size - sizes[last]
    bounds = np.cumsum([0] + [sizes[i] for i in order])
    null = np.empty(n)
    for rng, rows in _blocks(seed, n):
        a = z.copy()
        for r in rows:
            j = rng.integers(np.arange(m), z.size)
            for i in range(m):
                a[i], a[j[i]] = a[j[i]], a[i]
            parts = [a[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
            back = [None] * len(samples)
            for slot, i in enumerate(order):
                back[i] = parts[slot]
            null[r] = statistic(*back)
    return null


def _loop_pairings(samples, statistic, seed, n):
    size = samples[0].size
    null = np.empty(n)
    for rng, rows in _blocks(seed, n):
        state = [s.copy() for s in samples]
        for r in rows:
            for a in state[1:] if len(state) > 1 else state:
                j = rng.integers(np.arange(size - 1), size)
                for i in range(size - 1):
                    a[i], a[j[i]] = a[j[i]], a[i]
            null[r] = statistic(*state)
    return null


def _loop_samples(x, y, statistic, seed, n):
    null = np.empty(n)
    for rng, rows in _blocks(seed, n):
        for r in rows:
            raw = rng.bit_generator.random_raw(-(-x.size // 64))
            swap = np.unpackbits(raw.view(np.uint8), bitorder="little")[:x.size].astype(bool)
            null[r] = statistic(np.where(swap, y, x), np.where(swap, x, y))
    return null


def _integers(n, rng=RNG):
    return rng.integers(-50, 50, n).astype(np.float64)


@pytest.mark.parametrize("sizes", [(37, 50), (50, 37), (40, 40)])
def test_mean_diff_is_the_numpy_loop_bit_for_bit(sizes):
    x, y = _integers(sizes[0]), _integers(sizes[1])
    n = 3 * BLOCK_SIZE + 5
    res = permutation_test((x, y), "mean_diff", n_resamples=n, seed=7, workers=2)

    def statistic(a, b):   # the kernel's formula: the sum of the smaller, the rest by difference
        small = a if a.size <= b.size else b
        s, rest = small.sum(), x.sum() + y.sum() - small.sum()
        return (s / a.size - rest / b.size) if small is a else (rest / a.size - s / b.size)

    np.testing.assert_array_equal(res.null_distribution,
                                  _loop_independent([x, y], statistic, 7, n))


@pytest.mark.parametrize("statistic, reference", [
    ("median_diff", lambda a, b: np.median(a) - np.median(b)),
    ("t", lambda a, b: scipy.stats.ttest_ind(a, b, equal_var=False).statistic)])
def test_independent_statistics_follow_the_numpy_loop(statistic, reference):
    x, y = RNG.normal(size=33), RNG.normal(size=41)
    n = 2 * BLOCK_SIZE + 3
    res = permutation_test((x, y), statistic, n_resamples=n, seed=3)
    np.testing.assert_allclose(res.null_distribution,
                               _loop_independent([x, y], reference, 3, n), rtol=1e-12,
                               atol=1e-14)


def test_callable_independent_three_samples_follows_the_numpy_loop():
    samples = [_integers(9), _integers(14), _integers(11)]

    def statistic(a, b, c, axis=-1):
        return np.sum(a * np.arange(a.shape[axis]), axis=axis) + 3 * np.sum(b, axis=axis) \
            - np.max(c, axis=axis)

    n = 4 * BLOCK_SIZE - 1
    res = permutation_test(samples, statistic, n_resamples=n, seed=11, batch=70)
    want = _loop_independent(samples, lambda *s: statistic(*s), 11, n)
    np.testing.assert_array_equal(res.null_distribution, want)


@pytest.mark.parametrize("statistic", ["pearsonr", "spearmanr"])
def test_pairings_follow_the_numpy_loop(statistic):
    x = RNG.normal(size=30)
    y = x + RNG.normal(size=30)
    n = 2 * BLOCK_SIZE + 9
    res = permutation_test((x, y), statistic, permutation_type="pairings", n_resamples=n,
                           seed=5)
    if statistic == "pearsonr":
        want = _loop_pairings([x, y], lambda a, b: scipy.stats.pearsonr(a, b).statistic, 5, n)
    else:
        rx, ry = scipy.stats.rankdata(x), scipy.stats.rankdata(y)
        want = _loop_pairings([rx, ry], lambda a, b: scipy.stats.pearsonr(a, b).statistic, 5, n)
    np.testing.assert_allclose(res.null_distribution, want, rtol=1e-12, atol=1e-14)


def test_callable_pairings_follow_the_numpy_loop():
    x, y, z = _integers(12), _integers(12), _integers(12)

    def statistic(a, b, c, axis=-1):
        return np.sum(a * b - 2 * b * c, axis=axis)

    n = BLOCK_SIZE + 1
    res = permutation_test((x, y, z), statistic, permutation_type="pairings", n_resamples=n,
                           seed=2)
    np.testing.assert_array_equal(res.null_distribution,
                                  _loop_pairings([x, y, z], lambda *s: statistic(*s), 2, n))


def test_paired_mean_diff_is_the_numpy_loop_bit_for_bit():
    x, y = _integers(150), _integers(150)
    n = 2 * BLOCK_SIZE + 1
    res = permutation_test((x, y), "mean_diff", permutation_type="samples", n_resamples=n,
                           seed=4)
    want = _loop_samples(x, y, lambda a, b: np.sum(a - b) / a.size, 4, n)
    np.testing.assert_array_equal(res.null_distribution, want)
    res = permutation_test((x, y), lambda a, b, axis: np.sum(a * 2 - b, axis=axis),
                           permutation_type="samples", n_resamples=n, seed=4)
    want = _loop_samples(x, y, lambda a, b: np.sum(a * 2 - b), 4, n)
    np.testing.assert_array_equal(res.null_distribution, want)


@pytest.mark.parametrize("case", list(BUILT_IN))
def test_null_distribution_is_scipys_in_law(case):
    """Two-sample KS test of the randomized null against scipy's (20,000 each)."""
    permutation_type, statistic, reference, make = BUILT_IN[case]
    data = make(np.random.default_rng(1), 40)
    got = permutation_test(data, statistic, permutation_type=permutation_type,
                           n_resamples=20_000, seed=1)
    want = scipy.stats.permutation_test(data, reference, permutation_type=permutation_type,
                                        n_resamples=20_000, rng=2)
    assert scipy.stats.ks_2samp(got.null_distribution, want.null_distribution).pvalue > 1e-3
    assert got.pvalue == pytest.approx(want.pvalue, abs=0.03)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_randomized_pvalue_is_scipys_rule(alternative):
    x, y = RNG.normal(0.2, 1, 30), RNG.normal(size=30)
    res = permutation_test((x, y), "mean_diff", n_resamples=999, alternative=alternative,
                           seed=9)
    null, obs = res.null_distribution, res.statistic
    gamma = abs(100 * np.finfo(float).eps * obs)
    less = (np.count_nonzero(null <= obs + gamma) + 1) / 1000
    greater = (np.count_nonzero(null >= obs - gamma) + 1) / 1000
    want = {"less": less, "greater": greater,
            "two-sided": min(1.0, 2 * min(less, greater))}[alternative]
    assert res.pvalue == want


@pytest.mark.parametrize("case", list(BUILT_IN))
def test_results_do_not_depend_on_workers(case):
    permutation_type, statistic, _, make = BUILT_IN[case]
    data = make(np.random.default_rng(3), 300)
    runs = [permutation_test(data, statistic, permutation_type=permutation_type,
                             n_resamples=20 * BLOCK_SIZE - 3, seed=6, workers=w)
            for w in (1, 2, 3)]
    for res in runs[1:]:
        np.testing.assert_array_equal(res.null_distribution, runs[0].null_distribution)
        assert res.pvalue == runs[0].pvalue


def test_split_blocks_give_the_whole():
    x, y = RNG.normal(size=50), RNG.normal(size=60)
    plan = _plan((x, y), "t", "independent", None, 10 * BLOCK_SIZE, None, "two-sided", 0, 8)
    parts = [null_blocks(plan, a, b, 1) for a, b in ((0, 3), (3, 4), (4, 10))]
    np.testing.assert_array_equal(np.concatenate(parts),
                                  permutation_test((x, y), "t", n_resamples=10 * BLOCK_SIZE,
                                                   seed=8).null_distribution)


def test_callable_axis_and_not_vectorized():
    x = RNG.normal(size=(3, 20))
    y = RNG.normal(size=(3, 25))
    res = permutation_test((x.T, y.T), _mean_diff, n_resamples=500, seed=1, axis=0)
    assert res.null_distribution.shape == (500, 3)
    assert res.statistic.shape == (3,)
    for k in range(3):
        one = permutation_test((x[k], y[k]), "mean_diff", n_resamples=500, seed=1)
        np.testing.assert_allclose(res.null_distribution[:, k], one.null_distribution,
                                   rtol=1e-12, atol=1e-14)
    slow = permutation_test((x[0], y[0]), lambda a, b: np.mean(a) - np.mean(b),
                            n_resamples=130, seed=1)
    np.testing.assert_allclose(slow.null_distribution,
                               res.null_distribution[:130, 0], rtol=1e-12, atol=1e-14)


def test_memory_is_bounded_by_the_batch():
    x, y = RNG.normal(size=2000), RNG.normal(size=2000)
    n = 50_000
    tracemalloc.start()
    try:
        permutation_test((x, y), "mean_diff", n_resamples=n, seed=1, workers=2)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        permutation_test((x, y), _mean_diff, n_resamples=n, seed=1, batch=256)
        _, peak_callable = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = 8 * n
    assert peak < out + 10 * 8 * 4000
    assert peak_callable < out + 8 * 256 * 4000 * 4


def test_ctrl_c_stops_a_long_call(assert_interruptible):
    x, y = RNG.normal(size=200_000), RNG.normal(size=200_000)
    expected = permutation_test((x[:100], y[:100]), n_resamples=300, seed=1)

    def small():
        res = permutation_test((x[:100], y[:100]), n_resamples=300, seed=1, workers=2)
        np.testing.assert_array_equal(res.null_distribution, expected.null_distribution)

    assert_interruptible(lambda: permutation_test((x, y), "median_diff", n_resamples=10**6,
                                                  seed=0, workers=2), small, delay=0.5)


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs, error, name", [
    ({"data": (np.arange(5.0),)}, ValueError, "data"),
    ({"data": (np.arange(5.0), [1.0])}, ValueError, "data[1]"),
    ({"data": (np.arange(5.0), [1.0, np.nan])}, ValueError, "data[1]"),
    ({"data": (np.arange(5.0), np.ones(3, complex))}, TypeError, "data[1]"),
    ({"statistic": "mean"}, ValueError, "statistic"),
    ({"statistic": 3}, TypeError, "statistic"),
    ({"permutation_type": "paired"}, ValueError, "permutation_type"),
    ({"permutation_type": "pairings"}, ValueError, "statistic"),
    ({"alternative": "both"}, ValueError, "alternative"),
    ({"n_resamples": 0}, ValueError, "n_resamples"),
    ({"n_resamples": 2.5}, TypeError, "n_resamples"),
    ({"n_resamples": 2**61}, ValueError, "n_resamples"),
    ({"batch": 0}, ValueError, "batch"),
    ({"vectorized": True}, ValueError, "vectorized"),
    ({"axis": 1}, ValueError, "axis"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"workers": 0}, ValueError, "workers"),
])
def test_bad_input_names_the_argument(kwargs, error, name):
    base = {"data": (np.arange(5.0), np.arange(6.0)), "n_resamples": 100, "seed": 1}
    with pytest.raises(error, match=name.replace("[", r"\[").replace("]", r"\]")):
        permutation_test(**{**base, **kwargs})


def test_bad_input_of_callables():
    x = np.arange(5.0)
    with pytest.raises(ValueError, match="same length"):
        permutation_test((x, x[:4]), _mean_diff, permutation_type="pairings")
    with pytest.raises(ValueError, match="permutation_type"):
        permutation_test((x,), lambda a, axis: np.mean(a, axis=axis))
    with pytest.raises(ValueError, match="statistic"):
        permutation_test((x, x + 1), lambda a, b, axis: np.ones(3), n_resamples=100, seed=1)
    with pytest.raises(TypeError, match="axis"):
        permutation_test((x, x + 1), lambda a, b: 0.0, vectorized=True)


def test_public_names():
    assert fastkern.permutation_test is permutation_test
    assert fastkern.resampling.permutation_test is permutation_test


@pytest.mark.parametrize("permutation_type, statistic", [
    ("independent", "mean_diff"), ("independent", "median_diff"), ("pairings", "pearsonr"),
    ("samples", "mean_diff")])
def test_the_gil_is_released(permutation_type, statistic, assert_releases_gil):
    x, y = RNG.normal(size=20_000), RNG.normal(size=20_000)
    assert_releases_gil(lambda scale: lambda: permutation_test(
        (x, y), statistic, permutation_type=permutation_type, n_resamples=scale * BLOCK_SIZE,
        seed=0, workers=1))


@pytest.mark.parametrize("n, i0, m", [
    (10, 0, 9),                       # small bounds: no word is ever rejected
    (3 * 2**30, 5, 600),              # bounds near 2**31.6: a quarter of words rejected
    (2**32 + 7, 0, 300),              # bounds of 2**32 and above, then below
])
def test_shuffle_draws_match_numpy(n, i0, m):
    """The partners of Fisher-Yates steps i0..i0+m-1 equal rng.integers(i, n) for
    each step, drawn from block 0's stream, also where words are rejected (the
    exact path) and where bounds pass 2**32."""
    from fastkern import _permutation
    from fastkern._seeding import root_seed
    from fastkern.resampling._streams import block_streams
    root = root_seed(7)
    rng = np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (0,),
                               pool_size=root.pool_size)))
    expected = [int(rng.integers(i, n)) for i in range(i0, i0 + m)]
    assert _permutation._shuffle_draws(block_streams(root, 0, 1), n, i0, m) == expected
