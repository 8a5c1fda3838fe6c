"""Benchmarks of fastkern.locate_events against what a user would run instead.

The workload: 1,000 events, 20 stations, a 100x100x30 grid of candidate sources
(300,000 positions), 50 candidate amplitudes (synthetic events off the grid, 10%
log-normal noise).  fastkern with 1 and 2 workers locates all of them; the
references, far slower, are timed on a subset and scaled:

- the loop in plain Python: one event on a 2x4x30 corner of the grid (240
  positions), scaled per candidate (position x amplitude) to the whole workload;
- the loop vectorised with NumPy over amplitudes and stations, per event (blocks
  of positions at once): 2 events, scaled per event;
- the loop compiled by numba, ``@njit(parallel=True)``, events in ``prange``: 4
  events with 1 and 2 threads (``numba.set_num_threads``), scaled per event.

NumPy and numba get the station terms exp(-B r)/r computed once, as fastkern
does; they then evaluate every candidate, as the loop does.  Before timing, each
reference's choices are checked against fastkern's on its subset (the Python loop
bit for bit, NumPy and numba to rounding).

Targets: fastkern under 1 s with 2 workers; at least 50x the NumPy version and 5x
numba at equal threads; at least 10,000x the Python loop; 2 workers at least 1.7x
one.

Run:

    python -m pytest bench/bench_locate.py --benchmark-only \\
        --benchmark-columns=min,median,max,rounds

or, for a table of medians with the candidates alternated round by round,

    python bench/bench_locate.py [rounds]

Timings on a shared machine are noisy: rerun when the spread of a row is large.
"""
import math
import pathlib
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from alternate import alternated  # noqa: E402

from fastkern._demo.locate import numpy_locate, station_terms  # noqa: E402
from fastkern._workers import cpu_count  # noqa: E402
from fastkern.datasets import synthetic_events  # noqa: E402
from fastkern.locate import locate_events  # noqa: E402

N_EVENTS, N_STATIONS, SHAPE, N_AMPLITUDES = 1000, 20, (100, 100, 30), 50
NUMPY_EVENTS, NUMBA_EVENTS = 2, 4
PYTHON_CORNER = (2, 4, 30)                 # 240 positions of one event
MEDIANS = {}   # name -> median seconds, for the whole workload (scaled references)
MINIMA = {}


def workload():
    return synthetic_events(N_EVENTS, N_STATIONS, shape=SHAPE, n_amplitudes=N_AMPLITUDES,
                            noise=0.1, on_grid=False, seed=2024)


def n_candidates(shape, n_amplitudes):
    return math.prod(shape) * n_amplitudes


# ---------------------------------------------------------------------------
# the references

def python_locate(d, stations, x, y, z, a, attenuation):
    """The issue's loop for one event, in plain Python: (i, j, k, A, err)."""
    best, choice = math.inf, None
    for i, xi in enumerate(x):
        for j, yj in enumerate(y):
            for k, zk in enumerate(z):
                for A in a:
                    err = 0.0
                    for s, (sx, sy, sz) in enumerate(stations):
                        dx, dy, dz = xi - sx, yj - sy, zk - sz
                        r = math.sqrt(dx * dx + dy * dy + dz * dz)
                        u = A * (math.exp(-attenuation * r) / r) - d[s]
                        err += u * u
                    if err < best:
                        best, choice = err, (i, j, k, A)
    return choice + (best,)


def make_numba_locate():
    numba = pytest.importorskip("numba") if "pytest" in sys.modules else __import__("numba")

    @numba.njit(parallel=True)
    def numba_locate(amplitudes, g, a):
        """The loop over precomputed station terms g (P, S): per event, the best
        (position, amplitude index) and its error; events in parallel."""
        E, S = amplitudes.shape
        P, K = g.shape[0], a.size
        pos = np.empty(E, np.int64)
        amp = np.empty(E, np.int64)
        error = np.empty(E)
        for e in numba.prange(E):
            best, bp, bk = np.inf, 0, 0
            for p in range(P):
                for k in range(K):
                    A = a[k]
                    err = 0.0
                    for s in range(S):
                        d = amplitudes[e, s]
                        if not np.isnan(d):
                            u = A * g[p, s] - d
                            err += u * u
                    if err < best:
                        best, bp, bk = err, p, k
            pos[e], amp[e], error[e] = bp, bk, best
        return pos, amp, error

    return numba, numba_locate


def _same_choices(got_idx, got_amp, got_err, res, events):
    """The references' choices against fastkern's: equal, or an error within
    rounding of fastkern's (a near-tie, decided by rounding)."""
    for n, e in enumerate(events):
        same = (tuple(got_idx[n]) == (res.ix[e], res.iy[e], res.iz[e])
                and got_amp[n] == res.amplitude[e])
        assert same or got_err[n] == pytest.approx(res.error[e], rel=1e-9), (
            f"event {e}: {got_idx[n]}, A={got_amp[n]}, err={got_err[n]} vs fastkern's "
            f"{(res.ix[e], res.iy[e], res.iz[e])}, A={res.amplitude[e]}, err={res.error[e]}")
        assert got_err[n] == pytest.approx(res.error[e], rel=1e-9)


def check_references(data, res, numba_fn=None):
    """Each reference's answer on its subset equals fastkern's."""
    args = (data.stations, data.x, data.y, data.z, data.a, data.attenuation)
    ix, iy, iz, amp, misfit, err = numpy_locate(data.amplitudes[:NUMPY_EVENTS], *args)
    _same_choices(np.column_stack([ix, iy, iz]), amp, err, res, range(NUMPY_EVENTS))
    if numba_fn is not None:
        g = station_terms(data.stations, data.x, data.y, data.z, data.attenuation)
        pos, k, err = numba_fn(data.amplitudes[:NUMBA_EVENTS], g, data.a)
        ny, nz = data.y.size, data.z.size
        idx = np.column_stack([pos // (ny * nz), pos // nz % ny, pos % nz])
        _same_choices(idx, data.a[k], err, res, range(NUMBA_EVENTS))
    # the Python loop on the grid's corner: fastkern on the same corner, bit for bit
    nx, ny, nz = PYTHON_CORNER
    corner = (data.x[:nx], data.y[:ny], data.z[:nz])
    i, j, k, A, err = python_locate(data.amplitudes[0], data.stations, *corner, data.a,
                                    data.attenuation)
    one = locate_events(data.amplitudes[:1], data.stations, *corner, data.a,
                        attenuation=data.attenuation)
    assert (i, j, k, A) == (one.ix[0], one.iy[0], one.iz[0], one.amplitude[0])
    assert err == pytest.approx(one.error[0], rel=1e-12)


# ---------------------------------------------------------------------------
# pytest-benchmark rows

GROUP = (f"locate_events: {N_EVENTS} events, {N_STATIONS} stations, "
         f"{'x'.join(map(str, SHAPE))} grid, {N_AMPLITUDES} amplitudes")


@pytest.fixture(scope="module")
def data():
    return workload()


@pytest.fixture(scope="module")
def numba_locate(data):
    try:
        numba, fn = make_numba_locate()
    except ImportError:
        pytest.skip("numba is not installed")
    fn(data.amplitudes[:2], np.ones((3, N_STATIONS)), data.a)   # compile outside timings
    return numba, fn


def _record(benchmark, name, scale=1.0):
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS[name] = benchmark.stats.stats.median * scale
        MINIMA[name] = benchmark.stats.stats.min * scale


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("workers", [1, 2])
def test_fastkern(benchmark, run, data, workers):
    res = run(lambda: locate_events(data.amplitudes, data.stations, data.x, data.y, data.z,
                                    data.a, attenuation=data.attenuation, workers=workers),
              rounds=5)
    assert np.median(res.misfit) < 15
    _record(benchmark, f"fastkern workers={workers}")


@pytest.fixture(scope="module")
def fastkern_result(data):
    return locate_events(data.amplitudes, data.stations, data.x, data.y, data.z, data.a,
                         attenuation=data.attenuation)


@pytest.mark.benchmark(group=GROUP)
def test_reference_numpy_per_event(benchmark, run, data, fastkern_result):
    check_references(data, fastkern_result)
    args = (data.stations, data.x, data.y, data.z, data.a, data.attenuation)
    run(lambda: numpy_locate(data.amplitudes[:NUMPY_EVENTS], *args), rounds=3)
    _record(benchmark, "NumPy per event", N_EVENTS / NUMPY_EVENTS)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("threads", [1, 2])
def test_reference_numba_parallel(benchmark, run, data, fastkern_result, numba_locate,
                                  threads):
    numba, fn = numba_locate
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"numba has {numba.config.NUMBA_NUM_THREADS} threads here")
    check_references(data, fastkern_result, fn)
    numba.set_num_threads(threads)

    def call():
        g = station_terms(data.stations, data.x, data.y, data.z, data.attenuation)
        return fn(data.amplitudes[:NUMBA_EVENTS], g, data.a)

    run(call, rounds=3)
    _record(benchmark, f"numba {threads} threads", N_EVENTS / NUMBA_EVENTS)


@pytest.mark.benchmark(group=GROUP)
def test_reference_python_loop(benchmark, run, data):
    corner = (data.x[:PYTHON_CORNER[0]], data.y[:PYTHON_CORNER[1]], data.z[:PYTHON_CORNER[2]])
    run(lambda: python_locate(data.amplitudes[0], data.stations, *corner, data.a,
                              data.attenuation), rounds=3)
    scale = N_EVENTS * n_candidates(SHAPE, N_AMPLITUDES) / n_candidates(PYTHON_CORNER,
                                                                         N_AMPLITUDES)
    _record(benchmark, "Python loop", scale)


TARGETS = [  # (faster, slower, at least this many times faster)
    ("fastkern workers=1", "NumPy per event", 50.0),
    ("fastkern workers=1", "numba 1 threads", 5.0),
    ("fastkern workers=2", "numba 2 threads", 5.0),
    ("fastkern workers=1", "Python loop", 10_000.0),
    ("fastkern workers=2", "fastkern workers=1", 1.7),
]


def report_lines(medians, minima=None):
    lines = []
    for fast, slow, target in TARGETS:
        if fast in medians and slow in medians:
            ratio = medians[slow] / medians[fast]
            line = (f"  {fast} vs {slow}: {ratio:,.1f}x "
                    f"({medians[slow]:,.3f} s / {medians[fast]:.3f} s)")
            if minima is not None:
                line += f"; fastest rounds {minima[slow] / minima[fast]:,.1f}x"
            met = ratio >= target
            lines.append(line + f"  (target >= {target:,}x: {'met' if met else 'NOT met'})")
    if "fastkern workers=2" in medians:
        t = medians["fastkern workers=2"]
        lines.append(f"  fastkern workers=2: {t:.3f} s  (target < 1 s: "
                     f"{'met' if t < 1 else 'NOT met'})")
    if cpu_count() < 2:
        lines.append("  (one CPU here: the 2-worker targets do not apply)")
    return lines


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    lines = ["", "locate_events: whole-workload seconds (references scaled), this run "
             "(medians; fastest rounds)"] + report_lines(MEDIANS, MINIMA)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and len(lines) > 2:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)


# ---------------------------------------------------------------------------
# script mode: every candidate alternated, round by round

def main(rounds=3):
    data = workload()
    res = locate_events(data.amplitudes, data.stations, data.x, data.y, data.z, data.a,
                        attenuation=data.attenuation)
    try:
        numba, numba_fn = make_numba_locate()
        numba_fn(data.amplitudes[:2], np.ones((3, N_STATIONS)), data.a)
    except ImportError:
        numba = numba_fn = None
    check_references(data, res, numba_fn)
    args = (data.stations, data.x, data.y, data.z, data.a)
    corner = (data.x[:PYTHON_CORNER[0]], data.y[:PYTHON_CORNER[1]], data.z[:PYTHON_CORNER[2]])
    scale = {"NumPy per event": N_EVENTS / NUMPY_EVENTS,
             "numba 1 threads": N_EVENTS / NUMBA_EVENTS,
             "numba 2 threads": N_EVENTS / NUMBA_EVENTS,
             "Python loop": N_EVENTS * n_candidates(SHAPE, N_AMPLITUDES)
             / n_candidates(PYTHON_CORNER, N_AMPLITUDES)}
    calls = {f"fastkern workers={w}": (lambda w=w: locate_events(
        data.amplitudes, *args, attenuation=data.attenuation, workers=w)) for w in (1, 2)}
    calls["NumPy per event"] = lambda: numpy_locate(data.amplitudes[:NUMPY_EVENTS], *args,
                                                    data.attenuation)
    if numba_fn is not None:
        def numba_call(threads):
            numba.set_num_threads(threads)
            g = station_terms(data.stations, data.x, data.y, data.z, data.attenuation)
            return numba_fn(data.amplitudes[:NUMBA_EVENTS], g, data.a)
        for threads in (1, 2):
            if threads <= numba.config.NUMBA_NUM_THREADS:
                calls[f"numba {threads} threads"] = lambda t=threads: numba_call(t)
    calls["Python loop"] = lambda: python_locate(data.amplitudes[0], data.stations, *corner,
                                                 data.a, data.attenuation)
    start = time.perf_counter()
    medians = alternated(calls, rounds)
    print(f"{GROUP}; medians of {rounds} alternated rounds "
          f"({time.perf_counter() - start:.0f} s in all)")
    print(f"{'candidate':<22} {'measured':>12} {'scaled to the workload':>24}")
    for name, t in medians.items():
        whole = t * scale.get(name, 1.0)
        medians[name] = whole
        print(f"{name:<22} {t:11.3f}s {whole:23,.3f}s")
    print("\n".join(report_lines(medians)))
    # CPU seconds of the process during one call: on a machine shared with other
    # busy sessions, what the call costs even when it cannot get both cores
    for w in (1, 2):
        cpu = []
        for _ in range(rounds):
            start = time.process_time()
            calls[f"fastkern workers={w}"]()
            cpu.append(time.process_time() - start)
        print(f"  fastkern workers={w}: {sorted(cpu)[len(cpu) // 2]:.3f} s of CPU (median)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
