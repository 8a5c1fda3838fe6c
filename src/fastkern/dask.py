"""fastkern on Dask: the kernels on dask arrays and over a cluster's workers.

Each block is computed by a fastkern kernel with the GIL released, so Dask's
threaded scheduler and the threads of a ``dask.distributed`` worker run blocks in
parallel.  Results equal the single-machine ones.  Needs ``pip install
"fastkern[dask]"``.
"""
import dataclasses

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - the [dask] extra is missing
    raise ImportError('fastkern.dask needs Dask: pip install "fastkern[dask]"') from exc

from . import _seeding
from ._validation import as_array, check_int
from ._workers import check_workers, resolve_workers
from . import convolve as _convolve
from .gibbs import (_as_counts, _check_positive, _check_run, bivariate_chains,
                    switchpoint_chains)
from .resampling.bootstrap import _plan as _bootstrap_plan
from .resampling.bootstrap import finish as _bootstrap_finish
from .resampling.bootstrap import resample_blocks as _resample_blocks
from .resampling import permutation as _permutation
from . import locate as _locate

__all__ = ["bootstrap", "convolve2d", "correlate2d", "gibbs", "gibbs_switchpoint",
           "locate_events", "permutation_test"]


def _on_worker(fn, *args, workers):
    """fn(*args, n_threads) in a task: `workers` (checked when the graph was built)
    counts threads on the machine that runs the task, as `workers` does anywhere."""
    return fn(*args, resolve_workers(workers))


def convolve2d(x, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto"):
    """Convolve a 2-D dask array with a small filter, lazily, block by block.

    The result equals ``scipy.signal.convolve2d(x, in2, mode, boundary, fillvalue)``
    on the whole array, for every mode and boundary and any chunking of `x`.  The
    array is extended by the boundary rule, each block is given the halo of
    ``in2.shape - 1`` rows and columns it needs (``map_overlap``), and each block is
    computed by :func:`fastkern.convolve2d` with ``workers=1``: Dask's threads, or
    its workers, provide the parallelism.  Memory is bounded by the chunks, not
    the array.

    A stack of images, `x` of shape (B, M, N), is cut along B only: each block
    holds whole images and computes them, with the whole bank of filters, in one
    single-machine call.  A bank of filters over one image is computed filter by
    filter, each block by block.

    Parameters
    ----------
    x : dask.array.Array or array_like, shape (M, N) or (B, M, N)
        The image, in any chunking, or a stack of B images.
    in2 : array_like, shape (P, Q) or (F, P, Q)
        The filter, or a bank of F filters: a NumPy array, shipped to every block.
    mode, boundary, fillvalue, method
        As for :func:`fastkern.convolve2d`; with ``method="auto"`` each block
        takes the route auto picks for its own shape.

    Returns
    -------
    dask.array.Array, shape (B, F, R, C)
        Lazy; call ``.compute()``.  The B and F axes are present only where the
        inputs have them, as in :func:`fastkern.convolve2d`.  Its chunks follow
        those of `x`.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastkern.dask
    >>> image = da.ones((1000, 1000), chunks=250)
    >>> out = fastkern.dask.convolve2d(image, np.ones((3, 3)), mode="same")
    >>> float(out[500, 500].compute()), float(out[0, 0].compute())
    (9.0, 4.0)
    """
    return _blockwise(x, in2, mode, boundary, fillvalue, method, convolve=True)


def correlate2d(x, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto"):
    """Cross-correlate a 2-D dask array with a small filter, lazily, block by block.

    As :func:`convolve2d`, with the result of ``scipy.signal.correlate2d``.
    """
    return _blockwise(x, in2, mode, boundary, fillvalue, method, convolve=False)


def _min_chunks(chunks, minimum):
    """Merge neighbouring chunks until each holds at least `minimum` elements."""
    merged, current = [], 0
    for c in chunks:
        current += c
        if current >= minimum:
            merged.append(current)
            current = 0
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return tuple(merged)


def _boundary_index(lo, hi, n, boundary):
    """Source index of coordinates lo..hi-1 of an axis of length n (wrap or symm),
    with the rules of the compiled core."""
    j = np.arange(lo, hi)
    if boundary in ("wrap", "circular"):
        return j % n
    k = np.where(j >= 0, j, -j - 1) % (2 * n)
    return np.where(k >= n, 2 * n - k - 1, k)


def _blockwise(x, in2, mode, boundary, fillvalue, method, convolve):
    kernel_fn = _convolve.convolve2d if convolve else _convolve.correlate2d
    x = da.asarray(x)
    bank = as_array(in2, "in2")
    if bank.ndim == 3:
        if bank.shape[0] == 0:
            raise ValueError(f"in2 is an empty stack: shape {bank.shape}")
        in2 = _convolve._as_input(bank[0], "in2")
    else:
        in2 = bank = _convolve._as_input(bank, "in2")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be a 2-D array, or a 3-D stack of them, got an array of "
                         f"shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    # the single-machine checks of dtypes, mode, boundary and fillvalue, on a sample
    kernel_fn(np.zeros((1, 1), dtype=x.dtype), bank, "full", boundary, fillvalue, method=method)
    if not isinstance(mode, str) or mode not in _convolve._MODES:
        raise ValueError(f"mode must be 'full', 'same' or 'valid', got {mode!r}")
    if x.ndim == 3:
        return _stack_of_images(x, bank, mode, boundary, fillvalue, method, kernel_fn)
    if bank.ndim == 3:
        # a bank over one image: the filters' results stacked, each block by block
        return da.stack([_blockwise(x, f, mode, boundary, fillvalue, method, convolve)
                         for f in bank])
    out_dtype = np.result_type(x.dtype, in2.dtype)
    kh, kw = in2.shape
    if mode == "valid" and _convolve._valid_swap(x.shape, in2.shape, "x"):
        # the filter is the larger input, so x is small: one task does it all
        out_shape = tuple(b - a + 1 for a, b in zip(x.shape, in2.shape))
        return x.rechunk(x.shape).map_blocks(
            lambda b: kernel_fn(b, in2, "valid", method=method), dtype=out_dtype,
            chunks=tuple((n,) for n in out_shape))

    # Output (i, j) reads the boundary-extended image E at rows i + o0 .. i + o0 + kh - 1.
    # Build P = E[o0 : o0 + L0 + kh - 1, ...]; the output is P's valid correlation.
    x = x.astype(out_dtype)
    pads, index = [], []
    for n, k in zip(x.shape, in2.shape):
        centre = k // 2 if convolve else (k - 1) // 2
        shift = {"full": 0, "same": k - 1 - centre, "valid": k - 1}[mode]
        length = {"full": n + k - 1, "same": n, "valid": n - k + 1}[mode]
        o = shift - (k - 1)                     # <= 0
        before, after = -o, o + length + k - 1 - n  # both >= 0
        pads.append((before, after))
        index.append((o, o + length + k - 1))
    if _convolve._BOUNDARIES[boundary] == 0:
        fill = _convolve._parse_fill(fillvalue, out_dtype)
        fill = fill if out_dtype.kind == "c" else fill.real
        p = da.pad(x, pads, mode="constant", constant_values=np.asarray(fill, dtype=out_dtype))
    else:
        p = x
        for axis, ((lo, hi), n) in enumerate(zip(index, x.shape)):
            idx = _boundary_index(lo, hi, n, boundary)
            p = p[idx, :] if axis == 0 else p[:, idx]

    # every block at least the filter's size, so that each block's 'valid' result is
    # the filter sliding inside it; the last block along each axis has no halo
    p = p.rechunk(tuple(_min_chunks(c, k) for c, k in zip(p.chunks, in2.shape)))
    out_chunks = tuple(c[:-1] + (c[-1] - k + 1,) for c, k in zip(p.chunks, in2.shape))
    return da.map_overlap(lambda b: kernel_fn(b, in2, "valid", method=method, workers=1), p,
                          depth={0: (0, kh - 1), 1: (0, kw - 1)}, boundary="none",
                          trim=False, dtype=out_dtype, chunks=out_chunks)


def _stack_of_images(x, bank, mode, boundary, fillvalue, method, kernel_fn):
    """A stack (B, M, N), chunked along B: each block of whole images through the
    single-machine call (the whole bank at once), with ``workers=1``."""
    x = x.rechunk({1: -1, 2: -1})
    image = np.broadcast_to(np.zeros((), x.dtype), x.shape[1:])   # shapes only
    pb = _convolve._problem(image, bank if bank.ndim == 2 else bank[0], mode, boundary,
                            fillvalue, 1, kernel_fn is _convolve.convolve2d)
    lead = ((bank.shape[0],),) if bank.ndim == 3 else ()
    chunks = (x.chunks[0],) + lead + tuple((n,) for n in pb.out_shape)
    return x.map_blocks(
        lambda b: kernel_fn(b, bank, mode, boundary, fillvalue, method=method, workers=1),
        dtype=pb.out_dtype, chunks=chunks, new_axis=[1] if bank.ndim == 3 else None)


def bootstrap(data, statistic="mean", *, n_resamples=9999, confidence_level=0.95,
              method="BCa", alternative="two-sided", paired=False, q=None, ddof=1,
              proportiontocut=None, batch=None, vectorized=None, bootstrap_result=None,
              seed=None, blocks_per_task=16, workers_per_task=1):
    """:func:`fastkern.bootstrap` with its resample blocks spread over Dask tasks.

    Block ``b`` of resamples draws from its own stream, fixed by `seed` alone, so
    the result is identical, value for value, to ``fastkern.bootstrap`` with the
    same arguments and seed on one machine, however the tasks are scheduled.

    Parameters
    ----------
    data, statistic, n_resamples, confidence_level, method, alternative, paired, q, ddof,
    proportiontocut, batch, vectorized, bootstrap_result, seed
        As for :func:`fastkern.bootstrap`; validated here, before anything runs.
        A ``numpy.random.Generator`` seed is drawn from once, here.  The samples
        must be 1-D (there is no ``axis``).
    blocks_per_task : int, optional
        Blocks of ``fastkern.bootstrap.BLOCK_SIZE`` resamples per task.
    workers_per_task : int or None, optional
        Threads each task uses: the kernel's `workers`, counted on the machine
        that runs the task (None: its default; -1: all its CPUs).  Checked here.

    Returns
    -------
    dask.delayed.Delayed
        Lazy; ``.compute()`` (or ``client.compute(...)``) gives the
        ``BootstrapResult``.  The data travel to the tasks once, as one graph key.

    Examples
    --------
    >>> import numpy as np, fastkern, fastkern.dask
    >>> x = np.random.default_rng(0).poisson(4.0, size=1000)
    >>> lazy = fastkern.dask.bootstrap(x, "mean", n_resamples=1000, seed=1)
    >>> res = lazy.compute()
    >>> one = fastkern.bootstrap(x, "mean", n_resamples=1000, seed=1)
    >>> bool(np.array_equal(res.bootstrap_distribution, one.bootstrap_distribution))
    True
    """
    blocks_per_task = check_int(blocks_per_task, "blocks_per_task", 1)
    workers_per_task = check_workers(workers_per_task, "workers_per_task")
    plan = _bootstrap_plan(data, statistic, n_resamples, confidence_level, method,
                           alternative, paired, q, ddof, proportiontocut, batch,
                           bootstrap_result, seed, vectorized)
    plan_key = dask.delayed(plan, pure=False)
    parts = [dask.delayed(_on_worker, pure=True)(
                 _resample_blocks, plan_key, first, min(first + blocks_per_task, plan.n_blocks),
                 workers=workers_per_task)
             for first in range(0, plan.n_blocks, blocks_per_task)]
    return dask.delayed(_bootstrap_finish, pure=True)(plan_key, parts)


def permutation_test(data, statistic="mean_diff", *, permutation_type="independent",
                     vectorized=None, n_resamples=9999, batch=None, alternative="two-sided",
                     axis=0, seed=None, blocks_per_task=16, workers_per_task=1):
    """:func:`fastkern.permutation_test` with its blocks of permutations spread over
    Dask tasks.

    Block ``b`` of permutations draws from its own stream, fixed by `seed` alone,
    so the result is identical, value for value, to ``fastkern.permutation_test``
    with the same arguments and seed on one machine.  The exact test (every
    permutation) runs in one task.

    Parameters
    ----------
    data, statistic, permutation_type, vectorized, n_resamples, batch, alternative, axis, seed
        As for :func:`fastkern.permutation_test`; validated here, before anything
        runs.  A ``numpy.random.Generator`` seed is drawn from once, here.
    blocks_per_task : int, optional
        Blocks of ``fastkern.resampling.BLOCK_SIZE`` permutations per task.
    workers_per_task : int or None, optional
        Threads each task uses, as for :func:`bootstrap`.

    Returns
    -------
    dask.delayed.Delayed
        Lazy; ``.compute()`` gives the ``PermutationTestResult``.

    Examples
    --------
    >>> import numpy as np, fastkern, fastkern.dask
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=100), rng.normal(size=120)
    >>> res = fastkern.dask.permutation_test((x, y), seed=1).compute()
    >>> one = fastkern.permutation_test((x, y), seed=1)
    >>> bool(np.array_equal(res.null_distribution, one.null_distribution))
    True
    """
    blocks_per_task = check_int(blocks_per_task, "blocks_per_task", 1)
    workers_per_task = check_workers(workers_per_task, "workers_per_task")
    plan = _permutation._plan(data, statistic, permutation_type, vectorized, n_resamples,
                              batch, alternative, axis, seed)
    plan_key = dask.delayed(plan, pure=False)
    if plan.exact:
        parts = [dask.delayed(_permutation._exact_null, pure=True)(plan_key)]
    else:
        parts = [dask.delayed(_on_worker, pure=True)(
                     _permutation.null_blocks, plan_key, first,
                     min(first + blocks_per_task, plan.n_blocks), workers=workers_per_task)
                 for first in range(0, plan.n_blocks, blocks_per_task)]
    return dask.delayed(_permutation.finish, pure=True)(plan_key, parts)


def _chain_groups(chains, chains_per_task):
    chains_per_task = check_int(chains_per_task, "chains_per_task", 1)
    return [(first, min(first + chains_per_task, chains))
            for first in range(0, chains, chains_per_task)]


def gibbs(n, thin=1, *, chains=1, burn=0, seed=None, chains_per_task=1, workers_per_task=1):
    """:func:`fastkern.gibbs` with its chains spread over Dask tasks.

    Chain ``c`` draws from its own stream, fixed by `seed` alone, so the result is
    identical, value for value, to ``fastkern.gibbs`` with the same arguments and
    seed on one machine.

    Parameters
    ----------
    n, thin, chains, burn, seed
        As for :func:`fastkern.gibbs`; validated here.
    chains_per_task : int, optional
        Chains each task runs.
    workers_per_task : int or None, optional
        Threads each task uses, as for :func:`bootstrap`.

    Returns
    -------
    dask.array.Array, shape (chains, n, 2)
        Lazy, one chunk per task along the chain axis.

    Examples
    --------
    >>> import numpy as np, fastkern, fastkern.dask
    >>> lazy = fastkern.dask.gibbs(1000, 10, chains=4, seed=42)
    >>> bool(np.array_equal(lazy.compute(), fastkern.gibbs(1000, 10, chains=4, seed=42)))
    True
    """
    n, thin, chains, burn = _check_run(n, thin, chains, burn)
    workers_per_task = check_workers(workers_per_task, "workers_per_task")
    root = _seeding.root_seed(seed)
    pieces = [da.from_delayed(dask.delayed(_on_worker, pure=True)(
                  bivariate_chains, root, first, stop, n, thin, burn,
                  workers=workers_per_task),
                  shape=(stop - first, n, 2), dtype=np.float64)
              for first, stop in _chain_groups(chains, chains_per_task)]
    return da.concatenate(pieces, axis=0)


def gibbs_switchpoint(counts, n, *, thin=1, chains=1, burn=0, alpha=1.0, beta=1.0, seed=None,
                      chains_per_task=1, workers_per_task=1):
    """:func:`fastkern.gibbs_switchpoint` with its chains spread over Dask tasks.

    Identical, value for value, to the single-machine result with the same seed.

    Returns
    -------
    dict of dask.array.Array
        The trace's keys, each lazy and shaped as the single-machine arrays.

    Examples
    --------
    >>> import numpy as np, fastkern, fastkern.dask
    >>> years, counts = fastkern.datasets.coal_mining_disasters()
    >>> lazy = fastkern.dask.gibbs_switchpoint(counts, 500, chains=2, seed=1)
    >>> one = fastkern.gibbs_switchpoint(counts, 500, chains=2, seed=1)
    >>> bool(np.array_equal(lazy["switchpoint"].compute(), one["switchpoint"]))
    True
    """
    counts, missing = _as_counts(counts)
    n, thin, chains, burn = _check_run(n, thin, chains, burn)
    alpha = _check_positive(alpha, "alpha")
    beta = _check_positive(beta, "beta")
    workers_per_task = check_workers(workers_per_task, "workers_per_task")
    root = _seeding.root_seed(seed)
    fields = {"switchpoint": ((n,), np.int64), "early_rate": ((n,), np.float64),
              "late_rate": ((n,), np.float64)}
    if missing.size:
        fields["missing_counts"] = ((n, missing.size), np.int64)
    pieces = {key: [] for key in fields}
    for first, stop in _chain_groups(chains, chains_per_task):
        trace = dask.delayed(_on_worker, pure=True, nout=None)(
            switchpoint_chains, root, first, stop, counts, missing, n, thin, burn, alpha, beta,
            workers=workers_per_task)
        for key, (shape, dtype) in fields.items():
            pieces[key].append(da.from_delayed(trace[key], shape=(stop - first,) + shape,
                                               dtype=dtype))
    return {key: da.concatenate(parts, axis=0) for key, parts in pieces.items()}


def locate_events(amplitudes, stations, x, y, z, a, *, attenuation, workers_per_task=1):
    """:func:`fastkern.locate_events` over a catalogue of events in chunks, lazily.

    Each chunk of events (rows of `amplitudes`) is located by one task, with the
    GIL released; an event's result does not depend on the others, so the result
    is identical, value for value, to ``fastkern.locate_events`` on the whole
    catalogue, however it is chunked.  Each task computes the grid's station terms
    once (``nx * ny * nz * S`` of them): chunks of hundreds of events or more keep
    that small next to the search.

    Parameters
    ----------
    amplitudes : dask.array.Array or array_like, shape (E, S)
        Observed amplitudes, NaN where not recorded, chunked along events (the
        stations' axis is taken whole).
    stations, x, y, z, a, attenuation
        As for :func:`fastkern.locate_events`: NumPy arrays (or None for `a`),
        checked here and shipped to every task.
    workers_per_task : int or None, optional
        Threads each task uses, counted on the machine that runs it, as for
        :func:`bootstrap`.  Checked here.

    Returns
    -------
    fastkern.LocateResult
        Whose fields are lazy dask arrays of shape (E,), chunked as the events;
        ``dask.compute(result)`` gives the one of NumPy arrays (on a cluster:
        ``dask.compute(result, scheduler=client.get)``, or with the client as
        the default scheduler).  Values of `amplitudes` are checked by the tasks: a ValueError
        names the event by its row in the whole catalogue.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, fastkern, fastkern.dask
    >>> data = fastkern.datasets.synthetic_events(40, 10, shape=(15, 15, 6), seed=0)
    >>> lazy = fastkern.dask.locate_events(
    ...     da.from_array(data.amplitudes, chunks=(16, -1)), data.stations, data.x,
    ...     data.y, data.z, data.a, attenuation=data.attenuation)
    >>> (res,) = dask.compute(lazy)
    >>> bool(np.array_equal(res.ix, data.source_index[:, 0]))
    True
    """
    amp = da.asarray(amplitudes)
    if amp.dtype.kind not in "iuf":
        raise TypeError(f"amplitudes must hold real numbers, got dtype {amp.dtype}")
    if amp.ndim != 2:
        raise ValueError(f"amplitudes must be 2-D, got an array of shape {amp.shape}")
    if amp.shape[1] == 0:
        raise ValueError(f"amplitudes must have at least one station (column), got shape "
                         f"{amp.shape}")
    grid = _locate.check_grid(stations, x, y, z, a, attenuation, n_stations=amp.shape[1])
    workers_per_task = check_workers(workers_per_task, "workers_per_task")
    amp = amp.rechunk({1: -1})
    grid_key = dask.delayed(grid, pure=True)
    fields = [f.name for f in dataclasses.fields(_locate.LocateResult)]
    pieces = {name: [] for name in fields}
    first = 0
    for block, n in zip(amp.to_delayed().ravel(), amp.chunks[0]):
        part = dask.delayed(_on_worker, pure=True)(_locate_block, block, grid_key, first,
                                                   workers=workers_per_task)
        for name in fields:
            dtype = np.int64 if name in ("ix", "iy", "iz") else np.float64
            pieces[name].append(da.from_delayed(getattr(part, name), shape=(n,), dtype=dtype))
        first += n
    return _locate.LocateResult(**{
        name: da.concatenate(parts) if parts else da.zeros((0,), dtype=np.float64 if name
                                                            not in ("ix", "iy", "iz")
                                                            else np.int64)
        for name, parts in pieces.items()})


def _locate_block(block, grid, first, n_threads):
    """One chunk of events, located: a LocateResult of NumPy arrays."""
    problem = _locate._Problem(_locate.check_amplitudes(block, first), *grid, first_event=first)
    return _locate._solve(problem, n_threads)
