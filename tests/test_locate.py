"""fastkern.locate_events against the reference loop (plain Python, bit for bit) and
the issue's loop written with NumPy (to rounding), on small grids; synthetic events
with a known truth; missing stations; the least-squares amplitude; bad input."""
import doctest
import math

import numpy as np
import pytest

import fastkern
from fastkern import datasets, locate as locate_module, locate_events
from fastkern.datasets import synthetic_events


# ------------------------------------------------------------------ references

def reference_loop(amplitudes, stations, x, y, z, a, attenuation):
    """The loop of locate_events' Notes, in plain Python: per event (ix, iy, iz,
    ia, A, err, misfit), ia = -1 for the least-squares amplitude, None if no
    candidate has a finite error."""
    out = []
    for d in np.asarray(amplitudes, dtype=float):
        rec = [s for s in range(len(d)) if not math.isnan(d[s])]
        best, choice = math.inf, None
        for i, xi in enumerate(x):
            for j, yj in enumerate(y):
                for k, zk in enumerate(z):
                    g = {}
                    for s in rec:
                        dx, dy, dz = xi - stations[s][0], yj - stations[s][1], zk - stations[s][2]
                        r = math.sqrt(dx * dx + dy * dy + dz * dz)
                        g[s] = math.exp(-attenuation * r) / r if r > 0 else math.inf
                    if a is None:
                        gd = gg = 0.0
                        for s in rec:
                            gd += g[s] * d[s]
                            gg += g[s] * g[s]
                        candidates = [(-1, gd / gg if gd > 0 and gg > 0 else 0.0)]
                    else:
                        candidates = list(enumerate(a))
                    for ia, A in candidates:
                        err = 0.0
                        for s in rec:
                            u = A * g[s] - d[s]
                            err += u * u
                        if err < best:
                            best, choice = err, (i, j, k, ia, A)
        dd = 0.0
        for s in rec:
            dd += d[s] * d[s]
        out.append(None if choice is None else
                   choice + (best, 100 * math.sqrt(best / dd) if dd else 0.0))
    return out


def numpy_loop(amplitudes, stations, x, y, z, a, attenuation):
    """The issue's loop vectorised with NumPy per event: (errors of every
    candidate, shape (P, K), in loop order; misfit of the best)."""
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    pos = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()])
    r = np.sqrt(((pos[:, None, :] - stations[None, :, :]) ** 2).sum(-1))     # (P, S)
    out = []
    for d in amplitudes:
        rec = ~np.isnan(d)
        rr = r[:, rec]
        pred = a[None, :, None] * np.exp(-attenuation * rr)[:, None, :] / rr[:, None, :]
        err = ((pred - d[rec]) ** 2).sum(-1)                                   # (P, K)
        out.append((err, 100 * np.sqrt(err.min() / (d[rec] ** 2).sum())))
    return out


def _assert_reference(res, ref):
    for e, want in enumerate(ref):
        i, j, k, _, A, err, misfit = want
        got = (res.ix[e], res.iy[e], res.iz[e], res.amplitude[e], res.error[e])
        assert got == (i, j, k, A, err), f"event {e}: {got} != loop's {want}"
        assert res.misfit[e] == misfit


def small_problem(seed, n_events=5, n_stations=6, shape=(5, 4, 3), **kw):
    return synthetic_events(n_events, n_stations, shape=shape, n_amplitudes=8, seed=seed, **kw)


def _call(data, a="grid", **kw):
    a = data.a if isinstance(a, str) else a
    return locate_events(data.amplitudes, data.stations, data.x, data.y, data.z, a,
                         attenuation=data.attenuation, **kw)


# -------------------------------------------------------------- the reference

@pytest.mark.parametrize("kind", [{}, {"noise": 0.3}, {"noise": 0.5, "on_grid": False},
                                  {"noise": 0.2, "missing": 0.4}])
@pytest.mark.parametrize("least_squares", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_the_reference_loop_bit_for_bit(kind, least_squares, seed):
    data = small_problem(seed, **kind)
    a = None if least_squares else data.a
    ref = reference_loop(data.amplitudes, data.stations, data.x, data.y, data.z, a,
                         data.attenuation)
    for workers in (1, 2, 3):
        _assert_reference(_call(data, a, workers=workers), ref)


def test_unsorted_irregular_and_repeated_grids_and_amplitudes_of_any_sign():
    rng = np.random.default_rng(5)
    stations = rng.uniform(-3, 3, (7, 3))
    x = np.array([2.0, -1.0, 0.5, 0.5, 3.0])      # any order, a repeated value
    y = np.array([0.3, -2.5, 1.0])
    z = np.array([-1.0, -0.1, -3.0, -2.0])
    a = np.array([-2.0, -0.5, 0.0, 0.25, 1.0, 4.0, 9.0])
    amplitudes = rng.normal(1.0, 1.0, (6, 7))
    for B in (0.0, 0.3, 2.0):
        ref = reference_loop(amplitudes, stations, x, y, z, a, B)
        res = locate_events(amplitudes, stations, x, y, z, a, attenuation=B)
        _assert_reference(res, ref)
        assert not np.any(res.ix == 3)  # the repeat of x = 0.5 always loses the tie


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_issue_loop_in_numpy(seed):
    data = synthetic_events(4, 9, shape=(9, 8, 5), n_amplitudes=20, noise=0.4, seed=seed,
                            on_grid=seed != 1, missing=0.2 * (seed == 2))
    res = _call(data, workers=2)
    ny, nz = data.y.size, data.z.size
    for e, (err, misfit) in enumerate(numpy_loop(data.amplitudes, data.stations, data.x,
                                                 data.y, data.z, data.a, data.attenuation)):
        flat = err.ravel()
        order = np.argsort(flat, kind="stable")
        best, runner_up = flat[order[0]], flat[order[1]]
        assert res.misfit[e] == pytest.approx(misfit, rel=1e-9)
        assert res.error[e] == pytest.approx(best, rel=1e-9)
        if runner_up - best > 1e-9 * best:
            p, ia = divmod(int(order[0]), data.a.size)
            assert (res.ix[e], res.iy[e], res.iz[e]) == (p // (ny * nz), p // nz % ny, p % nz)
            assert res.amplitude[e] == data.a[ia]


# -------------------------------------------------------------- synthetic truth

@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_noiseless_events_on_grid_points_come_back_exactly(missing):
    data = synthetic_events(60, 15, shape=(31, 29, 9), missing=missing, seed=7)
    res = _call(data, workers=2)
    np.testing.assert_array_equal(np.column_stack([res.ix, res.iy, res.iz]),
                                  data.source_index[:, :3])
    np.testing.assert_array_equal(res.amplitude, data.source_amplitude)
    np.testing.assert_array_equal(np.column_stack([res.x, res.y, res.z]), data.source)
    assert np.all(res.misfit == 0) and np.all(res.error == 0)


def test_noisy_and_off_grid_events_land_near_the_truth():
    data = synthetic_events(40, 20, shape=(41, 41, 16), noise=0.05, on_grid=False, seed=3)
    res = _call(data)
    dist = np.sqrt(((np.column_stack([res.x, res.y, res.z]) - data.source) ** 2).sum(1))
    assert np.median(dist) < 0.5          # km, on a 0.25 km grid
    assert np.all(res.misfit < 20)


def test_missing_station_is_the_same_as_no_station():
    data = small_problem(4, n_events=3, n_stations=6, noise=0.3)
    amp = data.amplitudes.copy()
    amp[1, 2] = np.nan
    res = locate_events(amp, data.stations, data.x, data.y, data.z, data.a,
                        attenuation=data.attenuation)
    keep = [0, 1, 3, 4, 5]
    alone = locate_events(data.amplitudes[1:2, keep], data.stations[keep], data.x, data.y,
                          data.z, data.a, attenuation=data.attenuation)
    for field in ("ix", "iy", "iz", "amplitude", "error", "misfit"):
        assert getattr(res, field)[1] == getattr(alone, field)[0]


# ---------------------------------------------------------- least squares

def test_least_squares_amplitude_beats_a_dense_amplitude_grid():
    data = synthetic_events(10, 12, shape=(13, 13, 6), noise=0.3, on_grid=False, seed=8)
    free = _call(data, None)
    dense = _call(data, np.linspace(0.0, 2000.0, 400_001))
    assert np.all(free.error <= dense.error * (1 + 1e-12))
    np.testing.assert_array_equal(np.column_stack([free.ix, free.iy, free.iz]),
                                  np.column_stack([dense.ix, dense.iy, dense.iz]))
    np.testing.assert_allclose(free.amplitude, dense.amplitude, atol=0.005)
    np.testing.assert_allclose(free.misfit, dense.misfit, rtol=1e-3)


def test_least_squares_amplitude_is_never_negative():
    data = small_problem(2, n_events=3)
    amplitudes = -np.abs(data.amplitudes)                # anti-correlated with any model
    res = locate_events(amplitudes, data.stations, data.x, data.y, data.z, None,
                        attenuation=data.attenuation)
    assert np.all(res.amplitude == 0)
    np.testing.assert_allclose(res.misfit, 100.0)


# ------------------------------------------------------------------ edge cases

def test_positions_at_a_recording_station_are_never_chosen():
    x = y = np.array([0.0, 1.0])
    z = np.array([0.0])
    stations = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [5.0, 5.0, 3.0]])
    a = np.array([1.0, 2.0])
    amplitudes = np.array([[100.0, 1.0, 0.1],          # loudest at station 0: still not there
                           [np.nan, 1.0, 0.1],          # station 0 silent: (0, 0) allowed
                           [np.nan, np.nan, 0.01]])
    res = locate_events(amplitudes, stations, x, y, z, a, attenuation=0.0)
    ref = reference_loop(amplitudes, stations, x, y, z, a, 0.0)
    _assert_reference(res, ref)
    assert (res.ix[0], res.iy[0]) not in [(0, 0), (1, 1)]
    assert (res.ix[1], res.iy[1]) != (1, 1)


def test_an_event_with_no_possible_position_is_an_error_naming_it():
    stations = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    amplitudes = np.array([[np.nan, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="event 1"):
        locate_events(amplitudes, stations, [0.0], [0.0], [0.0], [1.0], attenuation=0.1)


def test_terms_that_underflow_tie_to_the_first_amplitude():
    data = small_problem(3, n_events=2)
    res = locate_events(data.amplitudes, data.stations, data.x, data.y, data.z, data.a,
                        attenuation=1e30)
    assert np.all(res.ix == 0) and np.all(res.iy == 0) and np.all(res.iz == 0)
    assert np.all(res.amplitude == data.a[0])
    np.testing.assert_allclose(res.misfit, 100.0)


def test_silent_events_have_zero_misfit_at_a_perfect_fit():
    stations = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    res = locate_events([[0.0, 0.0]], stations, [1.0], [1.0], [1.0], [0.0, 1.0],
                        attenuation=0.1)
    assert res.amplitude[0] == 0 and res.misfit[0] == 0 and res.error[0] == 0
    res = locate_events([[0.0, 0.0]], stations, [1.0], [1.0], [1.0], [1.0, 2.0],
                        attenuation=0.1)
    assert res.misfit[0] == np.inf


def test_no_events():
    data = small_problem(0)
    res = locate_events(np.empty((0, 6)), data.stations, data.x, data.y, data.z, data.a,
                        attenuation=0.1)
    assert res.ix.shape == (0,) and res.misfit.shape == (0,) and res.ix.dtype == np.int64


def test_result_does_not_depend_on_threads_or_the_split_of_positions():
    data = synthetic_events(9, 10, shape=(23, 19, 7), noise=0.2, missing=0.2, seed=11)
    problem = locate_module._prepare(data.amplitudes, data.stations, data.x, data.y, data.z,
                                     data.a, data.attenuation)
    want = locate_module._solve(problem, 1)
    for n_threads in (2, 3, 8, 64):           # 9 events: positions are split as well
        got = locate_module._solve(problem, n_threads)
        for field in ("ix", "iy", "iz", "amplitude", "error", "misfit"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def test_accepts_lists_and_integer_arrays():
    data = small_problem(6, n_events=2)
    res = _call(data)
    again = locate_events(data.amplitudes.tolist(), data.stations.tolist(), list(data.x),
                          tuple(data.y), data.z.tolist(), list(data.a),
                          attenuation=np.float32(data.attenuation))
    assert again.error.tolist() != [] and again.ix.tolist() == res.ix.tolist()
    res = locate_events(np.ones((1, 2), np.int32), np.array([[0, 0, 0], [3, 0, 0]]),
                        np.arange(3), np.arange(2), np.array([1]), np.array([1, 2, 3]),
                        attenuation=0)
    assert res.ix.dtype == np.int64


# ------------------------------------------------------------------- bad input

GOOD = dict(amplitudes=np.ones((2, 3)), stations=np.arange(9.0).reshape(3, 3),
            x=np.linspace(-1, 1, 3), y=np.linspace(-1, 1, 3), z=np.array([-1.0, -2.0]),
            a=np.array([1.0, 2.0]), attenuation=0.1)


@pytest.mark.parametrize("arg,value,error,match", [
    ("amplitudes", np.ones(3), ValueError, "amplitudes must be 2-D"),
    ("amplitudes", np.ones((2, 4)), ValueError, "amplitudes"),
    ("amplitudes", np.ones((2, 0)), ValueError, "amplitudes"),
    ("amplitudes", [[1.0, np.inf, 1.0], [1, 1, 1]], ValueError, "amplitudes must be finite"),
    ("amplitudes", [[1.0, 1.0, 1.0], [np.nan] * 3], ValueError, "amplitudes: event 1"),
    ("amplitudes", np.ones((2, 3), bool), TypeError, "amplitudes"),
    ("amplitudes", np.ones((2, 3), complex), TypeError, "amplitudes"),
    ("amplitudes", [["a", "b", "c"]] * 2, TypeError, "amplitudes"),
    ("stations", np.ones((3, 2)), ValueError, "stations"),
    ("stations", np.ones(9), ValueError, "stations"),
    ("stations", [[0, 0, np.nan]] * 3, ValueError, "stations must be finite"),
    ("x", [], ValueError, "x must not be empty"),
    ("x", [0.0, np.nan], ValueError, "x must be finite"),
    ("y", [[0.0]], ValueError, "y must be 1-D"),
    ("z", [np.inf], ValueError, "z must be finite"),
    ("z", np.array([], float), ValueError, "z must not be empty"),
    ("a", [2.0, 1.0], ValueError, "a must be strictly increasing"),
    ("a", [1.0, 1.0], ValueError, "a must be strictly increasing"),
    ("a", [], ValueError, "a must not be empty"),
    ("a", [1.0, np.nan], ValueError, "a must be finite"),
    ("a", 1.0, ValueError, "a must be 1-D"),
    ("attenuation", -0.1, ValueError, "attenuation"),
    ("attenuation", np.nan, ValueError, "attenuation"),
    ("attenuation", np.inf, ValueError, "attenuation"),
    ("attenuation", "0.1", TypeError, "attenuation"),
    ("attenuation", None, TypeError, "attenuation"),
    ("workers", 0, ValueError, "workers"),
    ("workers", 1.5, TypeError, "workers"),
])
def test_bad_input_names_the_argument(arg, value, error, match):
    kw = {**GOOD, arg: value}
    with pytest.raises(error, match=match):
        locate_events(**kw)


def test_attenuation_is_keyword_only_and_required():
    args = [GOOD[k] for k in ("amplitudes", "stations", "x", "y", "z", "a")]
    with pytest.raises(TypeError):
        locate_events(*args)
    with pytest.raises(TypeError):
        locate_events(*args, 0.1)


def test_too_large_a_grid_is_a_memory_error_before_any_work():
    big = np.zeros(2**21)
    with pytest.raises(MemoryError, match="station terms"):
        locate_events(GOOD["amplitudes"], GOOD["stations"], big, big, big, GOOD["a"],
                      attenuation=0.1)


@pytest.mark.parametrize("name,kw", [("n_events", {"n_events": -1}),
                                     ("shape", {"shape": (1, 4, 4)}),
                                     ("missing", {"missing": 1.0}),
                                     ("noise", {"noise": -1.0})])
def test_synthetic_events_checks_its_arguments(name, kw):
    with pytest.raises(ValueError, match=name):
        synthetic_events(**kw)


def test_synthetic_events_is_reproducible_and_keeps_one_recording_station():
    one = synthetic_events(50, 5, shape=(5, 5, 3), missing=0.9, noise=0.1, seed=4)
    two = synthetic_events(50, 5, shape=(5, 5, 3), missing=0.9, noise=0.1, seed=4)
    for field in one._fields:
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    assert np.all((~np.isnan(one.amplitudes)).sum(1) >= 1)


# --------------------------------------------------------- threads and signals

def test_gil_released(assert_releases_gil):
    data = synthetic_events(8, 12, shape=(20, 20, 10), seed=1)

    def make_call(scale):
        amplitudes = np.tile(data.amplitudes, (scale, 1))
        return lambda: locate_events(amplitudes, data.stations, data.x, data.y, data.z,
                                     data.a, attenuation=data.attenuation, workers=1)
    assert_releases_gil(make_call)


@pytest.mark.parametrize("workers", [1, 2])
def test_stops_on_ctrl_c(workers, assert_interruptible):
    data = synthetic_events(20_000, 8, shape=(4, 4, 4), seed=1)
    axis = np.linspace(-5, 5, 100)       # 10**6 positions x 20000 events: minutes

    def small():
        _call(data)

    assert_interruptible(lambda: locate_events(data.amplitudes, data.stations, axis, axis,
                                               axis, data.a, attenuation=0.15,
                                               workers=workers), small)


@pytest.mark.parametrize("module", [locate_module, datasets])
def test_docstring_examples(module, monkeypatch):
    monkeypatch.setattr(fastkern, "locate_events", locate_events, raising=False)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_demo_rows():
    from fastkern._demo.locate import workload
    from fastkern._report import Row

    rows = workload(quick=True)
    assert [r.kernel for r in rows] == ["locate_events"]
    for r in rows:
        assert isinstance(r, Row)
        assert min(r.t_ref, r.t_one, r.t_all) > 0
        assert r.max_diff < 1e-9


def test_misaligned_arrays_are_read_correctly():
    # arrays unpickled from a buffer (Dask's workers receive them so) may be misaligned
    data = small_problem(9, n_events=3)

    def misaligned(arr):
        raw = np.zeros(arr.nbytes + 1, dtype=np.uint8)
        out = raw[1:].view(np.float64).reshape(arr.shape)
        out[...] = arr
        assert not out.flags.aligned
        return out

    want = _call(data)
    got = locate_events(*(misaligned(v) for v in (data.amplitudes, data.stations, data.x,
                                                  data.y, data.z, data.a)),
                        attenuation=data.attenuation)
    for field in ("ix", "iy", "iz", "amplitude", "error", "misfit"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    problem = locate_module._Problem(*(misaligned(v) for v in (
        data.amplitudes, data.stations, data.x, data.y, data.z, data.a)), data.attenuation)
    np.testing.assert_array_equal(locate_module._solve(problem, 2).error, want.error)
