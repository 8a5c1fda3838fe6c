"""Bootstrap confidence intervals with ``scipy.stats.bootstrap``'s results, computed
by compiled kernels that release the GIL, on several threads, reproducibly.

Resamples are cut into blocks of ``BLOCK_SIZE`` (64) and block ``b`` draws from its
own stream, so the result depends on the seed alone (see :func:`bootstrap`).
"""
import dataclasses

import numpy as np

from .. import _seeding
from .._validation import check_int
from .._workers import resolve_workers
from ._checks import (_as_samples, _batched_samples, _check_choice, _check_real,
                      _empty_distribution)
from ._statistics import _make_estimator
from ._streams import BLOCK_SIZE, block_streams, n_blocks
from .intervals import (ConfidenceInterval, DegenerateDataWarning, _interval,
                        _standard_error)

__all__ = ["BLOCK_SIZE", "BootstrapResult", "ConfidenceInterval", "DegenerateDataWarning",
           "bootstrap"]


@dataclasses.dataclass
class BootstrapResult:
    """Result of :func:`bootstrap`, with the fields of ``scipy.stats.BootstrapResult``.

    Attributes
    ----------
    confidence_interval : ConfidenceInterval
        The interval as a named tuple ``(low, high)``.
    bootstrap_distribution : ndarray, shape (n_resamples,)
        The statistic of every resample, in resample order.
    standard_error : float
        The standard deviation (``ddof=1``) of ``bootstrap_distribution``.
    """
    confidence_interval: ConfidenceInterval
    bootstrap_distribution: np.ndarray
    standard_error: float



_METHODS = ("percentile", "basic", "bca")
_ALTERNATIVES = ("two-sided", "less", "greater")
# More resamples than any machine can hold (2**63 bytes of float64): a larger
# n_resamples is an error before anything is allocated.
_MAX_RESAMPLES = 2**60


def bootstrap(data, statistic="mean", *, n_resamples=9999, confidence_level=0.95,
              method="BCa", alternative="two-sided", paired=False, axis=0, q=None, ddof=1,
              proportiontocut=None, batch=None, vectorized=None, bootstrap_result=None,
              seed=None, workers=None):
    """Bootstrap confidence interval of a statistic, as ``scipy.stats.bootstrap``.

    Each of ``n_resamples`` resamples draws, with replacement, as many observations
    from each sample as it holds (pairs of observations when ``paired``), and the
    statistic of every resample forms the bootstrap distribution.  For the built-in
    statistics this runs in compiled code without the GIL, on ``workers`` threads,
    and no resample is ever stored.  Given the same distribution, the interval is
    the one ``scipy.stats.bootstrap(..., n_resamples=0, bootstrap_result=res)``
    computes.

    Parameters
    ----------
    data : array_like or sequence of array_like
        One sample (an array) or a sequence of samples such as ``(x, y)``.  Each
        sample needs at least two observations along ``axis``, all finite; values
        are computed in float64 (float32 samples are read as they are).
    statistic : str or callable, optional
        A built-in statistic, computed on every resample without materialising it:

        - one sample: ``"mean"`` (default), ``"median"``, ``"quantile"`` (with ``q``),
          ``"var"`` and ``"std"`` (with ``ddof``), ``"trimmed_mean"`` (with
          ``proportiontocut``, as ``scipy.stats.trim_mean``);
        - two samples ``(x, y)``: ``"mean_diff"`` (``mean(x) - mean(y)``) and
          ``"pearsonr"`` (Pearson's r; needs ``paired=True``).

        Or a callable ``statistic(*samples, axis=-1)`` vectorised over the trailing
        axis (scipy's ``vectorized=True`` form): it receives the resamples of a
        batch stacked along axis 0 and returns one value per resample.  Its
        resample indices are drawn in compiled code, a bounded batch at a time.
        A callable ``statistic(*samples)`` that takes one resample and returns
        one value works too (``vectorized=False``), called once per resample.
    n_resamples : int, optional
        Number of resamples (default 9999), at most 2**60.  May be 0 when
        ``bootstrap_result`` is given, to recompute the interval only.  The
        ``bootstrap_distribution`` is allocated before any work is done.
    confidence_level : float, optional
        Confidence level of the interval, in (0, 1).  Default 0.95.
    method : {"BCa", "percentile", "basic"}, optional
        Bias-corrected and accelerated (default), percentile, or basic ("reverse
        percentile") interval, as defined by scipy; case-insensitive.
    alternative : {"two-sided", "less", "greater"}, optional
        ``"less"`` gives ``low = -inf``, ``"greater"`` gives ``high = inf``, with the
        other end at ``confidence_level``, as in scipy.
    paired : bool, optional
        Resample observations of all samples together (pairs), rather than each
        sample independently.  All samples must then have the same length.
    axis : int, optional
        The axis of each sample that holds its observations (default 0).  Samples
        of more than one dimension give one bootstrap per element of their other
        axes, broadcast against each other, as in scipy; every one of them draws
        the same resample indices (it has the same seed), and the result's fields
        are arrays of that shape (``bootstrap_distribution`` with the resamples
        last).
    q : float, optional
        Probability in [0, 1] of ``"quantile"`` (NumPy's default "linear" method).
    ddof : float, optional
        Delta degrees of freedom of ``"var"`` and ``"std"`` (default 1: the sample
        variance); ``0 <= ddof < n``.
    proportiontocut : float, optional
        Fraction in [0, 0.5) cut from each end for ``"trimmed_mean"``.
    batch : int, optional
        Resamples per call of a callable statistic.  By default, as many as keep
        the batch's indices under 32 MiB.  Ignored for built-in statistics.
    vectorized : bool, optional
        Whether a callable statistic is vectorised (takes ``axis``).  ``None``
        (default) decides as scipy does: vectorised if its signature has an
        ``axis`` parameter.  A statistic that is not vectorised is called from
        Python once per resample (and once per left-out observation for BCa),
        holding the GIL, so it is no faster than scipy's own loop; only the
        indices are drawn in compiled code.
    bootstrap_result : BootstrapResult, optional
        A previous result whose ``bootstrap_distribution`` the new resamples are
        appended to.  The new resamples are drawn from ``seed`` as usual, so give
        a different seed than for the previous result.
    seed : None, int, sequence of ints, numpy.random.SeedSequence or numpy.random.Generator, optional
        Source of randomness.  Resample ``r`` belongs to block
        ``b = r // BLOCK_SIZE``, and block ``b`` draws from
        ``PCG64(root.spawn(n_blocks)[b])``, where ``root`` is
        ``SeedSequence(seed)`` for None (fresh entropy), an int or a sequence of
        ints, a copy of a SeedSequence (the caller's is not advanced: the same one
        gives the same result), and for a Generator ``g``,
        ``SeedSequence(g.integers(0, 2**64, size=4, dtype=np.uint64).tolist())``
        (this advances ``g``).  Within a block, each resample in turn draws
        ``Generator.integers(0, n, size=n)`` from the block's generator for each
        sample (one draw of ``n`` indices for paired samples); see Notes.
    workers : int, optional
        Threads to use; ``None`` uses the default (see :func:`fastkern.set_workers`),
        negative values count back from the number of CPUs.  A call starts no more
        threads than it has blocks of resamples, nor more than 4 per CPU, and
        one in a process made by ``fork()``.  The result does
        not depend on it.

    Returns
    -------
    res : BootstrapResult
        ``confidence_interval`` (named tuple ``low``, ``high``),
        ``bootstrap_distribution`` (float64, shape ``(n_resamples,)``, after the
        previous result's when one is given) and ``standard_error``.

    Raises
    ------
    ValueError
        For an empty sample, a sample with one observation, NaN or infinite
        values, an ``axis`` out of range, samples whose other axes do not
        broadcast together, paired samples of different lengths, a
        number of samples the statistic does not take, an unknown statistic,
        method or alternative, ``n_resamples < 1`` without ``bootstrap_result``
        or above 2**60, ``confidence_level`` outside (0, 1), ``q``, ``ddof``,
        ``proportiontocut`` or ``batch`` out of range, or ``workers`` of 0, at
        least 2**31, or below minus the number of CPUs.
    TypeError
        For arguments of the wrong type, such as complex data or a seed that is
        not one of the accepted kinds.
    MemoryError
        When the ``bootstrap_distribution`` of ``n_resamples`` cannot be allocated.
    KeyboardInterrupt
        On Ctrl-C: a long call stops within a fraction of a second, frees what
        it allocated, and the next call works.

    Warns
    -----
    DegenerateDataWarning
        When the interval is NaN, for example BCa on a distribution with all
        resamples equal, as scipy does.

    See Also
    --------
    scipy.stats.bootstrap

    Notes
    -----
    The BCa acceleration uses the jackknife.  For the built-in statistics it is
    computed from leave-one-out formulas (sums, or the sorted sample for median,
    quantile and trimmed mean) in O(n log n) time and O(n) memory; a callable is
    evaluated on the n leave-one-out samples in batches, O(n**2) work as in scipy.

    Indices are drawn exactly as NumPy draws them (by a compiled copy of its PCG64
    and of its bounded-integer method), so for the default one sample of length
    ``n``, block ``b`` is reproduced by::

        children = np.random.SeedSequence(seed).spawn(n_blocks)
        rng = np.random.Generator(np.random.PCG64(children[b]))
        for r in range(BLOCK_SIZE):
            theta[b * BLOCK_SIZE + r] = statistic(x[rng.integers(0, n, size=n)])

    Built-in statistics are computed in float64: ``mean``, ``var`` and friends from
    sums of values (less the sample mean for ``var``, ``std`` and ``pearsonr``)
    scaled by a power of two, which is exact and keeps the sums in range, so data
    near 1e-300 or 1e300 give the statistic of data near 1 times their scale;
    ``median``, ``quantile`` and ``trimmed_mean`` exactly from order statistics,
    with NumPy's interpolation.

    References
    ----------
    .. [1] B. Efron and R. J. Tibshirani, "An Introduction to the Bootstrap",
       Chapman & Hall/CRC, 1993 (BCa: sections 14.3 and 22.6).

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> x = np.random.default_rng(0).poisson(4.0, size=1000)
    >>> res = fastkern.bootstrap(x, "mean", n_resamples=2000, seed=1)
    >>> res.bootstrap_distribution.shape
    (2000,)
    >>> bool(res.confidence_interval.low < x.mean() < res.confidence_interval.high)
    True
    >>> res2 = fastkern.bootstrap(x, "median", method="percentile", seed=1, workers=1)
    >>> res3 = fastkern.bootstrap(x, "median", method="percentile", seed=1, workers=2)
    >>> bool(np.array_equal(res2.bootstrap_distribution, res3.bootstrap_distribution))
    True
    """
    options = dict(statistic=statistic, n_resamples=n_resamples,
                   confidence_level=confidence_level, method=method, alternative=alternative,
                   paired=paired, q=q, ddof=ddof, proportiontocut=proportiontocut, batch=batch,
                   vectorized=vectorized)
    batched = _batched_samples(data, axis)
    if batched is None:
        return _bootstrap_1d(data, bootstrap_result, seed, workers, options)

    samples, shape, is_sequence = batched
    previous = _previous_distribution(bootstrap_result, shape)
    root = _seeding.root_seed(seed)  # once: every element draws the same indices
    low, high, standard_error = (np.empty(shape) for _ in range(3))
    dist = None
    for index in np.ndindex(*shape):
        one = [s[index] for s in samples]
        prior = None if previous is None else BootstrapResult(None, previous[index], None)
        plan = _plan(one if is_sequence else one[0], bootstrap_result=prior, seed=root,
                     **options)
        if dist is None:  # once the first plan has checked every argument
            dist = _empty_distribution((*shape, _total_resamples(plan)))
        res = _run(plan, workers, dist[index])
        low[index], high[index] = res.confidence_interval
        standard_error[index] = res.standard_error
    return BootstrapResult(confidence_interval=ConfidenceInterval(low, high),
                           bootstrap_distribution=dist, standard_error=standard_error)


def _bootstrap_1d(data, bootstrap_result, seed, workers, options):
    """bootstrap() for samples of one dimension."""
    plan = _plan(data, bootstrap_result=bootstrap_result, seed=seed, **options)
    return _run(plan, workers, _empty_distribution(_total_resamples(plan)))


def _total_resamples(plan):
    """Length of a plan's bootstrap_distribution: the previous resamples and its own."""
    return plan.n_resamples + (0 if plan.previous is None else plan.previous.size)


def _run(plan, workers, out):
    """Resample a plan into out, after its previous distribution, and finish."""
    first = out.size - plan.n_resamples
    if plan.previous is not None:
        out[:first] = plan.previous
    resample_blocks(plan, 0, plan.n_blocks, workers, out=out[first:])
    return _result(plan, out)


@dataclasses.dataclass
class _Plan:
    """A validated bootstrap call: what to resample, and how to finish."""
    estimator: object
    n_resamples: int
    n_blocks: int
    root: np.random.SeedSequence
    confidence_level: float
    method: str
    alternative: str
    previous: object  # the distribution of bootstrap_result, or None


def _plan(data, statistic, n_resamples, confidence_level, method, alternative, paired, q,
          ddof, proportiontocut, batch, bootstrap_result, seed, vectorized=None):
    samples, names = _as_samples(data)
    estimator = _make_estimator(statistic, samples, names, paired, q, ddof,
                                proportiontocut, batch, vectorized)
    n_resamples = _check_n_resamples(n_resamples, bootstrap_result)
    confidence_level = _check_real(confidence_level, "confidence_level")
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    method = _check_choice(method, "method", _METHODS, "'BCa', 'percentile' or 'basic'")
    alternative = _check_choice(alternative, "alternative", _ALTERNATIVES,
                                "'two-sided', 'less' or 'greater'")
    previous = _previous_distribution(bootstrap_result)
    return _Plan(estimator, n_resamples, n_blocks(n_resamples), _seeding.root_seed(seed),
                 confidence_level, method, alternative, previous)


def resample_blocks(plan, first, stop, workers, out=None):
    """The bootstrap distribution of blocks first..stop-1 of a plan, shape
    (resamples in those blocks,): any split of the blocks gives the same values,
    so that the blocks can be spread over processes or machines.

    ``workers`` is resolved here, where the blocks run, and bounded by their
    number; ``out``, if given, receives the values (and is returned).
    """
    n = min(stop * BLOCK_SIZE, plan.n_resamples) - first * BLOCK_SIZE
    n_threads = resolve_workers(workers, units=stop - first)
    dist = _empty_distribution(max(n, 0)) if out is None else out
    if n > 0:
        streams = block_streams(plan.root, first, stop)
        plan.estimator.resample(streams, dist, n_threads)
    return dist


def finish(plan, parts):
    """The BootstrapResult from the distributions of consecutive block ranges."""
    parts = ([] if plan.previous is None else [plan.previous]) + list(parts)
    return _result(plan, np.concatenate(parts) if parts else np.empty(0))


def _result(plan, dist):
    """The BootstrapResult of a plan whose whole distribution is dist."""
    theta_hat = plan.estimator.observed()
    jackknife = plan.estimator.jackknife() if plan.method == "bca" else None
    low, high = _interval(dist, theta_hat, jackknife, plan.confidence_level, plan.method,
                          plan.alternative)
    return BootstrapResult(confidence_interval=ConfidenceInterval(low, high),
                           bootstrap_distribution=dist,
                           standard_error=_standard_error(dist))


bootstrap.BLOCK_SIZE = BLOCK_SIZE  # also reachable as fastkern.bootstrap.BLOCK_SIZE


def _check_n_resamples(n_resamples, bootstrap_result):
    n_resamples = check_int(n_resamples, "n_resamples")
    low = 0 if bootstrap_result is not None else 1
    if n_resamples < low:
        raise ValueError(f"n_resamples must be at least 1 (or 0 to reuse a "
                         f"bootstrap_result), got {n_resamples}")
    if n_resamples > _MAX_RESAMPLES:
        raise ValueError(f"n_resamples must be at most {_MAX_RESAMPLES} (2**60), got "
                         f"{n_resamples}")
    return n_resamples


def _previous_distribution(bootstrap_result, shape=()):
    """The distribution of bootstrap_result, of shape shape + (resamples,)."""
    if bootstrap_result is None:
        return None
    dist = getattr(bootstrap_result, "bootstrap_distribution", None)
    if dist is None:
        raise TypeError("bootstrap_result must have a bootstrap_distribution, got "
                        f"{type(bootstrap_result).__name__}")
    try:
        dist = np.asarray(dist)
        if dist.dtype.kind not in "biuf":
            raise TypeError(f"dtype {dist.dtype}")
        dist = dist.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"bootstrap_result.bootstrap_distribution must be an array of "
                        f"real numbers ({exc})") from None
    if dist.shape[:-1] != tuple(shape) or dist.ndim != len(shape) + 1:
        raise ValueError(f"bootstrap_result.bootstrap_distribution must have shape "
                         f"{(*shape, 'n')} (the resamples last), got {dist.shape}")
    return dist


