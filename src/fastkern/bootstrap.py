"""Bootstrap confidence intervals with ``scipy.stats.bootstrap``'s results, computed
by compiled kernels that release the GIL, on several threads, reproducibly.

Resamples are cut into blocks of ``BLOCK_SIZE`` (64) and block ``b`` draws from its
own stream, so the result depends on the seed alone (see :func:`bootstrap`).
"""
import collections
import dataclasses
import inspect
import math
import statistics as _pystats
import warnings

import numpy as np

from . import _bootstrap, _seeding
from ._bootstrap import Statistic
from ._validation import check_int, check_real
from ._workers import resolve_workers

__all__ = ["BLOCK_SIZE", "BootstrapResult", "ConfidenceInterval", "DegenerateDataWarning",
           "bootstrap"]

#: Resamples per block; block ``b`` holds resamples ``b * BLOCK_SIZE`` to
#: ``(b + 1) * BLOCK_SIZE - 1``.  Part of the seeding contract: it never changes.
BLOCK_SIZE = _bootstrap.BLOCK_SIZE

ConfidenceInterval = collections.namedtuple("ConfidenceInterval", ["low", "high"])
ConfidenceInterval.__doc__ = "A confidence interval, as scipy's: ``low`` and ``high``."


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


class DegenerateDataWarning(RuntimeWarning):
    """The interval could not be computed (it is NaN), as for scipy's warning
    of the same name."""


_ONE_SAMPLE = {"mean": Statistic.MEAN, "median": Statistic.MEDIAN,
               "quantile": Statistic.QUANTILE, "var": Statistic.VAR, "std": Statistic.STD,
               "trimmed_mean": Statistic.TRIMMED_MEAN}
_TWO_SAMPLE = {"mean_diff": Statistic.MEAN_DIFF, "pearsonr": Statistic.PEARSONR}
_METHODS = ("percentile", "basic", "bca")
_ALTERNATIVES = ("two-sided", "less", "greater")
# Index elements (int64) per batch of resamples of a callable statistic: 32 MiB.
_CALLABLE_BATCH_ELEMENTS = 1 << 22
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
    return _Plan(estimator, n_resamples, -(-n_resamples // BLOCK_SIZE), _seeding.root_seed(seed),
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
        streams = _bootstrap.BlockStreams(_seeding.root_words(plan.root), plan.root.pool_size,
                                          first, stop - first)
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


def _empty_distribution(shape):
    """An uninitialised float64 bootstrap_distribution, allocated before any work,
    so that too many resamples fail at once and say so."""
    try:
        return np.empty(shape, dtype=np.float64)
    except (MemoryError, ValueError):  # ValueError: beyond what an array can index
        shape = tuple(int(d) for d in np.atleast_1d(shape))
        raise MemoryError(f"n_resamples is too large: bootstrap_distribution of shape "
                          f"{shape} would take {8 * math.prod(shape) / 2**30:.3g} GiB"
                          ) from None


def _index_array(shape):
    """An uninitialised int64 array for the indices of a batch of resamples of a
    callable statistic; MemoryError naming batch if it cannot be allocated."""
    try:
        return np.empty(shape, dtype=np.int64)
    except (MemoryError, ValueError):
        raise MemoryError(f"batch is too large: the indices of {shape[0]} resamples of "
                          f"{shape[1]} observations would take "
                          f"{8 * shape[0] * shape[1] / 2**30:.3g} GiB; pass a smaller batch"
                          ) from None


bootstrap.BLOCK_SIZE = BLOCK_SIZE  # also reachable as fastkern.bootstrap.BLOCK_SIZE


# ---------------------------------------------------------------------------
# Argument checks

def _split_samples(data):
    """(the samples in data, their names for messages): a sequence of array-likes
    is several samples, anything else one."""
    if isinstance(data, (tuple, list)) and data and all(_is_array_like(s) for s in data):
        return list(data), [f"data[{k}]" for k in range(len(data))]
    return [data], ["data"]


def _as_samples(data):
    """data as a list of 1-D, finite, contiguous float32/float64 arrays, with names."""
    raw, names = _split_samples(data)
    samples = []
    for s, name in zip(raw, names):
        try:
            a = np.asarray(s)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a 1-D array of numbers ({exc})") from None
        if a.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got dtype {a.dtype}")
        if a.dtype.kind in "USVMm":  # text, bytes, records, dates: not numbers
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.dtype.kind not in "biuf":
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}") from None
            except OverflowError:  # Python ints beyond float64
                raise ValueError(f"{name} holds a number beyond float64's range") from None
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array (or data a sequence of 1-D "
                             f"samples), got an array of shape {a.shape}")
        if a.size == 0:
            raise ValueError(f"{name} must not be empty")
        if a.size < 2:
            raise ValueError(f"{name} must hold at least two observations, got {a.size}")
        if a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            i = int(np.argmin(finite))
            what = "NaN" if np.isnan(a[i]) else "an infinite value"
            raise ValueError(f"{name} contains {what} (at index {i}); remove or impute "
                             f"it first")
        # the kernels load whole values: an unaligned buffer (bytes from a pickle,
        # a network frame) is copied
        a = np.ascontiguousarray(a)
        samples.append(a if a.flags.aligned else a.copy())
    return samples, names


def _is_array_like(s):
    try:
        return np.ndim(s) >= 1
    except (TypeError, ValueError):  # ragged nesting
        return True


def _check_real(value, name):
    value = check_real(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_flag(value, name, none=False):
    """value as a bool: True, False (or 1, 0), or None where none is allowed."""
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True{', False or None' if none else ' or False'}, "
                    f"got {value!r}")


def _check_choice(value, name, choices, spelled):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {spelled}; got {value!r}")
    if value.lower() not in choices:
        raise ValueError(f"{name} must be one of {spelled}; got {value!r}")
    return value.lower()


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


def _batched_samples(data, axis):
    """None for samples of one dimension (checked against axis); else the samples
    with their observations moved last and the other axes broadcast together,
    their common shape, and whether data was a sequence of samples."""
    raw, names = _split_samples(data)
    is_sequence = names != ["data"]
    try:
        arrays = [np.asarray(s) for s in raw]
    except (TypeError, ValueError):
        return None  # ragged: _as_samples says what is wrong
    axis = check_int(axis, "axis")
    for a, name in zip(arrays, names):
        if a.ndim >= 1 and not -a.ndim <= axis < a.ndim:
            raise ValueError(f"axis {axis} is out of range for {name} of shape {a.shape}")
    if all(a.ndim <= 1 for a in arrays):
        return None
    if any(a.ndim == 0 for a in arrays):
        return None  # _as_samples says what is wrong
    moved = [np.moveaxis(a, axis, -1) for a in arrays]
    for a, name in zip(arrays, names):
        if a.size == 0:
            raise ValueError(f"{name} must not be empty, got shape {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            i = np.unravel_index(int(np.argmin(np.isfinite(a))), a.shape)
            what = "NaN" if np.isnan(a[i]) else "an infinite value"
            raise ValueError(f"{name} contains {what} (at index {tuple(map(int, i))}); "
                             f"remove or impute it first")
    try:
        shape = np.broadcast_shapes(*(a.shape[:-1] for a in moved))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"the samples' axes other than axis={axis} must broadcast "
                         f"together; got shapes {shapes}") from None
    samples = [np.broadcast_to(a, (*shape, a.shape[-1])) for a in moved]
    return samples, shape, is_sequence


# ---------------------------------------------------------------------------
# Estimators: the distribution, the observed statistic and the jackknife

def _make_estimator(statistic, samples, names, paired, q, ddof, proportiontocut, batch,
                    vectorized=None):
    paired = _check_flag(paired, "paired")
    vectorized = _check_flag(vectorized, "vectorized", none=True)
    if paired and len({s.size for s in samples}) > 1:
        sizes = ", ".join(f"{name} has {s.size}" for name, s in zip(names, samples))
        raise ValueError(f"paired samples must have the same length; {sizes}")
    if callable(statistic):
        for value, name in ((q, "q"), (proportiontocut, "proportiontocut")):
            if value is not None:
                raise ValueError(f"{name} is only used by the built-in statistics")
        return _CallableStatistic(statistic, samples, paired, batch, vectorized)
    if vectorized is not None:
        raise ValueError("vectorized is only used by a callable statistic")
    if not isinstance(statistic, str):
        raise TypeError(f"statistic must be a string or a callable, got {statistic!r}")
    if statistic in _ONE_SAMPLE:
        kind, wanted = _ONE_SAMPLE[statistic], 1
    elif statistic in _TWO_SAMPLE:
        kind, wanted = _TWO_SAMPLE[statistic], 2
    else:
        known = ", ".join(repr(s) for s in [*_ONE_SAMPLE, *_TWO_SAMPLE])
        raise ValueError(f"statistic must be a callable or one of {known}; "
                         f"got {statistic!r}")
    if len(samples) != wanted:
        raise ValueError(f"statistic={statistic!r} takes {wanted} sample(s) "
                         f"({'data=(x, y)' if wanted == 2 else 'data=x'}), "
                         f"got {len(samples)}")
    if kind == Statistic.PEARSONR and not paired:
        raise ValueError("statistic='pearsonr' resamples (x, y) pairs: pass paired=True")
    if batch is not None:
        _check_batch(batch)
    if q is not None and kind != Statistic.QUANTILE:
        raise ValueError(f"q is only used with statistic='quantile', not {statistic!r}")
    if proportiontocut is not None and kind != Statistic.TRIMMED_MEAN:
        raise ValueError("proportiontocut is only used with statistic='trimmed_mean', "
                         f"not {statistic!r}")

    n = samples[0].size
    if kind == Statistic.QUANTILE:
        if q is None:
            raise ValueError("statistic='quantile' needs q, a probability in [0, 1]")
        q = _check_real(q, "q")
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        return _OrderStatistic(kind, samples[0], q)
    if kind == Statistic.TRIMMED_MEAN:
        if proportiontocut is None:
            raise ValueError("statistic='trimmed_mean' needs proportiontocut, a fraction "
                             "in [0, 0.5)")
        p = _check_real(proportiontocut, "proportiontocut")
        if not 0 <= p < 0.5:
            raise ValueError(f"proportiontocut must be in [0, 0.5), got {p!r}")
        return _OrderStatistic(kind, samples[0], p)
    if kind == Statistic.MEDIAN:
        return _OrderStatistic(kind, samples[0], None)
    if kind in (Statistic.VAR, Statistic.STD):
        ddof = _check_real(ddof, "ddof")
        if not 0 <= ddof < n:
            raise ValueError(f"ddof must be in [0, n) for a sample of n = {n}, got "
                             f"{ddof!r}")
    return _MomentStatistic(kind, samples, paired, float(ddof) if kind in
                            (Statistic.VAR, Statistic.STD) else 0.0)


def _check_batch(batch):
    return check_int(batch, "batch", 1)


class _KernelArrays:
    """Base of the estimators whose arrays the kernels read.  Unpickled, as a Dask
    worker does, an array may lie unaligned in the message it came in; the kernels
    load whole values, so such arrays are copied (once each: x stays y's object)."""

    def __setstate__(self, state):
        copies = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray) and not value.flags.aligned:
                state[key] = copies.setdefault(id(value), value.copy())
        self.__dict__.update(state)


class _MomentStatistic(_KernelArrays):
    """mean, var, std, mean_diff, pearsonr: from sums of prepared values (_summands)."""

    def __init__(self, kind, samples, paired, ddof):
        self.kind, self.paired, self.ddof = kind, paired, ddof
        centre = kind in (Statistic.VAR, Statistic.STD, Statistic.PEARSONR)
        prepared = [_summands(s, centre) for s in samples]
        (x, self.ex), (y, self.ey) = prepared[0], prepared[-1]   # y is x for one sample
        dtype = np.result_type(x, y)     # the kernels take x and y of one type
        self.x = x.astype(dtype, copy=False)
        self.y = self.x if y is x else y.astype(dtype, copy=False)

    def _args(self):
        return (self.kind, self.x, self.y, self.ex, self.ey, self.ddof, self.paired)

    def resample(self, streams, out, n_threads):
        _bootstrap.resample_moments(streams, *self._args(), out, n_threads)

    def observed(self):
        return _bootstrap.sample_moments(*self._args())

    def jackknife(self):
        two = self.kind == Statistic.MEAN_DIFF and not self.paired
        out_x = np.empty(self.x.size)
        out_y = np.empty(self.y.size if two else 0)
        _bootstrap.jackknife_moments(*self._args(), out_x, out_y)
        return [out_x, out_y] if two else [out_x]


def _summands(a, centre):
    """(values, e): the values whose sums give a moment statistic of sample a, and
    the power of two they are scaled by, values = (a - mean(a) if centre else a)
    * 2**-e.

    Scaling by a power of two is exact, so the statistic scaled back by 2**e is
    the one of a itself, only no sum overflows or underflows: data near 1e155
    have squares beyond float64's range, and data near 1e-170 squares below it.
    Centred values (var, std, pearsonr: sums of squares) are brought to a
    largest magnitude in [0.5, 1), after centring in that scale too (so that
    a - mean(a) cannot overflow); plain values (means) are scaled only where
    their sum could overflow, and are otherwise a itself, float32 included.
    """
    top = float(np.max(np.abs(a)))
    if not centre and top <= np.finfo(np.float64).max / a.size:
        return a, 0
    e = math.frexp(top)[1]                        # top * 2**-e in [0.5, 1)
    values = np.ldexp(a, -e, dtype=np.float64)
    if centre:
        values -= np.mean(values)
        spread = math.frexp(float(np.max(np.abs(values))))[1]
        np.ldexp(values, -spread, out=values)
        e += spread
    return values, e


class _OrderStatistic(_KernelArrays):
    """median, quantile, trimmed_mean: from the sorted distinct values."""

    def __init__(self, kind, x, param):
        self.kind, self.param = kind, param
        values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        self.values = values.astype(np.float64)
        self.inverse = inverse.astype(np.int64, copy=False)
        self.counts = counts.astype(np.int64, copy=False)

    def _ranks(self, n):
        """(lo, hi, gamma) of _bootstrap._order_statistic for a sample of n."""
        if self.kind == Statistic.MEDIAN:
            return (n - 1) // 2, n // 2, 0.0
        if self.kind == Statistic.TRIMMED_MEAN:
            cut = int(self.param * n)             # as scipy.stats.trim_mean
            return cut, n - cut, 0.0
        virtual = (n - 1) * self.param             # NumPy's "linear" method
        if virtual >= n - 1:
            return n - 1, n - 1, 0.0
        lo = math.floor(virtual)
        return lo, lo + 1, virtual - lo

    def resample(self, streams, out, n_threads):
        lo, hi, gamma = self._ranks(self.inverse.size)
        _bootstrap.resample_order(streams, self.kind, self.inverse, self.values, lo, hi,
                                  gamma, out, n_threads)

    def observed(self):
        lo, hi, gamma = self._ranks(self.inverse.size)
        return _bootstrap.sample_order(self.kind, self.counts, self.values, lo, hi, gamma)

    def jackknife(self):
        sorted_x = np.repeat(self.values, self.counts)
        starts = np.cumsum(self.counts) - self.counts
        lo, hi, gamma = self._ranks(sorted_x.size - 1)
        per_value = np.empty(self.values.size)
        _bootstrap.jackknife_order(self.kind, sorted_x, starts, lo, hi, gamma, per_value)
        return [per_value[self.inverse]]


class _OnePerResample:
    """A statistic of one resample as a vectorised one: ``f(*arrays, axis=-1)`` on
    arrays of shape (m, n_k) calls it on each row; on 1-D arrays, once."""

    def __init__(self, statistic):
        self.statistic = statistic

    def __call__(self, *arrays, axis=-1):
        if arrays[0].ndim == 1:
            return self.statistic(*arrays)
        return np.array([self.statistic(*(a[i] for a in arrays))
                         for i in range(arrays[0].shape[0])])


class _CallableStatistic:
    """A callable statistic, given index batches drawn in compiled code."""

    def __init__(self, statistic, samples, paired, batch, vectorized):
        try:
            params = inspect.signature(statistic).parameters
        except (TypeError, ValueError):  # some builtins have no signature: try axis
            params = {"axis": None}
        takes_axis = "axis" in params or any(
            p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
        if vectorized is None:
            vectorized = takes_axis
        if vectorized and not takes_axis:
            raise TypeError("statistic must take axis when vectorized=True: a callable "
                            "statistic(*samples, axis=-1); this one takes no axis")
        if not vectorized:
            statistic = _OnePerResample(statistic)
        self.statistic, self.samples, self.paired = statistic, samples, paired
        self.sizes = [samples[0].size] if paired else [s.size for s in samples]
        self.batch = None if batch is None else _check_batch(batch)

    def _call(self, arrays, expected):
        value = np.asarray(self.statistic(*arrays, axis=-1))
        if value.dtype.kind not in "biuf":
            raise TypeError(f"statistic must return real numbers, got dtype {value.dtype}")
        if value.shape != expected:
            raise ValueError(f"statistic must return one value per resample (shape "
                             f"{expected}), got shape {value.shape}")
        return value.astype(np.float64, copy=False)

    def resample(self, streams, out, n_threads):
        total = sum(self.sizes)
        batch = self.batch or max(1, _CALLABLE_BATCH_ELEMENTS // total)
        batch = min(batch, out.size)
        index = _index_array((batch, total))
        sizes = np.asarray(self.sizes, dtype=np.int64)
        bounds = np.cumsum([0, *self.sizes])
        for r0 in range(0, out.size, batch):
            m = min(batch, out.size - r0)
            rows = index[:m]
            _bootstrap.fill_indices(streams, r0, sizes, rows, n_threads)
            if self.paired:
                arrays = [s[rows] for s in self.samples]
            else:
                arrays = [s[rows[:, a:b]] for s, a, b in
                          zip(self.samples, bounds[:-1], bounds[1:])]
            out[r0:r0 + m] = self._call(arrays, (m,))

    def observed(self):
        return float(self._call(self.samples, ()))

    def jackknife(self):
        """Leave-one-out values for each sample (the pairs when paired), as scipy."""
        groups = [list(range(len(self.samples)))] if self.paired else \
            [[k] for k in range(len(self.samples))]
        result = []
        for group in groups:
            n = self.samples[group[0]].size
            keep = np.arange(n - 1)
            batch = self.batch or max(1, _CALLABLE_BATCH_ELEMENTS // n)
            values = np.empty(n)
            for i0 in range(0, n, batch):
                left_out = np.arange(i0, min(n, i0 + batch))[:, None]
                rows = _index_array((left_out.size, n - 1))
                np.add(keep, keep >= left_out, out=rows)  # row j skips observation i0 + j
                arrays = [s[rows] if k in group else
                          np.broadcast_to(s, (rows.shape[0], s.size))
                          for k, s in enumerate(self.samples)]
                values[i0:i0 + rows.shape[0]] = self._call(arrays, (rows.shape[0],))
            result.append(values)
        return result


# ---------------------------------------------------------------------------
# The interval, with scipy's definitions (scipy/stats/_resampling.py)

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
