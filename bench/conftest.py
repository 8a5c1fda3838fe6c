"""Shared pieces of the benchmarks.

Run them with ``python -m pytest bench/ --benchmark-only`` (add
``--benchmark-json=out.json`` and read it with ``python bench/ratios.py out.json``
for the speed-ups of each group against its reference).
"""
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "reference: the thing a user would run instead")


@pytest.fixture
def run(benchmark):
    """benchmark.pedantic with a warm-up round: run(fn, rounds=5)."""

    def go(fn, rounds=5):
        return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)

    return go
