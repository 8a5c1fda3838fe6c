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


def run_while_counting(fn, min_duration=0.2):
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


@pytest.fixture
def assert_releases_gil():
    """Check that fn() lets another Python thread run for the whole of its compute."""

    def check(fn, min_duration=0.2):
        duration, gap = run_while_counting(fn)
        assert duration >= min_duration, (
            f"the workload took {duration:.3f} s; make it longer than {min_duration} s "
            "so that the check means something")
        assert gap < 0.5 * duration, (
            f"another thread made no progress for {gap:.3f} s of a {duration:.3f} s call: "
            "the kernel holds the GIL")

    return check


@pytest.fixture
def int64_indices(monkeypatch):
    """Make SparseCSR use int64 indices even where int32 would do."""
    from fastkern.attention import csr

    monkeypatch.setattr(csr, "_INT32_MAX", 0)
