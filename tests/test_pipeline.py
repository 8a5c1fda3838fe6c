"""parallel_map against a plain map: order, laziness, errors, shutdown."""
import itertools
import threading
import time

import numpy as np
import pytest

import fastkern
from fastkern import parallel_map


def pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastkern-parallel_map")]


def test_ordered_equals_map():
    data = list(range(50))
    assert list(parallel_map(lambda x: x * x, data, num_parallel_calls=4)) == [x * x for x in data]


def test_unordered_yields_every_result_once():
    def slow_first(x):
        time.sleep(0.05 if x == 0 else 0.0)
        return x

    out = list(parallel_map(slow_first, range(20), num_parallel_calls=3, ordered=False))
    assert sorted(out) == list(range(20))
    assert out[0] != 0  # the slow first item does not hold the others back


@pytest.mark.parametrize("n_calls,prefetch", [(1, 0), (2, 1), (3, 5), (4, None)])
def test_input_is_consumed_lazily(n_calls, prefetch):
    taken = []

    def endless():
        for i in itertools.count():
            taken.append(i)
            yield i

    window = n_calls + (n_calls if prefetch is None else prefetch)
    with parallel_map(lambda x: x, endless(), num_parallel_calls=n_calls, prefetch=prefetch) as it:
        for consumed in range(1, 30):
            assert next(it) == consumed - 1
            assert len(taken) - consumed <= window
    assert pool_threads() == []


def test_at_most_num_parallel_calls_run_at_once():
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return x

    assert list(parallel_map(work, range(30), num_parallel_calls=3, prefetch=10)) == list(range(30))
    assert 1 <= peak[0] <= 3


def test_exception_is_raised_at_its_position_and_stops_the_pipeline():
    calls = []

    def fn(x):
        calls.append(x)
        if x == 5:
            raise KeyError("five")
        return x

    it = parallel_map(fn, range(1000), num_parallel_calls=2, prefetch=2)
    got = []
    with pytest.raises(KeyError, match="five"):
        for x in it:
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    assert max(calls) <= 5 + 4  # nothing started beyond the window
    assert pool_threads() == []
    with pytest.raises(StopIteration):
        next(it)


def test_error_from_the_input_is_raised_at_its_position():
    def items():
        yield 1
        yield 2
        raise RuntimeError("input broke")

    it = parallel_map(lambda x: -x, items(), num_parallel_calls=2)
    assert next(it) == -1
    assert next(it) == -2
    with pytest.raises(RuntimeError, match="input broke"):
        next(it)


def test_closing_early_cancels_pending_calls():
    started = []

    def fn(x):
        started.append(x)
        time.sleep(0.02)
        return x

    it = parallel_map(fn, itertools.count(), num_parallel_calls=2, prefetch=3)
    assert next(it) == 0
    it.close()
    n = len(started)
    assert n <= 1 + 2 + 3
    time.sleep(0.1)
    assert len(started) == n  # nothing more started after close
    assert pool_threads() == []


def test_kernels_in_parallel_match_serial():
    rng = np.random.default_rng(0)
    images = [rng.random((200, 200)) for _ in range(6)]
    f = rng.random((5, 5))
    serial = [fastkern.convolve2d(im, f, workers=1) for im in images]
    out = list(parallel_map(lambda im: fastkern.convolve2d(im, f, workers=1), images,
                            num_parallel_calls=2))
    for a, b in zip(out, serial):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"num_parallel_calls": 0}, ValueError, "num_parallel_calls must be at least 1"),
    ({"num_parallel_calls": 1.5}, TypeError, "num_parallel_calls must be an integer"),
    ({"prefetch": -1}, ValueError, "prefetch must be at least 0"),
    ({"ordered": "yes"}, TypeError, "ordered must be"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        parallel_map(abs, [1], **kwargs)
    with pytest.raises(TypeError, match="fn must be callable"):
        parallel_map(3, [1])
