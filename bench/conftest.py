"""Shared pieces of the benchmarks.

Run them with ``python -m pytest bench/ --benchmark-only`` (add
``--benchmark-json=out.json`` and read it with ``python bench/ratios.py out.json``
for the speed-ups of each group against its reference).
"""
import os
import subprocess
import sys
import time

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "reference: the thing a user would run instead")


@pytest.fixture
def run(benchmark):
    """benchmark.pedantic with a warm-up round: run(fn, rounds=5)."""

    def go(fn, rounds=5):
        return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)

    return go


class BusyCore:
    """Another process holding one core with a busy loop, as a program the user
    runs next to theirs would: ``with BusyCore(): ...``."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._running():
            time.sleep(0.01)
        time.sleep(0.2)   # let the scheduler place it
        return self

    def _running(self):
        from fastkern._workers import runnable
        try:
            return runnable(f"/proc/{self.proc.pid}/stat")
        except OSError:   # not Linux: assume it runs
            return True

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def busy_core():
    """One core held by a busy process for the length of the test."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: holding it leaves nothing to measure")
    with BusyCore() as busy:
        yield busy
