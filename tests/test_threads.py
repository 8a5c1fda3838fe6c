"""Every kernel hammered from 8 Python threads at once: each result must equal the
serial one.  On free-threaded CPython this runs truly in parallel; elsewhere the
kernels still overlap outside the GIL."""
import concurrent.futures

import numpy as np
import pytest

import fastkern

N_THREADS = 8
ROUNDS = 4


def _convolve_cases():
    rng = np.random.default_rng(0)
    cases = []
    for i, dtype in enumerate([np.float32, np.float64, np.complex128, np.int32]):
        a = (rng.standard_normal((150 + i, 170)) * 10).astype(dtype)
        b = (rng.standard_normal((5, 4)) * 10).astype(dtype)
        cases.append(lambda a=a, b=b: fastkern.convolve2d(a, b, "same", "symm", workers=2))
        cases.append(lambda a=a, b=b: fastkern.correlate2d(a, b, stride=(2, 3), workers=1))
    return cases


KERNELS = {"convolve": _convolve_cases}


def _assert_same(got, want):
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            _assert_same(got[key], want[key])
    elif isinstance(want, (tuple, list)):
        for g, w in zip(got, want):
            _assert_same(g, w)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("topic", sorted(KERNELS))
def test_eight_threads_match_serial(topic):
    cases = KERNELS[topic]()
    serial = [case() for case in cases]
    jobs = [(i, case) for _ in range(ROUNDS) for i, case in enumerate(cases)]
    with concurrent.futures.ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(lambda job: (job[0], job[1]()), jobs))
    for i, result in results:
        _assert_same(result, serial[i])


def test_set_workers_is_per_thread():
    seen = {}

    def worker(n):
        with fastkern.set_workers(n):
            seen[n] = fastkern.get_workers()

    with fastkern.set_workers(1):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(worker, [2, 3]))
        assert fastkern.get_workers() == 1
    if fastkern.show_config(mode="dicts")["openmp"]["enabled"]:
        assert seen == {2: 2, 3: 3}
