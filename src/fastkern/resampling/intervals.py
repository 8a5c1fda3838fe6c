"""Bootstrap confidence intervals from a bootstrap distribution, with scipy's
definitions (scipy/stats/_resampling.py): percentile, basic and BCa."""
import collections
import math
import statistics as _pystats
import warnings

import numpy as np

ConfidenceInterval = collections.namedtuple("ConfidenceInterval", ["low", "high"])
ConfidenceInterval.__doc__ = "A confidence interval, as scipy's: ``low`` and ``high``."


class DegenerateDataWarning(RuntimeWarning):
    """The interval could not be computed (it is NaN), as for scipy's warning
    of the same name."""


def _ndtr(x):
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2)) if not math.isnan(x) else math.nan


def _ndtri(p):
    """Inverse of the standard normal CDF, -inf/inf at 0/1, NaN outside [0, 1]."""
    if 0 < p < 1:
        return _pystats.NormalDist().inv_cdf(p)
    return -math.inf if p == 0 else math.inf if p == 1 else math.nan


def _quantile(sorted_dist, p):
    """scipy.stats.quantile(dist, p) (method "linear"), NaN for p outside [0, 1]."""
    if not 0 <= p <= 1:
        return math.nan
    n = sorted_dist.size
    jg = p * n + (1 - p)
    jp1 = jg // 1
    j = jp1 - 1
    g = 0.0 if j < 0 else jg % 1
    j = int(min(max(j, 0), n - 1))
    jp1 = int(min(max(jp1, 0), n - 1))
    return (1 - g) * sorted_dist[j] + g * sorted_dist[jp1]


def _exponent(top):
    """e with top * 2**-e in [0.5, 1); 0 for 0, inf or NaN (nothing to scale)."""
    return math.frexp(top)[1] if math.isfinite(top) else 0


def _largest_magnitude(a):
    """max(abs(a)) as a float (NaN if a holds one), without a temporary array."""
    return max(float(np.max(a)), -float(np.min(a))) if a.size else 0.0


def _standard_error(dist):
    """np.std(dist, ddof=1), computed at a power-of-two scale (exact) where squared
    deviations would leave float64's range: the same value, without overflow."""
    e = _exponent(_largest_magnitude(dist))
    if abs(e) < 500:
        return np.std(dist, ddof=1)
    return np.ldexp(np.std(np.ldexp(dist, -e), ddof=1), e)


def _acceleration(jackknife):
    """BCa's acceleration from the leave-one-out values of each sample (Efron &
    Tibshirani 14.15, summed over samples as scipy does).

    The jackknife values, and then their deviations u, are scaled by common
    powers of two (exact) before u**3 and u**2 are summed: the acceleration does
    not change, but the sums stay within float64's range at any scale of the
    statistic.  NumPy scalars: a zero denominator gives inf or NaN, as in scipy.
    """
    e = _exponent(max(_largest_magnitude(t) for t in jackknife))
    us = []
    for theta_i in jackknife:
        t = np.ldexp(theta_i, -e)
        us.append((t.size - 1.0) * (np.mean(t) - t))
    e = _exponent(max(_largest_magnitude(u) for u in us))
    nums = dens = np.float64(0)
    for u in us:
        n = float(u.size)
        u = np.ldexp(u, -e)
        nums += np.sum(u**3) / n**3
        dens += np.sum(u**2) / n**2
    return 1 / 6 * nums / dens**1.5


def _bca_levels(dist, theta_hat, jackknife, alpha):
    """BCa's probability levels (Efron & Tibshirani 14.3 and 15.4, as scipy).

    NumPy scalars, not Python floats: a zero denominator must give inf or NaN, as
    in scipy, not raise.
    """
    below = np.count_nonzero(dist < theta_hat) + np.count_nonzero(dist <= theta_hat)
    z0 = np.float64(_ndtri(below / (2 * dist.size)))
    z_alpha = np.float64(_ndtri(alpha))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a_hat = _acceleration(jackknife)
        levels = []
        for z in (z_alpha, -z_alpha):
            num = z0 + z
            levels.append(_ndtr(z0 + num / (1 - a_hat * num)))
    return levels


def _interval(dist, theta_hat, jackknife, confidence_level, method, alternative):
    alpha = (1 - confidence_level) / 2 if alternative == "two-sided" else 1 - confidence_level
    if method == "bca":
        p_low, p_high = _bca_levels(dist, theta_hat, jackknife, alpha)
    else:
        p_low, p_high = alpha, 1 - alpha
    if np.isnan(dist).any():
        low = high = math.nan
    else:
        sorted_dist = np.sort(dist)
        low, high = _quantile(sorted_dist, p_low), _quantile(sorted_dist, p_high)
    if math.isnan(low) or math.isnan(high):
        warnings.warn(DegenerateDataWarning(
            "The BCa confidence interval cannot be calculated. This problem is known to "
            "occur when the distribution is degenerate or the statistic is np.min."),
            stacklevel=3)
    if method == "basic":
        low, high = 2 * theta_hat - high, 2 * theta_hat - low
    if alternative == "less":
        low = -math.inf
    elif alternative == "greater":
        high = math.inf
    return np.float64(low), np.float64(high)
