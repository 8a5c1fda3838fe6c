"""fastkern on a Dask LocalCluster (worker processes on loopback).

- a 20000x20000 float64 image (3.2 GB, never held whole: generated and reduced
  chunk by chunk), 4x4 filter, mode "same": fastkern.dask.convolve2d against the
  same map_overlap pipeline with scipy.signal.convolve2d in each block;
- bootstrap (n = 100,000, 10,000 resamples) and gibbs (8 chains of 100,000 draws,
  thin 10) on clusters of 1 and 2 single-threaded workers: the scaling.

Worker memory is capped at 2 GB each: the convolution fits because memory is
bounded by the chunks, not the image.
"""
import numpy as np
import pytest
import scipy.signal

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import fastkern  # noqa: E402
import fastkern.dask as fkd  # noqa: E402

N = 20000
CHUNK = 2500
FILTER = np.random.default_rng(0).random((4, 4))


def make_client(n_workers):
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       host="127.0.0.1", memory_limit="2GB")
    return distributed.Client(cluster)


@pytest.fixture(scope="module")
def client2():
    with make_client(2) as c:
        yield c


@pytest.fixture(scope="module")
def client1():
    with make_client(1) as c:
        yield c


def image():
    return da.random.RandomState(0).random_sample((N, N), chunks=CHUNK)


@pytest.mark.benchmark(group="dask 20000x20000, 4x4, same")
def test_dask_image_fastkern(run, client2):
    run(lambda: client2.compute(fkd.convolve2d(image(), FILTER, mode="same").sum()).result(),
        rounds=2)


@pytest.mark.benchmark(group="dask 20000x20000, 4x4, same")
def test_dask_image_reference_scipy_blocks(run, client2):
    def scipy_same(x):
        # the same padding, chunks and halo as fastkern.dask, with scipy in each block
        p = da.pad(x, ((2, 1), (2, 1)), mode="constant")
        p = p.rechunk(tuple(fkd._min_chunks(c, k) for c, k in zip(p.chunks, FILTER.shape)))
        return da.map_overlap(lambda b: scipy.signal.convolve2d(b, FILTER, "valid"), p,
                              depth={0: (0, 3), 1: (0, 3)}, boundary="none", trim=False,
                              dtype=np.float64,
                              chunks=tuple(c[:-1] + (c[-1] - 3,) for c in p.chunks))

    run(lambda: client2.compute(scipy_same(image()).sum()).result(), rounds=1)


DATA = np.random.default_rng(1).poisson(4.0, size=100_000)


@pytest.mark.benchmark(group="dask bootstrap n=1e5, 10000 resamples")
def test_bootstrap_reference_1_worker(run, client1):
    run(lambda: client1.compute(fkd.bootstrap(DATA, "mean", n_resamples=10_000,
                                              method="percentile", seed=1)).result(), rounds=3)


@pytest.mark.benchmark(group="dask bootstrap n=1e5, 10000 resamples")
def test_bootstrap_2_workers(run, client2):
    run(lambda: client2.compute(fkd.bootstrap(DATA, "mean", n_resamples=10_000,
                                              method="percentile", seed=1)).result(), rounds=3)


@pytest.mark.benchmark(group="dask gibbs 8 chains x 1e5, thin 10")
def test_gibbs_reference_1_worker(run, client1):
    run(lambda: client1.compute(fkd.gibbs(100_000, 10, chains=8, seed=1)).result(), rounds=3)


@pytest.mark.benchmark(group="dask gibbs 8 chains x 1e5, thin 10")
def test_gibbs_2_workers(run, client2):
    run(lambda: client2.compute(fkd.gibbs(100_000, 10, chains=8, seed=1)).result(), rounds=3)
