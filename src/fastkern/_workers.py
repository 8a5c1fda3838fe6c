"""The ``workers`` argument: how many threads a kernel may use.

The convention is scipy's (``scipy.fft``): ``None`` means the default, a positive
integer is taken as given, a negative one counts back from the number of CPUs
(``-1`` is all of them, ``-2`` all but one) and ``0`` is an error.

What a call actually starts is bounded, whatever ``workers`` says (results never
depend on it, so clamping is always safe):

- at most ``MAX_THREADS_PER_CPU`` threads per CPU, and no more than the call has
  units of work (the kernels pass ``units``), so no value can exhaust the OpenMP
  runtime, which ends the process when it cannot start a thread;
- one thread in a process made by ``fork()`` (``multiprocessing``'s "fork" start
  method, data loaders): GNU OpenMP's thread pool does not survive a fork, and a
  child that started a parallel region would wait for ever for its parent's
  threads.  Processes started by "spawn" or "forkserver" are not affected;
- with ``workers=None`` and no :func:`set_workers` default, no more threads than
  there are CPUs that other processes are not running right now (Linux, where
  this process may use every CPU; see ``busy_cpus``).  On a machine where another
  program keeps a core busy, a thread placed there would share it, and the whole
  call would wait for that thread's share: one thread fewer is faster.

The OpenMP runtime's threads sleep while they wait for work instead of spinning
(``OMP_WAIT_POLICY=PASSIVE`` when fastkern loads the runtime, unless the user set
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``): a spinning thread takes a core from
other programs, and from the other threads of a call on a busy machine.
"""
import contextlib
import contextvars
import functools
import math
import operator
import os
import time


def _import_buildinfo():
    """Import the first extension, which loads the OpenMP runtime; the runtime
    reads its wait policy from the environment when it loads."""
    chosen = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    if not chosen:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        from . import _buildinfo
    finally:
        if not chosen:
            del os.environ["OMP_WAIT_POLICY"]
    return _buildinfo, chosen


_buildinfo, _user_wait_policy = _import_buildinfo()

_default_workers = contextvars.ContextVar("fastkern_workers", default=None)

# Threads per CPU a call may start at most (oversubscription beyond this only
# costs), and the largest workers value accepted at all (OpenMP counts in int).
MAX_THREADS_PER_CPU = 4
MAX_WORKERS = 2**31 - 1

_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_forked_child():
    """True in a process made by fork() after fastkern was imported: calls there
    run on one thread."""
    return _forked_child


@functools.lru_cache(maxsize=1)
def _cgroup_cpu_limit():
    """CPUs allowed by a cgroup CPU quota (containers), or None if unlimited."""
    try:  # cgroup v2
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def cpu_count():
    """CPUs this process may use: its affinity mask, capped by a cgroup quota."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    n = n or 1
    limit = _cgroup_cpu_limit()
    return min(n, limit) if limit else n


# busy_cpus() reads the kernel's count of runnable threads at most this often
BUSY_REFRESH_S = 0.01
_busy = [float("-inf"), 0]   # (when read, CPUs found busy)


def runnable(stat_path):
    """True if the process or thread whose /proc ``stat`` file this is is running
    or runnable (Linux); OSError if it is gone."""
    with open(stat_path, "rb") as f:
        stat = f.read()
    state = stat.rindex(b")") + 2   # the command name may hold spaces and parentheses
    return stat[state:state + 1] == b"R"


def _running_threads_here():
    """Threads of this process that are running or runnable (Linux)."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            n += runnable(f"/proc/self/task/{tid}/stat")
        except OSError:   # the thread ended
            continue
    return max(n, 1)


def busy_cpus():
    """CPUs that other processes are running threads on right now, as far as
    Linux tells: runnable threads in the whole system (``/proc/loadavg``) less
    this process's own.  0 elsewhere, where this process may use only some of the
    machine's CPUs (a container's cgroup quota, an affinity mask: the count is the
    whole machine's), or where the user chose a spinning OpenMP wait policy (the
    runtime's own idle threads would count).  Read at most every BUSY_REFRESH_S."""
    now = time.monotonic()
    if now - _busy[0] < BUSY_REFRESH_S:
        return _busy[1]
    busy = 0
    if not _user_wait_policy and cpu_count() == os.cpu_count():
        try:
            with open("/proc/loadavg", "rb") as f:
                running = int(f.read().split()[3].split(b"/")[0])
            if running > 1:
                busy = max(0, running - _running_threads_here())
        except (OSError, ValueError, IndexError):
            busy = 0
    _busy[0], _busy[1] = now, busy
    return busy


def _check_workers(workers, name="workers"):
    """Validate an explicit workers value and return it as a nonzero int."""
    if isinstance(workers, bool):
        raise TypeError(f"{name} must be an integer or None, got {workers!r}")
    try:
        workers = operator.index(workers)
    except TypeError:
        raise TypeError(f"{name} must be an integer or None, got {workers!r}") from None
    if workers == 0:
        raise ValueError(f"{name} must not be zero, got {workers}")
    if workers > MAX_WORKERS:
        raise ValueError(f"{name} must be at most {MAX_WORKERS}, got {workers}")
    if workers < 0 and cpu_count() + 1 + workers <= 0:
        raise ValueError(f"{name} value out of range; got {workers}, "
                         f"must not be less than {-cpu_count()}")
    return workers


def check_workers(workers, name="workers"):
    """Validate ``workers`` (None or a nonzero int, see the module docstring) and
    return it unresolved: for work that runs later or elsewhere (Dask tasks), where
    the threads are counted on the machine that runs it."""
    return None if workers is None else _check_workers(workers, name)


def resolve_workers(workers=None, units=None):
    """The number of threads a kernel call runs on, as a positive int.

    ``None`` takes the default set by :func:`set_workers`, else all CPUs this
    process may use, capped by OpenMP's own limit (``OMP_NUM_THREADS`` or a
    ``threadpoolctl.threadpool_limits`` block), less the CPUs that other
    processes keep busy (:func:`busy_cpus`).  The result is at most
    ``MAX_THREADS_PER_CPU`` per CPU, at most ``units`` (the call's units of
    parallel work) where given, and 1 in a forked child or a serial build.
    """
    if workers is None:
        workers = _default_workers.get()
    cpus = cpu_count()
    if workers is None:
        n = min(cpus, _buildinfo.openmp_max_threads())
        if n > 1 and (units is None or units > 1):
            n = max(1, min(n, cpus - busy_cpus()))
    else:
        workers = _check_workers(workers)
        n = workers if workers > 0 else cpus + 1 + workers
    if not _buildinfo.openmp_enabled() or _forked_child:
        return 1
    n = min(n, MAX_THREADS_PER_CPU * cpus)
    if units is not None:
        n = min(n, units)
    return max(1, n)


def get_workers():
    """The number of threads a kernel uses when called with ``workers=None`` on
    an idle machine: while other processes keep CPUs busy, a call takes fewer
    (see :func:`resolve_workers`)."""
    workers = _default_workers.get()
    if workers is None:
        cpus = cpu_count()
        workers = min(cpus, _buildinfo.openmp_max_threads())
    return resolve_workers(workers)


@contextlib.contextmanager
def set_workers(workers):
    """Context manager that sets the default ``workers`` for kernel calls in its block.

    The setting is local to the current thread (and asyncio task), like
    ``scipy.fft.set_workers``: it is held in a ``contextvars.ContextVar``, so
    other threads keep their own default, with or without a GIL.  A thread
    started inside the block begins with the process default, except where
    Python copies the starting thread's context into new threads
    (``sys.flags.thread_inherit_context``, on by default in free-threaded 3.14),
    where it begins with this block's value.

    Parameters
    ----------
    workers : int
        Threads to use; negative values count back from the number of CPUs.

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> with fastkern.set_workers(1):
    ...     fastkern.get_workers()
    1
    """
    workers = _check_workers(workers)
    token = _default_workers.set(workers)
    try:
        yield
    finally:
        _default_workers.reset(token)
