"""Permutation tests with ``scipy.stats.permutation_test``'s results, the null
distribution computed by compiled kernels that release the GIL, reproducibly.

The exact test (every distinct permutation) is enumerated as scipy enumerates it;
the randomized one draws permutations in the bootstrap's blocks of
``BLOCK_SIZE``, block ``b`` from its own stream (see :func:`permutation_test`).
"""
import dataclasses
import itertools
import math

import numpy as np

from .. import _permutation, _seeding
from .._permutation import Statistic
from .._validation import check_int
from .._workers import resolve_workers
from ._checks import (_as_samples, _check_batch, _check_choice, _check_flag,
                      _empty_distribution, _index_array, _split_samples)
from ._statistics import as_vectorized
from ._streams import BLOCK_SIZE, block_streams, n_blocks

__all__ = ["PermutationTestResult", "permutation_test"]

_TYPES = ("independent", "samples", "pairings")
_ALTERNATIVES = ("two-sided", "less", "greater")
# Built-in statistics by permutation type: kernel code, samples taken.
_BUILT_IN = {
    "independent": {"mean_diff": Statistic.MEAN_DIFF, "median_diff": Statistic.MEDIAN_DIFF,
                    "t": Statistic.WELCH_T},
    "pairings": {"pearsonr": Statistic.PEARSONR, "spearmanr": Statistic.PEARSONR},
    "samples": {"mean_diff": Statistic.PAIRED_MEAN_DIFF},
}
# Index elements (int64) per batch of permutations of a callable statistic: 32 MiB.
_CALLABLE_BATCH_ELEMENTS = 1 << 22
_MAX_RESAMPLES = 2**60


@dataclasses.dataclass
class PermutationTestResult:
    """Result of :func:`permutation_test`, with the fields of
    ``scipy.stats.PermutationTestResult``.

    Attributes
    ----------
    statistic : float or ndarray
        The statistic of the data.
    pvalue : float or ndarray
        The p-value for the given alternative.
    null_distribution : ndarray, shape (n_permutations, ...)
        The statistic of every permutation (all of them for the exact test).
    """
    statistic: object
    pvalue: object
    null_distribution: np.ndarray


def permutation_test(data, statistic="mean_diff", *, permutation_type="independent",
                     vectorized=None, n_resamples=9999, batch=None, alternative="two-sided",
                     axis=0, seed=None, workers=None):
    """Permutation test of a statistic, as ``scipy.stats.permutation_test``.

    Under the null hypothesis the observations are exchangeable in the way
    ``permutation_type`` says; the statistic of every permutation forms the null
    distribution, and the p-value is the share of it at least as extreme as the
    statistic of the data.  For the built-in statistics the permutations are
    drawn and reduced in compiled code without the GIL, on ``workers`` threads,
    without forming the permuted samples (a difference of means needs only the sum
    of the values a partial shuffle puts in the smaller sample).

    Parameters
    ----------
    data : sequence of array_like
        The samples, ``(x, y)`` for the built-in statistics; each with at least
        two observations along ``axis``, all finite.  One sample (a sequence of
        one, or an array) only for ``"pairings"`` and ``"samples"`` with a
        callable (for ``"samples"``, whose permutations then flip its signs).
    statistic : str or callable, optional
        A built-in statistic of two samples ``(x, y)``, computed in float64:

        - ``"independent"``: ``"mean_diff"`` (default: ``mean(x) - mean(y)``),
          ``"median_diff"`` (``median(x) - median(y)``) and ``"t"`` (Welch's t,
          as ``scipy.stats.ttest_ind(x, y, equal_var=False)``);
        - ``"pairings"``: ``"pearsonr"`` and ``"spearmanr"`` (Pearson's r of the
          ranks, ties given their average rank);
        - ``"samples"``: ``"mean_diff"`` (``mean(x) - mean(y)`` of pairs, that is
          the mean of ``x - y``).

        Or a callable ``statistic(*samples, axis=-1)`` vectorised over the trailing
        axis: it receives the permuted samples of a batch stacked along axis 0
        and returns one value per permutation (per element of the other axes
        for samples of more than one dimension).  One taking one permutation at
        a time (``statistic(*samples)``) works too (``vectorized=False``).
    permutation_type : {"independent", "samples", "pairings"}, optional
        ``"independent"``: the observations of all samples are re-partitioned
        between them (any number of samples).  ``"samples"``: paired samples,
        each pair's (or each observation's) values permuted between the
        samples.  ``"pairings"``: each sample's order permuted against the
        first's.  As scipy's.
    vectorized : bool, optional
        Whether a callable statistic takes ``axis``; ``None`` (default) decides as
        scipy does, from its signature.  Only for a callable.
    n_resamples : int or inf, optional
        Permutations for the randomized test (default 9999), at most 2**60.
        When it is at least the number of distinct permutations (scipy's count),
        every one is enumerated instead: the exact test, with scipy's p-value.
    batch : int, optional
        Permutations per call of a callable statistic.  By default, as many as
        keep a batch's indices under 32 MiB (whole blocks for the randomized
        test).  Ignored for the built-in statistics.
    alternative : {"two-sided", "less", "greater"}, optional
        The p-value's alternative, as scipy's: ``"less"`` counts null values at
        most the statistic, ``"greater"`` at least, with a relative tolerance of
        100 machine epsilons, and ``"two-sided"`` twice the smaller, at most 1.
    axis : int, optional
        The axis of the samples holding the observations (default 0).  Samples
        of more than one dimension are for callable statistics only; their other
        axes are broadcast together, as scipy does.
    seed : None, int, sequence of ints, numpy.random.SeedSequence or numpy.random.Generator, optional
        Source of randomness, as for :func:`fastkern.bootstrap`: permutation
        ``r`` belongs to block ``b = r // BLOCK_SIZE``, which draws from
        ``PCG64(SeedSequence(seed).spawn(n_blocks)[b])``; see Notes.  Not used by
        the exact test (a Generator is drawn from all the same).
    workers : int, optional
        Threads, as for :func:`fastkern.bootstrap`.  The result does not depend
        on it.

    Returns
    -------
    res : PermutationTestResult
        ``statistic``, ``pvalue`` and ``null_distribution`` (float64, the
        permutations first).

    Raises
    ------
    ValueError
        For a sample with fewer than two observations, NaN or infinite values,
        samples whose other axes do not broadcast, paired samples of different
        lengths, a number of samples the statistic or type does not take, an
        unknown statistic, type or alternative, ``n_resamples`` below 1 or
        above 2**60, ``batch`` below 1, an ``axis`` out of range, or ``workers``
        out of range.
    TypeError
        For arguments of the wrong type (complex data, a seed of no accepted
        kind, a statistic neither a string nor a callable).
    KeyboardInterrupt
        On Ctrl-C, within a fraction of a second; the next call works.

    See Also
    --------
    scipy.stats.permutation_test, fastkern.bootstrap

    Notes
    -----
    Each block starts from the data in their given order, and each permutation
    of a block continues from the one before it.  For ``"independent"``, the
    samples are laid end to end with the largest last (the last of the largest),
    and a permutation is the Fisher-Yates steps ``i = 0 .. m-1``, ``m`` being
    the size of all but the last sample: step ``i`` swaps positions ``i`` and
    ``rng.integers(i, n)``.  The first ``m`` positions are then a uniformly
    random choice of observations, and the kernels read only what the statistic
    needs (for two samples, the sum of the smaller one).  The null distribution
    of two samples ``x``, ``y`` with ``len(x) <= len(y)`` is reproduced by::

        children = np.random.SeedSequence(seed).spawn(n_blocks)
        z = np.concatenate([x, y])          # the larger last
        m = len(x)
        for b in range(n_blocks):
            rng = np.random.Generator(np.random.PCG64(children[b]))
            a = z.copy()
            for r in range(b * BLOCK_SIZE, min((b + 1) * BLOCK_SIZE, n_resamples)):
                j = rng.integers(np.arange(m), z.size)
                for i in range(m):
                    a[i], a[j[i]] = a[j[i]], a[i]
                null[r] = statistic(a[:m], a[m:])

    (for ``"mean_diff"``, as ``a[:m].sum() / m - (z.sum() - a[:m].sum()) /
    (n - m)``, the same bits where the sums are exact).  ``"pairings"``
    shuffles every sample but the first (the only one for one sample) in turn,
    each by steps ``0 .. n-2``, continuing within a block in the same way;
    ``"spearmanr"`` shuffles the ranks.  ``"samples"`` of two samples (or of
    ``x`` and ``-x``, for one) draws ``ceil(n / 64)`` outputs
    ``rng.bit_generator.random_raw(...)`` per permutation and swaps pair ``i``
    where bit ``i % 64`` of output ``i // 64`` is set (the paired
    ``"mean_diff"`` is then the sum of ``+-(x - y)`` on four chains over
    ``i % 4``, over ``n``); of three or more, each observation's values are
    shuffled by steps ``0 .. K-2`` from the given order, a fresh start each
    time.  These draws give scipy's null distributions, in law, for statistics
    that depend on each sample's values as a set (``"independent"``) or on the
    pairs as a set (``"pairings"``).

    The statistic of the data, and every statistic of the exact test, is
    computed with NumPy from the permuted samples (as scipy does); the kernels'
    sums differ from NumPy's in rounding only, well within scipy's comparison
    tolerance.

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(0.3, 1, 200), rng.normal(0, 1, 250)
    >>> res = fastkern.permutation_test((x, y), "mean_diff", seed=1)
    >>> res.null_distribution.shape
    (9999,)
    >>> bool(res.pvalue < 0.05)
    True
    """
    plan = _plan(data, statistic, permutation_type, vectorized, n_resamples, batch,
                 alternative, axis, seed)
    if plan.exact:
        return finish(plan, [_exact_null(plan)])
    return finish(plan, [null_blocks(plan, 0, plan.n_blocks, workers)])


@dataclasses.dataclass
class _Plan:
    """A validated permutation test: what to permute, and how to finish."""
    type: str
    samples: list             # the samples, observations last (float64 for built-ins)
    kind: object              # the built-in statistic's code, or None
    name: object              # the built-in statistic's name, or None
    statistic: object         # the statistic as statistic(*samples, axis=-1)
    n_resamples: int          # permutations (all of them for the exact test)
    n_blocks: int
    exact: bool
    batch: object
    alternative: str
    observed: object
    root: object


def _plan(data, statistic, permutation_type, vectorized, n_resamples, batch, alternative,
          axis, seed):
    permutation_type = _check_choice(permutation_type, "permutation_type", _TYPES,
                                     "'independent', 'samples' or 'pairings'")
    alternative = _check_choice(alternative, "alternative", _ALTERNATIVES,
                                "'two-sided', 'less' or 'greater'")
    vectorized = _check_flag(vectorized, "vectorized", none=True)
    n_resamples = _check_n_resamples(n_resamples)
    batch = None if batch is None else _check_batch(batch)
    axis = check_int(axis, "axis")
    if callable(statistic):
        kind = name = None
        samples = _callable_samples(data, axis)
        fn = as_vectorized(statistic, vectorized)
    else:
        if not isinstance(statistic, str):
            raise TypeError(f"statistic must be a string or a callable, got {statistic!r}")
        known = _BUILT_IN[permutation_type]
        if statistic not in known:
            names = ", ".join(repr(s) for s in known)
            raise ValueError(f"statistic must be a callable or, for permutation_type="
                             f"{permutation_type!r}, one of {names}; got {statistic!r}")
        if vectorized is not None:
            raise ValueError("vectorized is only used by a callable statistic")
        samples, _ = _as_samples(_one_dimensional(data, axis))
        if len(samples) != 2:
            raise ValueError(f"statistic={statistic!r} takes two samples (data=(x, y)), "
                             f"got {len(samples)}")
        samples = [s.astype(np.float64, copy=False) for s in samples]
        kind, name = known[statistic], statistic
        fn = _NUMPY_STATISTICS[statistic if permutation_type != "samples" else "mean_diff"]
    k = len(samples)
    if permutation_type == "independent" and k < 2:
        raise ValueError("permutation_type='independent' needs at least two samples, "
                         "data=(x, y, ...)")
    if permutation_type != "independent" and len({s.shape[-1] for s in samples}) > 1:
        sizes = ", ".join(f"data[{i}] has {s.shape[-1]}" for i, s in enumerate(samples))
        raise ValueError(f"permutation_type={permutation_type!r} needs samples of the "
                         f"same length; {sizes}")
    if permutation_type == "samples" and k > _permutation.MAX_SAMPLES_PERMUTED:
        raise ValueError(f"permutation_type='samples' takes at most "
                         f"{_permutation.MAX_SAMPLES_PERMUTED} samples, got {k}")
    observed = _call(fn, samples, None)
    total = _count_permutations(permutation_type, samples, n_resamples)
    exact = n_resamples >= total
    n = total if exact else int(n_resamples)
    root = _seeding.root_seed(seed)   # checked, and drawn from, even where unused
    return _Plan(permutation_type, samples, kind, name, fn, n, n_blocks(n), exact, batch,
                 alternative, observed, root)


def _check_n_resamples(n_resamples):
    if isinstance(n_resamples, float) and n_resamples == math.inf:
        return math.inf
    n_resamples = check_int(n_resamples, "n_resamples")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if n_resamples > _MAX_RESAMPLES:
        raise ValueError(f"n_resamples must be at most {_MAX_RESAMPLES} (2**60) or inf, "
                         f"got {n_resamples}")
    return n_resamples


def _one_dimensional(data, axis):
    """data's samples for a built-in statistic: 1-D, axis 0 or -1."""
    samples = _split_samples(data)[0]
    for i, s in enumerate(samples):
        try:
            nd = np.ndim(s)
        except (TypeError, ValueError):  # ragged: _as_samples says what is wrong
            continue
        if nd > 1:
            raise ValueError(f"data[{i}] has {nd} dimensions: the built-in statistics "
                             f"take 1-D samples (pass a callable for more)")
        if nd == 1 and axis not in (0, -1):
            raise ValueError(f"axis {axis} is out of range for 1-D data[{i}]")
    return tuple(samples)


def _callable_samples(data, axis):
    """data's samples as real arrays, observations moved last, other axes broadcast."""
    samples = []
    for i, s in enumerate(_split_samples(data)[0]):
        name = f"data[{i}]"
        try:
            a = np.asarray(s)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers ({exc})") from None
        if a.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got dtype {a.dtype}")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError(f"{name} must have at least one dimension")
        if not -a.ndim <= axis < a.ndim:
            raise ValueError(f"axis {axis} is out of range for {name} of shape {a.shape}")
        a = np.moveaxis(a, axis, -1)
        if a.shape[-1] < 2:
            raise ValueError(f"{name} must hold at least two observations along axis, "
                             f"got {a.shape[-1]}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or an infinite value; remove or "
                             f"impute it first")
        samples.append(a)
    try:
        shape = np.broadcast_shapes(*(a.shape[:-1] for a in samples))
    except ValueError:
        raise ValueError("the samples' axes other than axis must broadcast together; "
                         "got shapes " + ", ".join(str(a.shape) for a in samples)) from None
    return [np.broadcast_to(a, (*shape, a.shape[-1])) for a in samples]


def _count_permutations(permutation_type, samples, limit):
    """The distinct permutations, as scipy counts them (its rule for the exact
    test), or inf where they are known to be more than limit (an int) without
    computing a number of hundreds of thousands of digits."""
    n, k = samples[0].shape[-1], len(samples)
    if permutation_type == "independent":
        sizes = list(itertools.accumulate([s.shape[-1] for s in samples], initial=0))
        terms = list(zip(sizes[1:], sizes[:-1]))
        log2 = sum(math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)
                   for a, b in terms) / math.log(2)
        count = lambda: math.prod(math.comb(a, b) for a, b in terms)  # noqa: E731
    elif permutation_type == "pairings":
        log2 = k * math.lgamma(n + 1) / math.log(2)
        count = lambda: math.factorial(n) ** k  # noqa: E731
    else:
        k = max(k, 2)
        log2 = n * math.lgamma(k + 1) / math.log(2)
        count = lambda: math.factorial(k) ** n  # noqa: E731
    if limit != math.inf and log2 > math.log2(limit) + 1:
        return math.inf
    return count()


# ---------------------------------------------------------------------------
# The statistics with NumPy: of the data, and of the exact test's permutations

def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _median_diff(x, y, axis=-1):
    return np.median(x, axis=axis) - np.median(y, axis=axis)


def _welch_t(x, y, axis=-1):
    nx, ny = x.shape[axis], y.shape[axis]
    vx, vy = np.var(x, axis=axis, ddof=1), np.var(y, axis=axis, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _mean_diff(x, y, axis) / np.sqrt(vx / nx + vy / ny)


def _pearsonr(x, y, axis=-1):
    xc = x - np.mean(x, axis=axis, keepdims=True)
    yc = y - np.mean(y, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sum(xc * yc, axis=axis) / (np.linalg.norm(xc, axis=axis)
                                         * np.linalg.norm(yc, axis=axis))
    return np.clip(r, -1.0, 1.0)


def _ranks(a):
    """Ranks along the last axis, ties given their average (scipy's rankdata)."""
    import scipy.stats
    return scipy.stats.rankdata(a, axis=-1)


def _spearmanr(x, y, axis=-1):
    return _pearsonr(_ranks(x), _ranks(y), axis)


_NUMPY_STATISTICS = {"mean_diff": _mean_diff, "median_diff": _median_diff, "t": _welch_t,
                     "pearsonr": _pearsonr, "spearmanr": _spearmanr}


def _call(fn, arrays, m):
    """fn(*arrays, axis=-1) as float64, checked: one value per permutation (m of
    them, or the statistic of the data for m None) per element of the other axes."""
    value = np.asarray(fn(*arrays, axis=-1))
    if value.dtype.kind not in "biuf":
        raise TypeError(f"statistic must return real numbers, got dtype {value.dtype}")
    shape = arrays[0].shape[:-1]
    if value.shape != shape:
        raise ValueError(f"statistic must return one value per permutation (shape "
                         f"{shape}), got shape {value.shape}")
    value = value.astype(np.float64, copy=False)
    return value if m is not None else (value[()] if value.ndim == 0 else value)


def _exact_indices(plan):
    """The exact test's permutations, as scipy enumerates them: rows of positions
    into the samples end to end ("independent"), or (sample, observation) rows."""
    samples = plan.samples
    if plan.type == "independent":
        sizes = [s.shape[-1] for s in samples]

        def partitions(rest, sizes):
            if len(sizes) == 1:
                yield [rest]
                return
            for chosen in itertools.combinations(rest, sizes[0]):
                left = sorted(set(rest) - set(chosen))
                for tail in partitions(left, sizes[1:]):
                    yield [list(chosen), *tail]

        for parts in partitions(list(range(sum(sizes))), sizes):
            yield np.concatenate(parts)
    elif plan.type == "pairings":
        n = samples[0].shape[-1]
        for rows in itertools.product(*(itertools.permutations(range(n))
                                        for _ in samples)):
            yield np.array(rows)
    else:
        k = max(len(samples), 2)
        for columns in itertools.product(*(itertools.permutations(range(k))
                                           for _ in range(samples[0].shape[-1]))):
            yield np.array(columns).T


def _permuted(permutation_type, samples, idx):
    """The permuted samples of a batch of index rows (see _exact_indices and
    _permutation.fill_permutations), the permutations first."""
    if permutation_type == "independent":
        z = np.concatenate(samples, axis=-1)
        taken = np.moveaxis(z[..., idx], -2, 0)           # (m, ..., n)
        bounds = np.cumsum([0] + [s.shape[-1] for s in samples])
        return [taken[..., a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if permutation_type == "pairings":
        return [np.moveaxis(s[..., idx[:, i, :]], -2, 0) for i, s in enumerate(samples)]
    stacked = np.stack(samples if len(samples) > 1 else [samples[0], -samples[0]])
    o = np.arange(stacked.shape[-1])
    # sample i at observation o takes stacked[idx[r, i, o], ..., o]
    return [np.moveaxis(stacked[idx[:, i, :], ..., o], 1, -1) for i in range(len(samples))]


def _batches(plan, size_per_permutation):
    return plan.batch or max(1, _CALLABLE_BATCH_ELEMENTS // max(size_per_permutation, 1))


def _exact_null(plan):
    """The statistic of every distinct permutation, in scipy's order."""
    samples = plan.samples
    width = sum(s.shape[-1] for s in samples)
    batch = _batches(plan, width)
    null = _empty_distribution((plan.n_resamples,) + samples[0].shape[:-1],
                               "null_distribution")
    it = _exact_indices(plan)
    r = 0
    while r < plan.n_resamples:
        rows = list(itertools.islice(it, batch))
        idx = np.array(rows, dtype=np.int64)
        permuted = _permuted(plan.type, plan.samples, idx)
        null[r:r + len(rows)] = _call(plan.statistic, permuted, len(rows))
        r += len(rows)
    return null


# ---------------------------------------------------------------------------
# The randomized test: blocks of permutations

def _layout(samples):
    """The order of the samples end to end for "independent": the largest last
    (the last of the largest)."""
    sizes = [s.shape[-1] for s in samples]
    last = max(range(len(sizes)), key=lambda i: (sizes[i], i))
    return [i for i in range(len(samples)) if i != last] + [last]


def null_blocks(plan, first, stop, workers, out=None):
    """The null distribution of blocks first..stop-1 of a randomized plan, shape
    (permutations in those blocks, ...): any split of the blocks gives the same
    values, so that they can be spread over processes or machines."""
    n = min(stop * BLOCK_SIZE, plan.n_resamples) - first * BLOCK_SIZE
    n_threads = resolve_workers(workers, units=max(stop - first, 1))
    shape = (max(n, 0),) + plan.samples[0].shape[:-1]
    dist = _empty_distribution(shape, "null_distribution") if out is None else out
    if n <= 0:
        return dist
    streams = block_streams(plan.root, first, stop)
    if plan.kind is not None:
        _built_in_null(plan, streams, dist, n_threads)
    else:
        _callable_null(plan, streams, dist, n_threads)
    return dist


def _built_in_null(plan, streams, out, n_threads):
    x, y = plan.samples
    kind = plan.kind
    if kind == Statistic.PEARSONR:
        if plan.name == "spearmanr":
            x, y = _ranks(x), _ranks(y)
        w, z = x - np.mean(x), y - np.mean(y)
        norm = float(np.linalg.norm(w)) * float(np.linalg.norm(z))
        if norm == 0:                    # a constant sample: r is undefined
            out[:] = np.nan
            return
        _permutation.permutation_statistics(streams, kind, z, w, 0, True, 1.0 / norm, out,
                                            n_threads)
        return
    if kind == Statistic.PAIRED_MEAN_DIFF:
        z = np.ascontiguousarray(x - y)
        _permutation.permutation_statistics(streams, kind, z, z, 0, True, 0.0, out,
                                            n_threads)
        return
    a_is_x = x.size <= y.size             # the larger last
    z = np.concatenate([x, y] if a_is_x else [y, x])
    if kind == Statistic.WELCH_T:
        z = z - np.mean(z)
    _permutation.permutation_statistics(streams, kind, z, z, min(x.size, y.size), a_is_x,
                                        0.0, out, n_threads)


def _callable_null(plan, streams, out, n_threads):
    samples = plan.samples
    n, k = samples[0].shape[-1], len(samples)
    if plan.type == "independent":
        order = _layout(samples)
        laid = [samples[i] for i in order]
        width = sum(s.shape[-1] for s in samples)
        code, m = 0, width - laid[-1].shape[-1]
    else:
        k = max(k, 2) if plan.type == "samples" else k
        width, code, m = k * n, 1 if plan.type == "pairings" else 2, 0
    batch = _batches(plan, width)
    batch = max(BLOCK_SIZE, batch // BLOCK_SIZE * BLOCK_SIZE)   # whole blocks
    batch = min(batch, -(-out.shape[0] // BLOCK_SIZE) * BLOCK_SIZE)
    index = _index_array((batch, width))
    for r0 in range(0, out.shape[0], batch):
        rows = index[:min(batch, out.shape[0] - r0)]
        _permutation.fill_permutations(streams, r0, code, n if code else width, k, m,
                                       rows, n_threads)
        if plan.type == "independent":
            parts = _permuted("independent", laid, rows)
            permuted = [None] * len(samples)
            for slot, i in enumerate(order):
                permuted[i] = parts[slot]
        else:
            permuted = _permuted(plan.type, samples, rows.reshape(rows.shape[0], k, n))
        out[r0:r0 + rows.shape[0]] = _call(plan.statistic, permuted, rows.shape[0])


# ---------------------------------------------------------------------------
# The p-value, as scipy computes it

def finish(plan, parts):
    """The PermutationTestResult from the null distributions of consecutive block
    ranges (or the exact test's whole null distribution)."""
    null = np.concatenate(parts) if len(parts) != 1 else parts[0]
    return PermutationTestResult(plan.observed, _pvalue(null, plan.observed, plan.exact,
                                                        plan.n_resamples, plan.alternative),
                                 null)


def _pvalue(null, observed, exact, n_resamples, alternative):
    adjustment = 0 if exact else 1
    gamma = np.abs(np.finfo(np.float64).eps * 100 * np.asarray(observed))

    def less():
        count = np.count_nonzero(null <= observed + gamma, axis=0) + adjustment
        return count / (n_resamples + adjustment)

    def greater():
        count = np.count_nonzero(null >= observed - gamma, axis=0) + adjustment
        return count / (n_resamples + adjustment)

    if alternative == "less":
        p = less()
    elif alternative == "greater":
        p = greater()
    else:
        p = np.minimum(less(), greater()) * 2
    p = np.clip(p, 0.0, 1.0)
    return p[()] if np.ndim(p) == 0 else p
