"""Tests of fastkern.gibbs and fastkern.gibbs_switchpoint.

Oracles: plain NumPy loops making the documented draws (exact reproduction), the
target density integrated numerically, and the exact posterior of the switchpoint
model, which has a closed form up to a sum over the T switchpoints.
"""
import doctest
import importlib
import math
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import integrate, special, stats

import fastkern
from fastkern import datasets
from fastkern.gibbs import gibbs, gibbs_switchpoint

gibbs_module = importlib.import_module("fastkern.gibbs")

YEARS, COUNTS = datasets.coal_mining_disasters()


# ---------------------------------------------------------------------------
# oracles

def chain_generators(seed, chains):
    """The documented Generator of each chain, for an int seed."""
    return [np.random.Generator(np.random.PCG64(child))
            for child in np.random.SeedSequence(seed).spawn(chains)]


def numpy_gibbs(n, thin, burn, rng):
    """The bivariate sampler as the docstring writes it, one NumPy call per draw."""
    x = y = 0.0
    out = np.empty((n, 2))
    for step in range(burn + n * thin):
        x = rng.standard_gamma(3.0) / (y * y + 4)
        y = 1 / (1 + x) + rng.standard_normal() / math.sqrt(2 * (1 + x))
        if step >= burn and (step - burn + 1) % thin == 0:
            out[(step - burn) // thin] = x, y
    return out


def _log(rate):
    return math.log(rate) if rate > 0 else -math.inf


def _xlogy(k, log_rate):
    return k * log_rate if k > 0 else 0.0


def numpy_switchpoint(counts, n, thin, burn, alpha, beta, rng):
    """The switchpoint sampler, sweep by sweep in the documented order."""
    counts = np.asarray(counts, dtype=np.float64)
    T = counts.size
    missing = [t for t in range(T) if math.isnan(counts[t])]
    D = [0 if math.isnan(v) else int(v) for v in counts]
    s, early, late = T // 2, alpha / beta, alpha / beta
    trace = {"switchpoint": np.empty(n, np.int64), "early_rate": np.empty(n),
             "late_rate": np.empty(n), "missing_counts": np.empty((n, len(missing)), np.int64)}
    for sweep in range(burn + n * thin):
        for t in missing:
            D[t] = int(rng.poisson(early if t < s else late))
        C = [0]
        for d in D:
            C.append(C[-1] + d)
        early = rng.standard_gamma(alpha + C[s]) / (beta + s)
        late = rng.standard_gamma(alpha + (C[T] - C[s])) / (beta + (T - s))
        log_early, log_late = _log(early), _log(late)
        L = [_xlogy(C[k], log_early) + _xlogy(C[T] - C[k], log_late) - k * early
             - (T - k) * late for k in range(T)]
        top = max(L)
        W, total, last = [], 0.0, s
        for k in range(T):
            w = math.exp(L[k] - top)
            if w > 0:
                last = k
            total += w
            W.append(total)
        u = rng.random() * total
        s = next((k for k in range(T) if W[k] > u), last)
        if sweep >= burn and (sweep - burn + 1) % thin == 0:
            i = (sweep - burn) // thin
            trace["switchpoint"][i] = s
            trace["early_rate"][i] = early
            trace["late_rate"][i] = late
            trace["missing_counts"][i] = [D[t] for t in missing]
    return trace


def exact_switchpoint_posterior(counts, alpha, beta):
    """p(s | observed counts), E[early], E[late] and E[missing counts], exactly.

    Integrating the rates out of the conjugate model gives
    p(s | D) ~ G(alpha + C_s, beta + m_s) G(alpha + C_T - C_s, beta + m_T - m_s),
    G(a, b) = Gamma(a) / b**a, with C_s the observed events and m_s the observed
    years before s; a missing year drops out of the likelihood, and its count's
    posterior mean is that of its rate.
    """
    counts = np.asarray(counts, dtype=np.float64)
    seen = ~np.isnan(counts)
    T = counts.size
    C = np.concatenate([[0.0], np.cumsum(np.where(seen, counts, 0.0))])
    m = np.concatenate([[0.0], np.cumsum(seen)])
    a1, b1 = alpha + C[:T], beta + m[:T]
    a2, b2 = alpha + C[T] - C[:T], beta + m[T] - m[:T]
    log_p = special.gammaln(a1) - a1 * np.log(b1) + special.gammaln(a2) - a2 * np.log(b2)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    early, late = a1 / b1, a2 / b2
    missing_mean = [np.sum(p * np.where(t < np.arange(T), early, late))
                    for t in np.flatnonzero(~seen)]
    return p, np.sum(p * early), np.sum(p * late), np.array(missing_mean)


def assert_mean_within_mc_error(samples, expected, n_se=5.0, what=""):
    """The mean of (chains, draws) samples is within n_se standard errors of
    `expected`, the standard error estimated from the spread of the chain means
    (independent chains, so autocorrelation within a chain is accounted for)."""
    chain_means = samples.reshape(samples.shape[0], -1).mean(axis=1)
    se = chain_means.std(ddof=1) / math.sqrt(chain_means.size)
    assert abs(chain_means.mean() - expected) <= n_se * se, \
        f"{what}: mean {chain_means.mean():.6g} vs exact {expected:.6g}, MC error {se:.2g}"
    return se


# ---------------------------------------------------------------------------
# the bivariate sampler

@pytest.mark.parametrize("n, thin, burn, chains", [(300, 1, 0, 1), (200, 3, 7, 3), (1, 5, 0, 2)])
def test_gibbs_reproduced_by_numpy_loop(n, thin, burn, chains):
    samples = gibbs(n, thin, chains=chains, burn=burn, seed=2024, workers=2)
    assert samples.shape == (chains, n, 2)
    assert samples.dtype == np.float64
    for c, rng in enumerate(chain_generators(2024, chains)):
        assert_array_equal(samples[c], numpy_gibbs(n, thin, burn, rng))


def test_gibbs_thin_and_burn_subsample_one_chain():
    full = gibbs(2 + 5 * 3, seed=11)[0]
    assert_array_equal(gibbs(5, 3, burn=2, seed=11)[0], full[2 + 3 - 1::3])


def test_gibbs_moments_match_numerical_integration():
    # The target is f(x, y) = x^2 exp(-x y^2 - y^2 + 2 y - 4 x) on x > 0: its
    # conditionals are x | y ~ Gamma(3, rate y^2 + 4), from x^2 exp(-x (y^2 + 4)),
    # and y | x ~ N(1/(1+x), 1/(2(1+x))), from exp(-(1 + x) y^2 + 2 y).
    def f(y, x):
        return x * x * np.exp(-x * y * y - y * y + 2 * y - 4 * x)

    def integral(g):
        return integrate.dblquad(lambda y, x: g(x, y) * f(y, x), 0, np.inf, -np.inf, np.inf,
                                 epsabs=1e-13, epsrel=1e-11)[0]

    moments = {"x": lambda x, y: x, "y": lambda x, y: y, "x^2": lambda x, y: x * x,
               "y^2": lambda x, y: y * y, "xy": lambda x, y: x * y}
    Z = integral(lambda x, y: 1.0)
    samples = gibbs(50_000, 2, chains=16, burn=100, seed=7)
    x, y = samples[..., 0], samples[..., 1]
    for name, g in moments.items():
        se = assert_mean_within_mc_error(g(x, y), integral(g) / Z, what=name)
        assert se < 2e-3  # the test has teeth


def test_gibbs_final_states_follow_the_marginal_of_x():
    # The last state of many short, independent chains: iid draws, so a KS test
    # is exact.  Integrating y out of f gives p(x) ~ x^2 e^{-4x} e^{1/(1+x)} / sqrt(1+x).
    def p(x):
        return x * x * np.exp(-4 * x + 1 / (1 + x)) / np.sqrt(1 + x)

    Z = integrate.quad(p, 0, np.inf)[0]
    x = np.sort(gibbs(1, 1, chains=2000, burn=50, seed=3)[:, 0, 0])
    cdf = np.cumsum([integrate.quad(p, a, b)[0] for a, b in zip(np.r_[0.0, x[:-1]], x)]) / Z
    assert stats.kstest(x, lambda v: np.interp(v, x, cdf)).pvalue > 1e-3


@pytest.mark.parametrize("workers", [1, 2, -1, None])
def test_gibbs_does_not_depend_on_workers(workers):
    expected = gibbs(500, 3, chains=5, burn=10, seed=99, workers=1)
    assert_array_equal(gibbs(500, 3, chains=5, burn=10, seed=99, workers=workers), expected)
    with fastkern.set_workers(2):
        assert_array_equal(gibbs(500, 3, chains=5, burn=10, seed=99), expected)


def test_gibbs_seeds():
    expected = gibbs(50, chains=3, seed=5)
    assert_array_equal(gibbs(50, chains=3, seed=np.random.SeedSequence(5)), expected)
    assert not np.array_equal(gibbs(50, chains=3, seed=6), expected)
    assert not np.array_equal(gibbs(50, chains=3), gibbs(50, chains=3))

    # a SeedSequence is copied, not advanced: the same one gives the same chains
    ss = np.random.SeedSequence(5)
    first, second = gibbs(50, seed=ss), gibbs(50, seed=ss)
    assert ss.n_children_spawned == 0
    assert_array_equal(first, second)
    # ... and a child SeedSequence seeds chains by its own spawn key
    child = np.random.SeedSequence(5).spawn(3)[2]
    assert not np.array_equal(gibbs(50, seed=child), first)

    # a Generator gives 256 bits of entropy, as documented, and advances
    rng = np.random.default_rng(8)
    entropy = np.random.default_rng(8).integers(0, 2**64, size=4, dtype=np.uint64).tolist()
    assert_array_equal(gibbs(50, chains=2, seed=rng),
                       gibbs(50, chains=2, seed=np.random.SeedSequence(entropy)))
    assert not np.array_equal(gibbs(50, chains=2, seed=rng),
                              gibbs(50, chains=2, seed=np.random.default_rng(8)))


def test_gibbs_empty():
    assert gibbs(0, chains=3, burn=5, seed=1).shape == (3, 0, 2)


# ---------------------------------------------------------------------------
# the switchpoint sampler

def assert_trace_equal(trace, expected, c):
    for key in ("switchpoint", "early_rate", "late_rate"):
        assert_array_equal(trace[key][c], expected[key], err_msg=key)
    if "missing_counts" in trace:
        assert_array_equal(trace["missing_counts"][c], expected["missing_counts"])


@pytest.mark.parametrize("case", ["coal", "coal with missing", "zeros at the ends"])
def test_switchpoint_reproduced_by_numpy_loop(case):
    if case == "coal":
        counts, alpha, beta = COUNTS, 1.0, 1.0
    elif case == "coal with missing":
        counts = COUNTS.astype(float)
        counts[[0, 39, 83, 110]] = np.nan
        alpha, beta = 2.5, 0.5
    else:  # tiny shapes: rates underflow to 0, exercising 0 * log(0)
        counts, alpha, beta = np.array([0, 0, 0, 5, 9, 0, 0, np.nan]), 1e-3, 1e-3
    n, thin, burn, chains = 150, 2, 5, 3
    trace = gibbs_switchpoint(counts, n, thin=thin, chains=chains, burn=burn, alpha=alpha,
                              beta=beta, seed=31, workers=2)
    assert trace["switchpoint"].dtype == np.int64
    assert trace["early_rate"].shape == trace["late_rate"].shape == (chains, n)
    assert ("missing_counts" in trace) == bool(np.isnan(np.asarray(counts, float)).any())
    for c, rng in enumerate(chain_generators(31, chains)):
        assert_trace_equal(trace, numpy_switchpoint(counts, n, thin, burn, alpha, beta, rng), c)


def test_switchpoint_posterior_on_coal_mining_disasters():
    p, early, late, _ = exact_switchpoint_posterior(COUNTS, 1.0, 1.0)
    trace = gibbs_switchpoint(COUNTS, 20_000, chains=8, burn=200, seed=1)
    s = trace["switchpoint"]
    # the known answer: the rate fell from about 3 to about 0.9 a year around 1890
    assert 1889 <= np.median(YEARS[s]) <= 1892
    assert abs(trace["early_rate"].mean() - 3.07) < 0.05
    assert abs(trace["late_rate"].mean() - 0.94) < 0.02
    # and the exact posterior, to Monte Carlo error
    assert_mean_within_mc_error(s, np.sum(p * np.arange(p.size)), what="switchpoint")
    assert_mean_within_mc_error(trace["early_rate"], early, what="early rate")
    assert_mean_within_mc_error(trace["late_rate"], late, what="late rate")
    frequencies = np.bincount(s.ravel(), minlength=p.size) / s.size
    assert 0.5 * np.abs(frequencies - p).sum() < 0.02


def test_switchpoint_missing_counts_are_imputed_from_the_posterior():
    counts = COUNTS.astype(float)
    counts[[10, 39, 83]] = np.nan
    masked = np.ma.masked_array(np.where(np.isnan(counts), -999, counts).astype(int),
                                mask=np.isnan(counts))
    trace = gibbs_switchpoint(counts, 20_000, chains=8, burn=200, alpha=2.0, beta=1.5, seed=4)
    same = gibbs_switchpoint(masked, 20_000, chains=8, burn=200, alpha=2.0, beta=1.5, seed=4)
    for key in trace:
        assert_array_equal(same[key], trace[key])
    imputed = trace["missing_counts"]
    assert imputed.shape == (8, 20_000, 3)
    assert imputed.min() >= 0

    p, early, late, missing_mean = exact_switchpoint_posterior(counts, 2.0, 1.5)
    assert_mean_within_mc_error(trace["switchpoint"], np.sum(p * np.arange(p.size)),
                                what="switchpoint")
    assert_mean_within_mc_error(trace["early_rate"], early, what="early rate")
    assert_mean_within_mc_error(trace["late_rate"], late, what="late rate")
    for k in range(3):
        assert_mean_within_mc_error(imputed[:, :, k], missing_mean[k], what=f"missing {k}")


def test_switchpoint_all_missing_samples_the_prior():
    trace = gibbs_switchpoint([np.nan] * 5, 4000, chains=8, alpha=3.0, beta=2.0, seed=9)
    assert_mean_within_mc_error(trace["early_rate"], 1.5, what="early rate")
    assert_mean_within_mc_error(trace["switchpoint"], 2.0, what="switchpoint")


@pytest.mark.parametrize("workers", [1, 2, -1, None])
def test_switchpoint_does_not_depend_on_workers(workers):
    counts = COUNTS.astype(float)
    counts[50] = np.nan
    kwargs = dict(thin=2, chains=5, burn=10, seed=12)
    expected = gibbs_switchpoint(counts, 300, workers=1, **kwargs)
    trace = gibbs_switchpoint(counts, 300, workers=workers, **kwargs)
    for key in expected:
        assert_array_equal(trace[key], expected[key])


def test_switchpoint_accepts_integer_float_and_list_counts():
    expected = gibbs_switchpoint(COUNTS, 50, seed=3)
    for counts in (COUNTS.astype(np.uint8), COUNTS.astype(np.float32), COUNTS.tolist()):
        trace = gibbs_switchpoint(counts, 50, seed=3)
        assert_array_equal(trace["switchpoint"], expected["switchpoint"])
    with_none = gibbs_switchpoint([1, None, 3], 5, seed=3)
    with_nan = gibbs_switchpoint([1, np.nan, 3], 5, seed=3)
    assert_array_equal(with_none["missing_counts"], with_nan["missing_counts"])


def test_switchpoint_single_count_and_empty_trace():
    assert_array_equal(gibbs_switchpoint([4], 10, seed=1)["switchpoint"], 0)
    trace = gibbs_switchpoint([1, np.nan], 0, chains=2, seed=1)
    assert trace["switchpoint"].shape == (2, 0)
    assert trace["missing_counts"].shape == (2, 0, 1)


# ---------------------------------------------------------------------------
# threads and the GIL

@pytest.mark.parametrize("sampler", ["gibbs", "gibbs_switchpoint"])
def test_gil_released(sampler, assert_releases_gil):
    if sampler == "gibbs":
        def make_call(scale):
            return lambda: gibbs(100, 100 * scale, workers=1, seed=1)
    else:
        def make_call(scale):
            return lambda: gibbs_switchpoint(COUNTS, 100, thin=scale, workers=1, seed=1)
    assert_releases_gil(make_call)


# Chains of 10**11 steps or sweeps: hours, in a few kilobytes.
@pytest.mark.parametrize("workers", [1, 2])
def test_gibbs_stops_on_ctrl_c(workers, assert_interruptible):
    expected = gibbs(10, chains=2, seed=1)
    assert_interruptible(lambda: gibbs(10**4, thin=10**7, chains=2, workers=workers, seed=1),
                         small=lambda: assert_array_equal(
                             gibbs(10, chains=2, seed=1, workers=workers), expected))


@pytest.mark.parametrize("workers", [1, 2])
def test_many_chains_stop_on_ctrl_c(workers, assert_interruptible):
    # a million chains, each of which would run for minutes
    assert_interruptible(lambda: gibbs(1, thin=10**9, chains=10**6, workers=workers, seed=1))
    assert_interruptible(lambda: gibbs_switchpoint(COUNTS, 1, thin=10**9, chains=10**5,
                                                   workers=workers, seed=1))


@pytest.mark.parametrize("workers", [1, 2])
def test_switchpoint_stops_on_ctrl_c(workers, assert_interruptible):
    counts = np.where(np.arange(COUNTS.size) % 10 == 0, np.nan, COUNTS)    # some missing
    expected = gibbs_switchpoint(counts, 10, chains=2, seed=1)

    def small():
        trace = gibbs_switchpoint(counts, 10, chains=2, seed=1, workers=workers)
        for name in expected:
            assert_array_equal(trace[name], expected[name])

    assert_interruptible(lambda: gibbs_switchpoint(counts, 10**4, thin=10**7, chains=2,
                                                   workers=workers, seed=1), small=small)


def test_concurrent_calls_from_threads():
    expected = [gibbs(2000, 5, chains=2, seed=s, workers=1) for s in range(4)]
    results = [None] * 4

    def run(s):
        results[s] = gibbs(2000, 5, chains=2, seed=s, workers=2)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r, e in zip(results, expected):
        assert_array_equal(r, e)


# ---------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n=-1), ValueError, "n must be"),
    (dict(n=2.0), TypeError, "n must be"),
    (dict(n=True), TypeError, "n must be"),
    (dict(thin=0), ValueError, "thin must be"),
    (dict(thin=1.5), TypeError, "thin must be"),
    (dict(chains=0), ValueError, "chains must be"),
    (dict(chains="2"), TypeError, "chains must be"),
    (dict(burn=-3), ValueError, "burn must be"),
    (dict(burn=None), TypeError, "burn must be"),
    (dict(workers=0), ValueError, "workers"),
    (dict(workers=1.5), TypeError, "workers"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(seed=np.random.RandomState(0)), TypeError, "seed"),
])
def test_bad_arguments(kwargs, error, match):
    args = dict(n=10) | kwargs
    with pytest.raises(error, match=match):
        gibbs(**args)
    with pytest.raises(error, match=match):
        gibbs_switchpoint(COUNTS, **args)


@pytest.mark.parametrize("kwargs, match", [
    (dict(thin=2**63), "thin must be at most 9223372036854775807"),
    (dict(burn=2**63), "burn must be at most 9223372036854775807"),
    (dict(burn=2**64, n=0), "burn must be at most 9223372036854775807"),
    (dict(n=2**63), "n must be at most 9223372036854775807"),
    (dict(chains=2**63), "chains must be at most 9223372036854775807"),
    (dict(n=2**40, thin=2**23), "burn \\+ n \\* thin"),
    (dict(n=1, thin=2**62, burn=2**62), "burn \\+ n \\* thin"),
])
def test_run_lengths_beyond_int64_name_the_argument(kwargs, match):
    args = dict(n=10) | kwargs
    with pytest.raises(ValueError, match=match):
        gibbs(**args)
    with pytest.raises(ValueError, match=match):
        gibbs_switchpoint(COUNTS, **args)


def test_too_many_chains_fail_before_any_work():
    # 2**40 chains: the trace cannot be allocated, so nothing is seeded or run
    with pytest.raises(MemoryError, match="chains"):
        gibbs_switchpoint([1, 2, 3], 1, chains=2**40)
    with pytest.raises(MemoryError, match="chains"):
        gibbs(1, chains=2**40)


def test_many_chains_of_no_samples_return_at_once():
    trace = gibbs_switchpoint(COUNTS, 0, chains=2**40, seed=1)
    assert trace["switchpoint"].shape == trace["late_rate"].shape == (2**40, 0)
    assert gibbs(0, chains=2**40, seed=1).shape == (2**40, 0, 2)


def test_chains_beyond_2_32_are_reproduced_by_numpy_loops():
    """Chain c draws from spawn key root.spawn_key + (c,), two words for c >= 2**32,
    from a root with a spawn key and a larger pool."""
    root = np.random.SeedSequence(8, spawn_key=(1, 2**33), pool_size=6)
    first = 2**32 - 1

    def rng(c):
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            root.entropy, spawn_key=root.spawn_key + (c,), pool_size=root.pool_size)))

    out = gibbs_module.bivariate_chains(root, first, first + 3, 50, 3, 7, 2)
    for k in range(3):
        assert_array_equal(out[k], numpy_gibbs(50, 3, 7, rng(first + k)))
    counts = np.where(np.arange(COUNTS.size) % 7 == 3, np.nan, COUNTS)
    data, missing = gibbs_module._as_counts(counts)
    trace = gibbs_module.switchpoint_chains(root, first, first + 3, data, missing, 40, 2, 5,
                                            1.0, 1.0, 2)
    for k in range(3):
        expected = numpy_switchpoint(counts, 40, 2, 5, 1.0, 1.0, rng(first + k))
        for name in expected:
            assert_array_equal(trace[name][k], expected[name])


@pytest.mark.parametrize("counts, error, match", [
    ([], ValueError, "empty"),
    ([[1, 2], [3, 4]], ValueError, "1-D"),
    (5, ValueError, "1-D"),
    ([1, -2, 3], ValueError, "non-negative"),
    ([1.0, 2.5], ValueError, "whole numbers"),
    ([1.0, np.inf], ValueError, "finite"),
    ([1, 2**60, 2**60], ValueError, "2\\*\\*53"),
    (["a", "b"], TypeError, "counts"),
    ([1j, 2j], TypeError, "counts"),
    ([True, False], TypeError, "counts"),
    ([1, "x", None], TypeError, "counts"),
])
def test_bad_counts(counts, error, match):
    with pytest.raises(error, match=match):
        gibbs_switchpoint(counts, 10)


@pytest.mark.parametrize("name", ["alpha", "beta"])
@pytest.mark.parametrize("value, error", [
    (0.0, ValueError), (-1.0, ValueError), (np.inf, ValueError), (np.nan, ValueError),
    ("1", TypeError), (None, TypeError), (True, TypeError), ([1.0], TypeError),
])
def test_bad_priors(name, value, error):
    with pytest.raises(error, match=name):
        gibbs_switchpoint(COUNTS, 10, **{name: value})


def test_too_vague_prior_is_an_error_not_a_hang():
    # beta tiny: the early rate of an empty early segment is ~ 1e300, more than
    # a Poisson draw can impute a count from
    with pytest.raises(FloatingPointError, match="too vague"):
        gibbs_switchpoint([np.nan, 0, 0], 100, alpha=1.0, beta=1e-300, chains=2, seed=0)


# ---------------------------------------------------------------------------
# the documentation

def test_coal_mining_disasters():
    years, counts = datasets.coal_mining_disasters()
    assert_array_equal(years, np.arange(1851, 1962))
    assert counts.dtype == np.int64 and counts.shape == (111,)
    assert counts.sum() == 191 and counts[:40].sum() == 125
    counts[0] = 100  # a fresh copy each call
    assert datasets.coal_mining_disasters().counts[0] == 4


@pytest.mark.parametrize("module", [gibbs_module, datasets])
def test_docstring_examples(module, monkeypatch):
    # the examples use the public names that fastkern/__init__.py exports
    monkeypatch.setattr(fastkern, "gibbs", gibbs, raising=False)
    monkeypatch.setattr(fastkern, "gibbs_switchpoint", gibbs_switchpoint, raising=False)
    monkeypatch.setattr(fastkern, "datasets", datasets, raising=False)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_demo_rows():
    from fastkern._demo.gibbs import workload
    from fastkern._report import Row

    rows = workload(quick=True)
    assert [r.kernel for r in rows] == ["gibbs", "gibbs_switchpoint"]
    for r in rows:
        assert isinstance(r, Row)
        assert min(r.t_ref, r.t_one, r.t_all) > 0
        assert r.max_diff == 0  # the references make the same draws
