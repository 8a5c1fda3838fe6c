import os
import threading
import time

import pytest


def pytest_configure(config):
    # registered here, not in pyproject.toml, so that a copy of tests/ run against
    # an installed wheel knows them too
    config.addinivalue_line("markers", "slow: long-running (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped where none is present")

# Turn hypothesis down on CI's 2-core machines; locally the default profile runs.
try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=60, deadline=None)
    settings.register_profile("dev", max_examples=100, deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # hypothesis is in the [test] extra
    pass


def run_while_counting(fn):
    """Run fn() in a second thread while this thread runs a pure-Python loop.

    Returns (duration of fn, the longest stretch this thread went without
    progressing while fn ran).  A kernel that holds the GIL while it computes
    stops this thread for its whole compute; one that releases it leaves gaps of
    a scheduler tick or so.
    """
    span = {}

    def target():
        span["start"] = time.perf_counter()
        fn()
        span["end"] = time.perf_counter()

    stamps = []
    thread = threading.Thread(target=target)
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
    thread.join()
    start, end = span["start"], span["end"]
    inside = [start] + [t for t in stamps if start <= t <= end] + [end]
    gap = max(b - a for a, b in zip(inside, inside[1:]))
    return end - start, gap


def long_enough(make_call, min_duration, max_scale=2**20):
    """make_call(scale) for the smallest scale in 1, 2, 4, ... whose call lasts at
    least min_duration seconds on this machine; returns (call, its duration)."""
    scale = 1
    while True:
        call = make_call(scale)
        start = time.perf_counter()
        call()
        duration = time.perf_counter() - start
        if duration >= min_duration:
            return call, duration
        if scale >= max_scale:
            raise AssertionError(f"make_call({scale}) still took only {duration:.4f} s")
        # jump close to the target once a call is long enough to time
        scale *= 2 if duration < 0.01 else max(2, int(min_duration / duration * 1.5) + 1)


@pytest.fixture
def assert_releases_gil():
    """check(make_call): make_call(scale) returns a zero-argument call whose work
    grows with scale.  The workload grows until one call lasts min_duration, so
    the check means the same on any machine; then another Python thread must keep
    progressing through that whole call."""

    def check(make_call, min_duration=0.2):
        call, _ = long_enough(make_call, min_duration)
        duration, gap = run_while_counting(call)
        assert gap < 0.5 * duration, (
            f"another thread made no progress for {gap:.3f} s of a {duration:.3f} s call: "
            "the kernel holds the GIL")

    return check


@pytest.fixture
def assert_interruptible():
    """check(call, small=None): SIGINT sent to the process 0.2 s into call() must
    raise KeyboardInterrupt within `bound` seconds; call must be a workload that
    would run far longer than that.  Then small() (a short call of the same kernel)
    must still work."""
    import signal

    def check(call, small=None, delay=0.2, bound=2.0):
        if threading.current_thread() is not threading.main_thread():
            pytest.skip("signals are handled on the main thread only")
        sent = []
        armed = [True]

        def handler(signum, frame):
            if armed[0]:
                raise KeyboardInterrupt

        def send():
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        previous = signal.signal(signal.SIGINT, handler)
        timer = threading.Timer(delay, send)
        try:
            timer.start()
            try:
                call()
            except KeyboardInterrupt:
                stopped = time.perf_counter()
            else:
                raise AssertionError("the call ended before the signal; make it longer")
            finally:
                armed[0] = False
                timer.cancel()
                timer.join()
        finally:
            signal.signal(signal.SIGINT, previous)
        latency = stopped - sent[0]
        assert latency < bound, f"KeyboardInterrupt came {latency:.2f} s after SIGINT"
        if small is not None:
            small()
        return latency

    return check


@pytest.fixture
def int64_indices(monkeypatch):
    """Make SparseCSR use int64 indices even where int32 would do."""
    from fastkern.attention import csr

    monkeypatch.setattr(csr, "_INT32_MAX", 0)
