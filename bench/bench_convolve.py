"""convolve2d against what a user would run instead, in the same run.

Workloads (on the project's 2-core machine):
- 3000x3000 float64 image, 4x4 filter, mode "full": fastkern with workers=1 against
  scipy.signal.convolve2d (target: 15x) and scipy.ndimage.convolve; also with the
  output array passed back in (``out=``) and with all workers.
- two Python threads each calling convolve2d(workers=1) against the two calls in a
  row (target: at most 1/1.6 of the time: the GIL is released).
- the image workload: 3000x3000 image (zeros, or random), two 4x4 filters, output
  every 5th pixel in both directions, one call per filter: fastkern against the
  serial scipy loop (target: 100x), multiprocessing.Pool, joblib and
  concurrent.futures.
"""
import concurrent.futures
import multiprocessing
import threading

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import fastkern

N = 3000


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((N, N))


@pytest.fixture(scope="module")
def filt():
    return np.random.default_rng(1).random((4, 4))


# -- one 3000x3000 convolution, full mode ------------------------------------------

@pytest.mark.benchmark(group="full 3000x3000 float64, 4x4")
def test_full_reference_scipy_signal(run, image, filt):
    run(lambda: scipy.signal.convolve2d(image, filt), rounds=3)


@pytest.mark.benchmark(group="full 3000x3000 float64, 4x4")
def test_full_scipy_ndimage(run, image, filt):
    run(lambda: scipy.ndimage.convolve(image, filt, mode="constant"), rounds=5)


@pytest.mark.benchmark(group="full 3000x3000 float64, 4x4")
def test_full_fastkern_workers_1(run, image, filt):
    run(lambda: fastkern.convolve2d(image, filt, workers=1), rounds=20)


@pytest.mark.benchmark(group="full 3000x3000 float64, 4x4")
def test_full_fastkern_workers_1_out(run, image, filt):
    # the output array reused from call to call: no fresh pages to fault in
    out = np.empty((N + 3, N + 3))
    run(lambda: fastkern.convolve2d(image, filt, workers=1, out=out), rounds=20)


@pytest.mark.benchmark(group="full 3000x3000 float64, 4x4")
def test_full_fastkern_all_workers(run, image, filt):
    run(lambda: fastkern.convolve2d(image, filt), rounds=20)


@pytest.mark.benchmark(group="full 3000x3000 float32, 4x4")
def test_full_f32_reference_scipy_signal(run, image, filt):
    im, f = image.astype(np.float32), filt.astype(np.float32)
    run(lambda: scipy.signal.convolve2d(im, f), rounds=3)


@pytest.mark.benchmark(group="full 3000x3000 float32, 4x4")
def test_full_f32_fastkern_workers_1(run, image, filt):
    im, f = image.astype(np.float32), filt.astype(np.float32)
    run(lambda: fastkern.convolve2d(im, f, workers=1), rounds=20)


# -- two Python threads: is the GIL released? ------------------------------------

def _two_in_a_row(image, filt):
    fastkern.convolve2d(image, filt, workers=1)
    fastkern.convolve2d(image, filt, workers=1)


def _two_threads(image, filt):
    threads = [threading.Thread(target=fastkern.convolve2d, args=(image, filt),
                                kwargs={"workers": 1}) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.benchmark(group="two calls, workers=1")
def test_two_calls_reference_in_a_row(run, image, filt):
    run(lambda: _two_in_a_row(image, filt), rounds=15)


@pytest.mark.benchmark(group="two calls, workers=1")
def test_two_calls_in_two_threads(run, image, filt):
    run(lambda: _two_threads(image, filt), rounds=15)


# -- the image workload: two filters, every 5th pixel ---------------------------------

def _scipy_strided(image, f):
    return scipy.signal.convolve2d(image, f)[::5, ::5]


@pytest.fixture(scope="module", params=["zeros", "random"])
def workload(request):
    rng = np.random.default_rng(2)
    image = np.zeros((N, N)) if request.param == "zeros" else rng.random((N, N))
    return image, [rng.random((4, 4)), rng.random((4, 4))]


@pytest.mark.benchmark(group="image workload")
def test_workload_reference_scipy_loop(run, workload):
    image, filters = workload
    run(lambda: [_scipy_strided(image, f) for f in filters], rounds=3)


@pytest.mark.benchmark(group="image workload")
def test_workload_multiprocessing_pool(run, workload):
    image, filters = workload
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        run(lambda: pool.starmap(_scipy_strided, [(image, f) for f in filters]), rounds=3)


@pytest.mark.benchmark(group="image workload")
def test_workload_process_pool_executor(run, workload):
    image, filters = workload
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        run(lambda: list(ex.map(_scipy_strided, [image] * 2, filters)), rounds=3)


@pytest.mark.benchmark(group="image workload")
def test_workload_joblib(run, workload):
    joblib = pytest.importorskip("joblib")
    image, filters = workload
    with joblib.Parallel(n_jobs=2) as parallel:
        run(lambda: parallel(joblib.delayed(_scipy_strided)(image, f) for f in filters), rounds=3)


@pytest.mark.benchmark(group="image workload")
def test_workload_fastkern_workers_1(run, workload):
    image, filters = workload
    run(lambda: [fastkern.convolve2d(image, f, stride=5, workers=1) for f in filters], rounds=20)


@pytest.mark.benchmark(group="image workload")
def test_workload_fastkern_threads(run, workload):
    image, filters = workload
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        run(lambda: list(ex.map(lambda f: fastkern.convolve2d(image, f, stride=5, workers=1),
                                filters)), rounds=20)
