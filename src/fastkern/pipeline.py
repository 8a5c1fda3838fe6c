"""``parallel_map``: a prefetching parallel map over threads, for pipelines whose
steps release the GIL (fastkern's kernels, NumPy, I/O)."""
import collections
import concurrent.futures as cf
import itertools

from ._validation import check_int
from ._workers import get_workers

__all__ = ["parallel_map"]


class _Pipeline:
    """The iterator parallel_map returns; close() (or leaving a ``with`` block)
    cancels calls not yet started and waits for the running ones."""

    def __init__(self, gen):
        self._gen = gen

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self):
        self._gen.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


# Threads one pipeline may start: far beyond what helps even I/O-bound calls, and
# below where starting them fails ("can't start new thread").
MAX_PARALLEL_CALLS = 4096


def _check_count(value, name, minimum):
    return None if value is None else check_int(value, name, minimum)


def parallel_map(fn, iterable, *, num_parallel_calls=None, prefetch=None, ordered=True):
    """Map `fn` over `iterable` on a pool of threads, prefetching results.

    The input is consumed lazily: at most ``num_parallel_calls + prefetch`` items are
    taken ahead of the consumer, so an endless generator works, and at most
    ``num_parallel_calls`` calls of `fn` run at once.  Threads give real
    parallelism when `fn` spends its time outside the GIL, as fastkern's kernels do.

    Parameters
    ----------
    fn : callable
        Called as ``fn(item)`` for each item.
    iterable : iterable
        The inputs; read only from the consumer's thread.
    num_parallel_calls : int, optional
        Calls in flight at once, each on its own thread; default
        :func:`fastkern.get_workers`, at most ``MAX_PARALLEL_CALLS`` (4096).
    prefetch : int, optional
        Further items taken ahead, whose results wait for the consumer; default
        ``num_parallel_calls``.  0 is allowed.
    ordered : bool, optional
        Yield results in input order (default), or as calls finish.

    Returns
    -------
    iterator
        The results.  An exception raised by `fn` (or by `iterable`) is raised
        here, at its position in the output, and ends the pipeline: calls not yet
        started are cancelled and the threads are shut down.  ``close()``, or
        leaving a ``with`` block, does the same for a pipeline abandoned early.

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> images = (np.full((64, 64), i, dtype=float) for i in range(4))
    >>> box = np.ones((3, 3))
    >>> with fastkern.parallel_map(lambda im: fastkern.convolve2d(im, box, workers=1)[0, 0],
    ...                            images, num_parallel_calls=2) as results:
    ...     list(results)
    [0.0, 1.0, 2.0, 3.0]
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    n_calls = _check_count(num_parallel_calls, "num_parallel_calls", 1) or get_workers()
    if n_calls > MAX_PARALLEL_CALLS:
        raise ValueError(f"num_parallel_calls must be at most {MAX_PARALLEL_CALLS}, "
                         f"got {n_calls}")
    n_ahead = _check_count(prefetch, "prefetch", 0)
    n_ahead = n_calls if n_ahead is None else n_ahead
    if not isinstance(ordered, bool):
        raise TypeError(f"ordered must be True or False, got {ordered!r}")
    items = iter(iterable)
    return _Pipeline(_run(fn, items, n_calls, n_calls + n_ahead, ordered))


def _run(fn, items, n_calls, window, ordered):
    executor = cf.ThreadPoolExecutor(n_calls, thread_name_prefix="fastkern-parallel_map")
    pending = collections.deque()  # futures in input order (ordered) or any order
    counter = itertools.count()
    exhausted = False
    try:
        while True:
            # fill the window: items taken ahead of the consumer
            while not exhausted and len(pending) < window:
                try:
                    item = next(items)
                except StopIteration:
                    exhausted = True
                    break
                except Exception as exc:  # the input's own error, at its position
                    failed = cf.Future()
                    failed.set_exception(exc)
                    pending.append((next(counter), failed))
                    exhausted = True
                    break
                try:
                    future = executor.submit(fn, item)
                except RuntimeError as exc:  # the system's thread limit
                    raise RuntimeError(f"parallel_map could not start another thread with "
                                       f"num_parallel_calls={n_calls}: {exc}") from exc
                pending.append((next(counter), future))
            if not pending:
                return
            if ordered:
                _, future = pending.popleft()
            else:
                done, _ = cf.wait([f for _, f in pending], return_when=cf.FIRST_COMPLETED)
                # among the finished, the earliest input first: deterministic for ties
                index = next(i for i, (_, f) in enumerate(pending) if f in done)
                _, future = pending[index]
                del pending[index]
            yield future.result()
    finally:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
