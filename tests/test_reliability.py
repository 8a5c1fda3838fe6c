"""What a user may rely on whatever they pass or however they run fastkern: a
forked child can call every kernel, no `workers` value ends the process, and
Dask's `workers_per_task` is checked when the graph is built."""
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastkern
from fastkern.attention import SparseCSR, local_1d_pattern, sparse_attention


def _calls():
    """One small call of every kernel, by name: fn(workers) -> array."""
    rng = np.random.default_rng(0)
    image = rng.standard_normal((300, 200))
    kernel = rng.standard_normal((5, 4))
    big_kernel = rng.standard_normal((41, 37))
    x = rng.normal(size=2000)
    counts = fastkern.datasets.coal_mining_disasters()[1]
    mask = SparseCSR.from_dense(local_1d_pattern(256, 9))
    q = rng.standard_normal((4, 256, 16))
    events = fastkern.datasets.synthetic_events(30, 10, shape=(20, 20, 8), noise=0.2,
                                                missing=0.1, seed=0)
    return {
        "convolve2d": lambda w: fastkern.convolve2d(image, kernel, "same", workers=w),
        "sepconvolve2d": lambda w: fastkern.sepconvolve2d(image, kernel[:, 0], kernel[0], "same",
                                                         workers=w),
        "convolve2d_fft": lambda w: fastkern.convolve2d(image, big_kernel, "same", method="fft",
                                                       workers=w),
        "bootstrap": lambda w: fastkern.bootstrap(
            x, "median", n_resamples=500, seed=1, workers=w).bootstrap_distribution,
        "permutation_test": lambda w: fastkern.permutation_test(
            (x[:1000], x[1000:]), "t", n_resamples=500, seed=1, workers=w).null_distribution,
        "gibbs": lambda w: fastkern.gibbs(500, 2, chains=3, seed=1, workers=w),
        "gibbs_switchpoint": lambda w: fastkern.gibbs_switchpoint(
            counts, 200, chains=3, seed=1, workers=w)["switchpoint"],
        "sparse_attention": lambda w: sparse_attention(q, q, q, mask, workers=w),
        "locate_events": lambda w: fastkern.locate_events(
            events.amplitudes, events.stations, events.x, events.y, events.z, events.a,
            attenuation=events.attenuation, workers=w).error,
    }


KERNELS = ["convolve2d", "sepconvolve2d", "convolve2d_fft", "bootstrap", "permutation_test", "gibbs", "gibbs_switchpoint", "sparse_attention", "locate_events"]


def _all_kernels(workers):
    """Every kernel's result with `workers` (a module-level function: pickled by
    multiprocessing's spawn and forkserver)."""
    return {name: call(workers) for name, call in _calls().items()}


# ---------------------------------------------------------------------- fork

def test_a_forked_child_after_a_parallel_call():
    # the reproducer: the parent's OpenMP threads exist, then fork
    code = textwrap.dedent("""
        import os, sys
        import fastkern
        from fastkern._workers import in_forked_child, resolve_workers
        fastkern.gibbs(1000, chains=2, workers=2, seed=1)
        expected = fastkern.gibbs(1000, chains=2, workers=2, seed=1)
        pid = os.fork()
        if pid == 0:
            got = fastkern.gibbs(1000, chains=2, workers=2, seed=1)
            ok = (got == expected).all() and in_forked_child() and resolve_workers(2) == 1
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    if not hasattr(os, "fork"):
        pytest.skip("no fork() on this platform")
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == 0


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_pool_after_a_parallel_call(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    expected = _all_kernels(1)
    _all_kernels(2)  # the parent's OpenMP threads exist before the pool starts
    ctx = multiprocessing.get_context(method)
    pool = ctx.Pool(2)
    try:
        # a hung child fails the test instead of hanging the suite
        results = pool.map_async(_all_kernels, [2, 2, -1]).get(timeout=300)
    finally:
        pool.terminate()
        pool.join()
    for got in results:
        for name in KERNELS:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


# ------------------------------------------------------------------- workers

@pytest.mark.parametrize("name", KERNELS)
def test_huge_workers_is_clamped(name):
    call = _calls()[name]
    expected = call(1)
    for workers in (10**9, 2**31 - 1):
        np.testing.assert_array_equal(call(workers), expected)
    with fastkern.set_workers(10**9):
        np.testing.assert_array_equal(call(None), expected)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("workers,error", [
    (2**31, ValueError), (2**63, ValueError), (10**30, ValueError), (0, ValueError),
    (-10**9, ValueError), (-2**63, ValueError), ("2", TypeError), (2.0, TypeError),
    (True, TypeError), (np.float64(2), TypeError)])
def test_bad_workers(name, workers, error):
    with pytest.raises(error, match="workers"):
        _calls()[name](workers)


def test_bad_set_workers():
    for workers, error in [(2**31, ValueError), (0, ValueError), ("1", TypeError)]:
        with pytest.raises(error, match="workers"):
            with fastkern.set_workers(workers):
                pass


def test_threads_are_bounded():
    from fastkern._workers import MAX_THREADS_PER_CPU, cpu_count, resolve_workers

    if not fastkern.show_config(mode="dicts")["openmp"]["enabled"]:
        pytest.skip("a serial build always runs one thread")
    assert resolve_workers(10**9) == MAX_THREADS_PER_CPU * cpu_count()
    assert resolve_workers(10**9, units=3) == 3
    assert resolve_workers(-1) == cpu_count()
    assert resolve_workers(5, units=0) == 1


def test_parallel_map_bounds_its_threads():
    with pytest.raises(ValueError, match="num_parallel_calls"):
        fastkern.parallel_map(abs, range(3), num_parallel_calls=10**6)
    with pytest.raises(ValueError, match="num_parallel_calls"):
        fastkern.parallel_map(abs, range(3), num_parallel_calls=2**70)
    assert list(fastkern.parallel_map(abs, range(-3, 0), num_parallel_calls=4096)) == [3, 2, 1]
