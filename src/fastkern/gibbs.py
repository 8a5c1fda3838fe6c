"""Gibbs samplers whose chains run in parallel, without the GIL: the bivariate
benchmark sampler and the Poisson switchpoint model with gamma priors."""

import math

import numpy as np

from . import _gibbs, _seeding
from ._validation import as_array, check_int, check_real
from ._workers import resolve_workers

__all__ = ["gibbs", "gibbs_switchpoint"]


def gibbs(n, thin=1, *, chains=1, burn=0, seed=None, workers=None):
    """Draw chains of the classic bivariate Gibbs sampler benchmark.

    The target density is ``f(x, y) = k x**2 exp(-x y**2 - y**2 + 2 y - 4 x)``
    on ``x > 0``, whose full conditionals are::

        x | y ~ Gamma(shape 3, rate y**2 + 4)
        y | x ~ Normal(mean 1 / (1 + x), variance 1 / (2 (1 + x)))

    Each chain starts at ``x = y = 0``; one step draws ``x``, then ``y``.  The
    first ``burn`` steps are discarded, then a sample is kept after every
    ``thin`` steps.  Chains run in parallel on ``workers`` threads, without the
    GIL.

    Parameters
    ----------
    n : int
        Samples per chain (``n >= 0``).
    thin : int, optional
        Steps per kept sample (``thin >= 1``).  Default 1.
    chains : int, optional
        Independent chains (``chains >= 1``).  Default 1.
    burn : int, optional
        Steps discarded at the start of each chain (``burn >= 0``).  Default 0.
    seed : None, int, array_like of ints, numpy.random.SeedSequence or numpy.random.Generator, optional
        Where the chains' random numbers come from.  Chain ``c`` draws from
        ``np.random.Generator(np.random.PCG64(ss.spawn(chains)[c]))`` where ``ss``
        is ``np.random.SeedSequence(seed)`` for None (fresh entropy), an int or
        a sequence of ints; a copy of ``seed`` for a SeedSequence (the caller's
        is not advanced: the same one gives the same chains); and, for a
        Generator, ``np.random.SeedSequence(seed.integers(0, 2**64, size=4,
        dtype=np.uint64).tolist())``: 256 bits drawn from it, so the chains depend
        only on its state, and it advances as after any draw.
    workers : int, optional
        Threads to use; ``None`` uses the default (see :func:`fastkern.set_workers`),
        negative values count back from the number of CPUs.  The result does
        not depend on it.

    Returns
    -------
    samples : ndarray of float64, shape (chains, n, 2)
        ``samples[c, i] = (x, y)``, the state of chain ``c`` after
        ``burn + (i + 1) * thin`` steps: ArviZ's (chain, draw) order.

    Raises
    ------
    TypeError
        If ``n``, ``thin``, ``chains``, ``burn`` or ``workers`` is not an
        integer, or ``seed`` is of another type.
    ValueError
        If ``n`` or ``burn`` is negative, ``thin`` or ``chains`` is below 1,
        ``burn + n * thin`` (a chain's steps) is 2**63 or more, ``workers`` is
        0, or ``seed`` is a negative integer.
    MemoryError
        If the samples do not fit in memory (raised before any work).

    See Also
    --------
    gibbs_switchpoint

    Notes
    -----
    Every draw goes through NumPy's own C distributions on the chain's
    Generator: ``x = standard_gamma(3.0) / (y*y + 4)``, then
    ``y = 1/(1 + x) + standard_normal() / sqrt(2*(1 + x))``.  So the plain NumPy
    loop of the Examples reproduces each chain exactly, and chains do not
    depend on ``workers`` or on the machine's thread count.  (Exactly means bit
    for bit in a build that rounds every product before adding it, as Python
    does and fastkern's build does; a compiler that fuses multiply-adds makes
    the chains agree only to rounding.)

    The rate of ``x``'s gamma conditional is ``y**2 + 4``, as the benchmark's
    author intended [1]_.  A widely taught Cython version of this sampler calls
    ``numpy.random.gamma(3, y*y + 4)``, which takes ``y*y + 4`` as the *scale*
    and so samples another distribution.

    References
    ----------
    .. [1] D. J. Wilkinson, "Gibbs sampler in various languages (revisited)",
           2011, https://darrenjw.wordpress.com/

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> import fastkern
    >>> samples = fastkern.gibbs(1000, thin=10, chains=2, burn=100, seed=42)
    >>> samples.shape
    (2, 1000, 2)

    The same chains from a plain NumPy loop:

    >>> def numpy_gibbs(n, thin, burn, rng):
    ...     x = y = 0.0
    ...     out = np.empty((n, 2))
    ...     for step in range(burn + n * thin):
    ...         x = rng.standard_gamma(3.0) / (y * y + 4)
    ...         y = 1 / (1 + x) + rng.standard_normal() / math.sqrt(2 * (1 + x))
    ...         if step >= burn and (step - burn + 1) % thin == 0:
    ...             out[(step - burn) // thin] = x, y
    ...     return out
    >>> children = np.random.SeedSequence(42).spawn(2)
    >>> rng = np.random.Generator(np.random.PCG64(children[1]))
    >>> np.array_equal(samples[1], numpy_gibbs(1000, 10, 100, rng))
    True
    """
    n, thin, chains, burn = _check_run(n, thin, chains, burn)
    return bivariate_chains(_seeding.root_seed(seed), 0, chains, n, thin, burn,
                            resolve_workers(workers, units=chains))


def bivariate_chains(root, first, stop, n, thin, burn, n_threads):
    """Chains first..stop-1 of a validated :func:`gibbs` call with root SeedSequence
    `root`, shape (stop - first, n, 2): any split of the chains gives the same
    values, so that they can be spread over processes or machines."""
    out = _empty((stop - first, n, 2), np.float64)  # first: too many is a MemoryError at once
    if out.size:
        _gibbs.bivariate(_seeding.root_words(root), root.pool_size, first, out, thin, burn,
                         min(n_threads, stop - first))
    return out


def gibbs_switchpoint(counts, n, *, thin=1, chains=1, burn=0, alpha=1.0, beta=1.0,
                      seed=None, workers=None):
    """Sample the posterior of a Poisson switchpoint model by Gibbs sampling.

    The model of the classic coal-mining disasters example (PyMC's
    ``disaster_model``), with conjugate priors: for ``T`` counts ``D[t]``::

        s ~ uniform on {0, 1, ..., T - 1}
        early_rate, late_rate ~ Gamma(alpha, rate beta), independently
        D[t] ~ Poisson(early_rate) for t < s,  Poisson(late_rate) for t >= s

    so ``s`` is the index of the first count of the late regime.  Missing
    counts (NaN, or masked entries of a masked array) are imputed every sweep
    from the current rates, as PyMC does.  Chains run in parallel on
    ``workers`` threads, without the GIL.

    Parameters
    ----------
    counts : array_like, shape (T,)
        The counts, non-negative integers (any integer or float dtype), NaN
        where missing; or a ``numpy.ma.MaskedArray`` whose masked entries are
        missing.  ``T >= 1``.
    n : int
        Samples per chain (``n >= 0``).
    thin : int, optional
        Sweeps per kept sample (``thin >= 1``).  Default 1.
    chains : int, optional
        Independent chains (``chains >= 1``).  Default 1.
    burn : int, optional
        Sweeps discarded at the start of each chain (``burn >= 0``).  Default 0.
    alpha, beta : float, optional
        Shape and rate of the gamma prior on both rates, finite and positive.
        The default ``Gamma(1, 1)`` is the ``Exponential(1)`` prior of PyMC's
        example.
    seed : None, int, array_like of ints, numpy.random.SeedSequence or numpy.random.Generator, optional
        As for :func:`gibbs`: chain ``c`` draws from
        ``np.random.Generator(np.random.PCG64(ss.spawn(chains)[c]))``.
    workers : int, optional
        Threads to use, as for :func:`gibbs`.  The result does not depend on it.

    Returns
    -------
    trace : dict of ndarray
        ``"switchpoint"``: int64, shape (chains, n), index into ``counts``;
        ``"early_rate"``, ``"late_rate"``: float64, shape (chains, n); and, only
        when some counts are missing, ``"missing_counts"``: int64, shape
        (chains, n, M), the imputed counts at the M missing indices in
        increasing order.  Sample ``i`` of a chain is its state after
        ``burn + (i + 1) * thin`` sweeps.  ``arviz.from_dict(posterior=trace)``
        reads it as is.

    Raises
    ------
    TypeError
        If ``counts`` is not numeric, or ``n``, ``thin``, ``chains``, ``burn``,
        ``alpha``, ``beta``, ``workers`` or ``seed`` has the wrong type.
    ValueError
        If ``counts`` is not 1-D, is empty, or holds a negative, non-integer or
        infinite value (or more than 2**53 events in all); if ``n`` or ``burn``
        is negative, ``thin`` or ``chains`` is below 1, ``burn + n * thin`` (a
        chain's sweeps) is 2**63 or more, ``alpha`` or ``beta`` is not finite and
        positive, or ``workers`` is 0.
    MemoryError
        If the trace does not fit in memory (raised before any work).
    FloatingPointError
        If a rate grows too large to impute a missing count from (only with an
        extremely vague prior, e.g. a tiny ``beta``).

    See Also
    --------
    gibbs, fastkern.datasets.coal_mining_disasters

    Notes
    -----
    The state is ``s``, the two rates and the counts with missing ones filled
    in.  A chain starts at ``s = T // 2`` and both rates ``alpha / beta``.  With
    ``C[k] = D[0] + ... + D[k-1]`` (``C[0] = 0``, ``C[T]`` the total), one sweep
    makes these draws on the chain's Generator ``rng``, in this order:

    1. each missing count, by increasing index ``t``:
       ``D[t] = rng.poisson(early if t < s else late)``;
    2. ``early = rng.standard_gamma(alpha + C[s]) / (beta + s)``;
    3. ``late = rng.standard_gamma(alpha + (C[T] - C[s])) / (beta + (T - s))``;
    4. ``s`` from its full conditional, exactly, in O(T): the log weights
       ``L[k] = C[k]*log(early) + (C[T] - C[k])*log(late) - k*early - (T - k)*late``
       for ``k = 0, ..., T-1`` (a term ``0*log(0)`` counts as 0), summed up as
       ``W[k] = exp(L[0] - max(L)) + ... + exp(L[k] - max(L))``; then
       ``s`` is the first ``k`` with ``W[k] > rng.random() * W[T-1]`` (the last
       ``k`` with a positive weight if there is none).

    Draws go through NumPy's C distributions, so a plain loop making these
    draws in this order (with ``math.log`` and ``math.exp``, and the sums taken
    one after the other) reproduces each chain exactly, as for :func:`gibbs`.

    References
    ----------
    .. [1] R. G. Jarrett, "A note on the intervals between coal-mining
           disasters", Biometrika 66, 191-193, 1979.
    .. [2] PyMC documentation, "Introductory Overview of PyMC", case study
           "Coal mining disasters", https://www.pymc.io/

    Examples
    --------
    >>> import numpy as np
    >>> import fastkern
    >>> years, counts = fastkern.datasets.coal_mining_disasters()
    >>> trace = fastkern.gibbs_switchpoint(counts, 2000, chains=4, burn=200, seed=1)
    >>> trace["switchpoint"].shape
    (4, 2000)
    >>> int(np.median(years[trace["switchpoint"]]))
    1891
    >>> round(float(trace["early_rate"].mean()), 1), round(float(trace["late_rate"].mean()), 1)
    (3.1, 0.9)
    """
    counts, missing = _as_counts(counts)
    n, thin, chains, burn = _check_run(n, thin, chains, burn)
    alpha = _check_positive(alpha, "alpha")
    beta = _check_positive(beta, "beta")
    return switchpoint_chains(_seeding.root_seed(seed), 0, chains, counts, missing, n, thin,
                              burn, alpha, beta, resolve_workers(workers, units=chains))


def switchpoint_chains(root, first, stop, counts, missing, n, thin, burn, alpha, beta,
                       n_threads):
    """Chains first..stop-1 of a validated :func:`gibbs_switchpoint` call (counts and
    missing as ``_as_counts`` returns them), as its trace: any split of the chains
    gives the same values."""
    chains = stop - first
    n_threads = min(n_threads, max(chains, 1))
    # the outputs first: too many chains is a MemoryError at once
    s_out = _empty((chains, n), np.int64)
    early_out = _empty((chains, n), np.float64)
    late_out = _empty((chains, n), np.float64)
    missing_out = _empty((chains, n, missing.size), np.int64)
    if s_out.size:
        stopped = _gibbs.switchpoint(_seeding.root_words(root), root.pool_size, first, counts,
                                     missing, alpha, beta, thin, burn, s_out, early_out,
                                     late_out, missing_out, n_threads)
        if stopped:
            raise FloatingPointError(
                f"a rate grew too large to impute the missing counts from in {stopped} "
                f"chain(s); the prior Gamma(alpha={alpha!r}, beta={beta!r}) is too vague")
    trace = {"switchpoint": s_out, "early_rate": early_out, "late_rate": late_out}
    if missing.size:
        trace["missing_counts"] = missing_out
    return trace


def _empty(shape, dtype):
    """An output of shape (chains, n, ...), or a MemoryError that names them."""
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError):  # ValueError: more bytes than an array can index
        raise MemoryError(f"chains={shape[0]} chains of n={shape[1]} samples do not fit "
                          f"in memory ({math.prod(shape) * np.dtype(dtype).itemsize} bytes "
                          f"for an output of shape {shape})") from None


# ---------------------------------------------------------------------------
# validation

_MAX_STEPS = 2**63 - 1  # a chain's steps are counted in int64


def _check_run(n, thin, chains, burn):
    """The sampler's run length arguments, checked: (n, thin, chains, burn)."""
    # check_int refuses values beyond int64 by name
    n, thin = check_int(n, "n", 0), check_int(thin, "thin", 1)
    chains, burn = check_int(chains, "chains", 1), check_int(burn, "burn", 0)
    if burn + n * thin > _MAX_STEPS:
        raise ValueError(f"burn + n * thin must be below 2**63, got burn={burn}, n={n}, "
                         f"thin={thin}")
    return n, thin, chains, burn


def _check_positive(value, name):
    value = check_real(value, name)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return value


def _as_counts(counts):
    """(counts as int64 with 0 where missing, sorted int64 indices of the missing)."""
    mask = None
    if isinstance(counts, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(counts)
        counts = np.ma.getdata(counts)
    values = as_array(counts, "counts")
    if values.dtype == object:  # e.g. a list with None for the missing years
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError("counts must hold numbers (NaN where missing)") from None
        except OverflowError:  # Python ints beyond float64
            raise ValueError("counts holds a number beyond float64's range") from None
    if values.dtype.kind not in "iuf":
        raise TypeError(f"counts must hold integers or floats, got dtype {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"counts must be 1-D, got an array of shape {values.shape}")
    if values.size == 0:
        raise ValueError("counts must not be empty")

    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if mask is not None:
        missing |= mask
    seen = values[~missing]
    if seen.dtype.kind == "f" and not np.all(np.isfinite(seen)):
        raise ValueError(f"counts must be finite or NaN, got {seen[~np.isfinite(seen)][0]!r}")
    if np.any(seen < 0):
        raise ValueError(f"counts must be non-negative, got {seen[seen < 0][0]!r}")
    if seen.dtype.kind == "f" and np.any(seen != np.floor(seen)):
        bad = seen[seen != np.floor(seen)][0]
        raise ValueError(f"counts must be whole numbers, got {bad!r}")
    # C[k] must be exact both as int64 and as the double in alpha + C[k]
    if seen.size and float(np.sum(seen, dtype=np.float64)) > 2.0**53:
        raise ValueError("counts must add up to at most 2**53")

    out = np.zeros(values.shape, dtype=np.int64)
    out[~missing] = seen
    return out, np.flatnonzero(missing).astype(np.int64)
