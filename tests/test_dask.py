"""fastkern.dask against scipy and the single-machine kernels, with Dask's threaded
scheduler and a real LocalCluster of worker processes."""
import numpy as np
import pytest
import scipy.signal
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import fastkern.dask as fkd  # noqa: E402

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
FUNCS = [(fkd.convolve2d, scipy.signal.convolve2d), (fkd.correlate2d, scipy.signal.correlate2d)]
FUNC_IDS = ["convolve2d", "correlate2d"]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("shape,chunks,kshape", [
    ((50, 61), (7, 9), (4, 3)),      # many blocks, chunks not multiples of anything
    ((30, 33), (3, 4), (6, 2)),      # chunks smaller than the filter: merged
    ((20, 20), (20, 20), (5, 5)),    # one block
    ((40, 7), (11, 2), (1, 7)),      # filter as wide as the image
])
def test_threaded_equals_scipy(func, ref, mode, boundary, shape, chunks, kshape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    b = rng.standard_normal(kshape)
    x = da.from_array(a, chunks=chunks)
    out = func(x, b, mode, boundary, 1.5)
    assert isinstance(out, da.Array)
    expected = ref(a, b, mode, boundary, 1.5)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    got = out.compute(scheduler="threads")
    assert got.shape == expected.shape
    assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_filter_larger_than_image(func, ref, boundary):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 6))
    b = rng.standard_normal((9, 11))
    x = da.from_array(a, chunks=2)
    for mode in ("full", "same", "valid"):
        assert_allclose(func(x, b, mode, boundary).compute(), ref(a, b, mode, boundary),
                        rtol=1e-10, atol=1e-10)
    c = rng.standard_normal((5, 9))  # valid: the filter is larger in every dimension
    assert_allclose(func(x, c, "valid").compute(), ref(a, c, "valid"), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int16])
def test_dtypes(dtype):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((40, 30)) * 50).astype(dtype)
    b = (rng.standard_normal((3, 4)) * 50).astype(dtype)
    x = da.from_array(a, chunks=(9, 8))
    for func, ref in FUNCS:
        got = func(x, b, "same", "fill", 3).compute()
        want = ref(a, b, "same", "fill", 3)
        assert got.dtype == want.dtype
        if want.dtype.kind in "iu":
            assert_array_equal(got, want)
        else:
            assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_local_cluster_equals_single_machine(client, func, ref):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 260))
    b = rng.standard_normal((5, 4))
    x = da.from_array(a, chunks=(70, 90))
    single = (fkd.convolve2d if func is fkd.convolve2d else fkd.correlate2d)
    for mode in MODES:
        got = client.compute(func(x, b, mode, "symm")).result(timeout=300)
        assert_allclose(got, ref(a, b, mode, "symm"), rtol=1e-10, atol=1e-10)
        assert_array_equal(got, single(x, b, mode, "symm").compute(scheduler="threads"))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_large_filter_both_routes(func, ref, boundary, method):
    # blocks of 100x120 with a 41x37 filter: each block's route is the one asked
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 360))
    b = rng.standard_normal((41, 37))
    out = func(da.from_array(a, chunks=(100, 120)), b, "same", boundary, method=method)
    expected = ref(a, b, "same", boundary)
    assert_allclose(out.compute(scheduler="threads"), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", [((5, 30, 41), (3, 4, 5)), ((4, 20, 22), (6, 3)),
                                    ((25, 31), (2, 5, 4)), ((3, 6, 7), (2, 9, 8))])
def test_stacks_and_banks_equal_the_single_machine_call(func, ref, mode, shapes):
    # stacks are chunked along B only; a bank over one image goes filter by filter
    import fastkern
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    single = fastkern.convolve2d if func is fkd.convolve2d else fastkern.correlate2d
    try:
        want = single(a, b, mode, "symm")
    except ValueError:   # valid mode with neither input the larger
        with pytest.raises(ValueError):
            func(da.from_array(a, chunks=2), b, mode, "symm")
        return
    out = func(da.from_array(a, chunks=2), b, mode, "symm")
    assert out.shape == want.shape and out.dtype == want.dtype
    assert_array_equal(out.compute(scheduler="threads"), want)
    if a.ndim == 3:
        assert out.chunks[0] == tuple(len(range(i, min(i + 2, a.shape[0])))
                                      for i in range(0, a.shape[0], 2))


def test_bad_input():
    x = da.ones((10, 10), chunks=5)
    with pytest.raises(ValueError, match="x must be a 2-D array, or a 3-D stack"):
        fkd.convolve2d(da.ones((2, 2, 4, 4)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="in2 is an empty stack"):
        fkd.convolve2d(x, np.ones((0, 2, 2)))
    with pytest.raises(ValueError, match="method must be"):
        fkd.convolve2d(x, np.ones((2, 2)), method="bad")
    with pytest.raises(ValueError, match="method='fft' is not available for integer"):
        fkd.correlate2d(da.ones((10, 10), dtype=np.int32, chunks=5),
                        np.ones((2, 2), np.int32), method="fft")
    with pytest.raises(ValueError, match="x must be a 2-D"):
        fkd.convolve2d(da.ones(10), np.ones((2, 2)))
    with pytest.raises(ValueError, match="in2 must be a 2-D"):
        fkd.convolve2d(x, np.ones(3))
    with pytest.raises(ValueError, match="mode must be"):
        fkd.convolve2d(x, np.ones((2, 2)), mode="bad")
    with pytest.raises(ValueError, match="boundary must be"):
        fkd.correlate2d(x, np.ones((2, 2)), boundary="nearest")
    with pytest.raises(ValueError, match="fillvalue"):
        fkd.convolve2d(x, np.ones((2, 2)), fillvalue=[1, 2])
    with pytest.raises(ValueError, match="one input must be at least"):
        fkd.convolve2d(da.ones((2, 5), chunks=1), np.ones((3, 3)), mode="valid")


# -- bootstrap ---------------------------------------------------------------------

import fastkern  # noqa: E402


def _same_result(got, want):
    assert_array_equal(got.bootstrap_distribution, want.bootstrap_distribution)
    assert_array_equal(np.array(got.confidence_interval), np.array(want.confidence_interval))
    assert got.standard_error == want.standard_error


@pytest.mark.parametrize("statistic,kwargs", [("mean", {}), ("median", {"method": "percentile"}),
                                              ("quantile", {"q": 0.3, "method": "basic"}),
                                              ("std", {"ddof": 1})])
@pytest.mark.parametrize("blocks_per_task", [1, 3, 100])
def test_bootstrap_threaded_equals_single_machine(statistic, kwargs, blocks_per_task):
    x = np.random.default_rng(4).normal(size=500)
    lazy = fkd.bootstrap(x, statistic, n_resamples=1000, seed=7,
                         blocks_per_task=blocks_per_task, **kwargs)
    _same_result(lazy.compute(scheduler="threads"),
                 fastkern.bootstrap(x, statistic, n_resamples=1000, seed=7, **kwargs))


def test_bootstrap_paired_and_generator_seed():
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    got = fkd.bootstrap((x, y), "pearsonr", paired=True, n_resamples=700,
                        seed=np.random.default_rng(1)).compute()
    want = fastkern.bootstrap((x, y), "pearsonr", paired=True, n_resamples=700,
                              seed=np.random.default_rng(1))
    _same_result(got, want)


def test_bootstrap_local_cluster_equals_single_machine(client):
    x = np.random.default_rng(6).poisson(4.0, size=5000)
    lazy = fkd.bootstrap(x, "mean", n_resamples=2000, seed=3, blocks_per_task=4)
    _same_result(client.compute(lazy).result(timeout=300),
                 fastkern.bootstrap(x, "mean", n_resamples=2000, seed=3))


def _trimmed_range(x):
    """A statistic of one resample (not vectorised)."""
    return np.percentile(x, 90) - np.percentile(x, 10)


def test_bootstrap_statistic_of_one_resample_on_a_cluster(client):
    x = np.random.default_rng(8).normal(size=200)
    lazy = fkd.bootstrap(x, _trimmed_range, n_resamples=300, seed=2, blocks_per_task=2,
                         vectorized=False)
    _same_result(client.compute(lazy).result(timeout=300),
                 fastkern.bootstrap(x, _trimmed_range, n_resamples=300, seed=2))


def test_bootstrap_validates_before_running():
    with pytest.raises(ValueError, match="confidence_level"):
        fkd.bootstrap(np.arange(5.0), confidence_level=2)
    with pytest.raises(ValueError, match="blocks_per_task"):
        fkd.bootstrap(np.arange(5.0), blocks_per_task=0)


# -- Gibbs samplers -------------------------------------------------------------------

@pytest.mark.parametrize("chains,per_task", [(1, 1), (5, 2), (4, 10)])
def test_gibbs_threaded_equals_single_machine(chains, per_task):
    lazy = fkd.gibbs(300, 3, chains=chains, burn=5, seed=11, chains_per_task=per_task)
    assert isinstance(lazy, da.Array) and lazy.shape == (chains, 300, 2)
    assert_array_equal(lazy.compute(scheduler="threads"),
                       fastkern.gibbs(300, 3, chains=chains, burn=5, seed=11))


def test_gibbs_switchpoint_with_missing_counts_threaded():
    years, counts = fastkern.datasets.coal_mining_disasters()
    counts = counts.astype(float)
    counts[[10, 70]] = np.nan
    lazy = fkd.gibbs_switchpoint(counts, 400, chains=3, burn=50, seed=2, chains_per_task=2)
    want = fastkern.gibbs_switchpoint(counts, 400, chains=3, burn=50, seed=2)
    assert lazy.keys() == want.keys()
    for key in want:
        assert_array_equal(lazy[key].compute(scheduler="threads"), want[key])


def test_gibbs_local_cluster_equals_single_machine(client):
    years, counts = fastkern.datasets.coal_mining_disasters()
    got = client.compute(fkd.gibbs(500, 2, chains=4, seed=3)).result(timeout=300)
    assert_array_equal(got, fastkern.gibbs(500, 2, chains=4, seed=3))
    lazy = fkd.gibbs_switchpoint(counts, 500, chains=4, seed=3, chains_per_task=2)
    want = fastkern.gibbs_switchpoint(counts, 500, chains=4, seed=3)
    for key, value in client.compute(lazy).result(timeout=300).items():
        assert_array_equal(value, want[key])


def test_gibbs_validates_before_running():
    with pytest.raises(ValueError, match="thin"):
        fkd.gibbs(10, 0)
    with pytest.raises(ValueError, match="chains_per_task"):
        fkd.gibbs(10, chains_per_task=0)
    with pytest.raises(ValueError, match="counts"):
        fkd.gibbs_switchpoint([-1, 2], 10)


# -- workers_per_task: checked when the graph is built, counted where a task runs --------

def _dask_calls(workers_per_task):
    x = np.random.default_rng(9).normal(size=500)
    counts = fastkern.datasets.coal_mining_disasters()[1]
    return {
        "bootstrap": lambda: fkd.bootstrap(x, "mean", n_resamples=300, seed=1,
                                           blocks_per_task=2, workers_per_task=workers_per_task),
        "gibbs": lambda: fkd.gibbs(200, chains=3, seed=1, workers_per_task=workers_per_task),
        "gibbs_switchpoint": lambda: fkd.gibbs_switchpoint(
            counts, 100, chains=3, seed=1, workers_per_task=workers_per_task)["switchpoint"],
        "callable bootstrap": lambda: fkd.bootstrap(
            x, np.mean, n_resamples=300, seed=1, blocks_per_task=2,
            workers_per_task=workers_per_task),
    }


@pytest.mark.parametrize("name", ["bootstrap", "gibbs", "gibbs_switchpoint",
                                  "callable bootstrap"])
def test_workers_per_task_like_workers(name, client):
    want = _dask_calls(1)[name]().compute(scheduler="sync")
    for workers in (-1, None, 10**9):
        lazy = _dask_calls(workers)[name]()
        got = lazy.compute(scheduler="threads")
        if isinstance(want, np.ndarray):
            assert_array_equal(got, want)
        else:
            _same_result(got, want)
    # a real cluster's worker processes survive -1 (they were killed by it before)
    got = client.compute(_dask_calls(-1)[name]()).result(timeout=300)
    if isinstance(want, np.ndarray):
        assert_array_equal(got, want)
    else:
        _same_result(got, want)


@pytest.mark.parametrize("name", ["bootstrap", "gibbs", "gibbs_switchpoint",
                                  "callable bootstrap"])
@pytest.mark.parametrize("workers,error", [(0, ValueError), (2**31, ValueError),
                                           ("2", TypeError), (1.5, TypeError)])
def test_bad_workers_per_task_fails_at_call_time(name, workers, error):
    with pytest.raises(error, match="workers_per_task"):
        _dask_calls(workers)[name]()


def _same_test(got, want):
    np.testing.assert_array_equal(got.null_distribution, want.null_distribution)
    assert got.pvalue == want.pvalue and got.statistic == want.statistic


@pytest.mark.parametrize("permutation_type, statistic", [
    ("independent", "mean_diff"), ("independent", "median_diff"), ("pairings", "spearmanr"),
    ("samples", "mean_diff")])
@pytest.mark.parametrize("blocks_per_task", [1, 3, 100])
def test_permutation_test_threaded_equals_single_machine(permutation_type, statistic,
                                                         blocks_per_task):
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=300), rng.normal(size=300)
    kwargs = dict(permutation_type=permutation_type, n_resamples=1000, seed=7)
    lazy = fkd.permutation_test((x, y), statistic, blocks_per_task=blocks_per_task, **kwargs)
    _same_test(lazy.compute(scheduler="threads"),
               fastkern.permutation_test((x, y), statistic, **kwargs))


def _range_diff(x, y, axis=-1):
    """A callable statistic a cluster can pickle."""
    return np.ptp(x, axis=axis) - np.ptp(y, axis=axis)


def test_permutation_test_local_cluster_equals_single_machine(client):
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=200), rng.normal(size=150)
    for statistic in ("t", _range_diff):
        lazy = fkd.permutation_test((x, y), statistic, n_resamples=2000, seed=3,
                                    blocks_per_task=4)
        _same_test(client.compute(lazy).result(timeout=300),
                   fastkern.permutation_test((x, y), statistic, n_resamples=2000, seed=3))


def test_permutation_test_exact_and_validation():
    x, y = np.arange(5.0), np.arange(4.0) + 0.5
    _same_test(fkd.permutation_test((x, y), n_resamples=np.inf).compute(),
               fastkern.permutation_test((x, y), n_resamples=np.inf))
    with pytest.raises(ValueError, match="alternative"):
        fkd.permutation_test((x, y), alternative="both")
    with pytest.raises(ValueError, match="blocks_per_task"):
        fkd.permutation_test((x, y), blocks_per_task=0)


# -- locate_events: chunks of events ------------------------------------------------------

def _locate_data():
    return fastkern.datasets.synthetic_events(37, 9, shape=(14, 13, 5), noise=0.2,
                                              missing=0.2, on_grid=False, seed=12)


def _same_locate(got, want):
    for field in ("x", "y", "z", "amplitude", "misfit", "error", "ix", "iy", "iz"):
        assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


@pytest.mark.parametrize("chunks", [37, 10, 1])
@pytest.mark.parametrize("least_squares", [False, True])
def test_locate_events_threaded_equals_single_machine(chunks, least_squares):
    import dask

    data = _locate_data()
    a = None if least_squares else data.a
    args = (data.stations, data.x, data.y, data.z, a)
    lazy = fkd.locate_events(da.from_array(data.amplitudes, chunks=(chunks, 4)), *args,
                             attenuation=data.attenuation)
    assert isinstance(lazy.ix, da.Array) and lazy.ix.shape == (37,)
    (got,) = dask.compute(lazy, scheduler="threads")
    _same_locate(got, fastkern.locate_events(data.amplitudes, *args,
                                             attenuation=data.attenuation))


def test_locate_events_local_cluster_equals_single_machine(client):
    import dask

    data = _locate_data()
    args = (data.stations, data.x, data.y, data.z, data.a)
    lazy = fkd.locate_events(da.from_array(data.amplitudes, chunks=(12, -1)), *args,
                             attenuation=data.attenuation, workers_per_task=-1)
    (got,) = dask.compute(lazy, scheduler=client.get)
    _same_locate(got, fastkern.locate_events(data.amplitudes, *args,
                                             attenuation=data.attenuation))


def test_locate_events_validates_before_running_and_names_events_by_catalogue_row():
    import dask

    data = _locate_data()
    args = (data.stations, data.x, data.y, data.z, data.a)
    with pytest.raises(ValueError, match="attenuation"):
        fkd.locate_events(data.amplitudes, *args, attenuation=-1.0)
    with pytest.raises(ValueError, match="stations"):
        fkd.locate_events(data.amplitudes[:, :5], *args, attenuation=0.1)
    with pytest.raises(ValueError, match="workers_per_task"):
        fkd.locate_events(data.amplitudes, *args, attenuation=0.1, workers_per_task=0)
    amp = data.amplitudes.copy()
    amp[25] = np.nan
    lazy = fkd.locate_events(da.from_array(amp, chunks=(10, -1)), *args, attenuation=0.1)
    with pytest.raises(ValueError, match="event 25"):
        dask.compute(lazy, scheduler="threads")
