"""The rows of ``python -m fastkern``: each kernel on a built-in workload against the
thing a user would otherwise run.

Each topic has a module ``_demo/<topic>.py`` with ``workload(quick) -> list[Row]``;
``__main__`` lists those modules.
"""
import dataclasses
import time


@dataclasses.dataclass
class Row:
    kernel: str        # e.g. "convolve2d"
    workload: str      # what was computed, in words
    reference: str     # what it is compared with, e.g. "scipy.signal.convolve2d"
    t_ref: float       # seconds, the reference
    t_one: float       # seconds, fastkern with workers=1
    t_all: float       # seconds, fastkern with all workers
    max_diff: float    # largest |fastkern - reference| (or a comparable statistic)
    agreement: str = ""  # how max_diff should be read, e.g. "abs", "rel", "exact"


def best_time(fn, repeat=3):
    """Shortest wall time of `repeat` calls of fn(), in seconds, and fn's last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result
