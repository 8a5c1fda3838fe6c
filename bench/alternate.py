"""Timing on a machine whose speed drifts: the candidates alternated."""
import statistics
import time


def alternated(calls, rounds):
    """Median seconds of each call, the calls alternated: one warm-up each, then
    ``rounds`` rounds calling each once, the order rotated every round."""
    names = list(calls)
    for name in names:
        calls[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
