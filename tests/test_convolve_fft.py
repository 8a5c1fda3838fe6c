"""convolve2d's FFT route and method="auto": against the direct route (itself
tested against scipy in test_convolve.py) and against scipy.signal.fftconvolve."""
import math
import tracemalloc

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_array_equal

import fastkern
from fastkern import _fftconv, convolve2d, correlate2d
from fastkern.convolve import _fft_plan, _problem, choose_method

FUNCS = [convolve2d, correlate2d]
FUNC_IDS = ["convolve2d", "correlate2d"]


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def fft_bound(in1, in2, fillvalue, dtype):
    """The documented bound on |fft - direct|: 2 eps log2(4 (M+P)(N+Q)) max|X| sum|in2|,
    X the image and the fill value."""
    eps = np.finfo(np.dtype(dtype)).eps
    (m, n), (p, q) = in1.shape, in2.shape
    big = max(float(np.max(np.abs(in1))), abs(fillvalue))
    return 2 * eps * math.log2(4 * (m + p) * (n + q)) * big * float(np.sum(np.abs(in2)))


def assert_within_bound(fft, direct, in1, in2, fillvalue):
    assert fft.shape == direct.shape
    assert fft.dtype == direct.dtype
    if direct.size:
        err = float(np.max(np.abs(fft.astype(np.complex128) - direct)))
        assert err <= fft_bound(in1, in2, fillvalue, direct.dtype), err


@st.composite
def problems(draw):
    m, n = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    p, q = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex64, np.complex128]))
    mode = draw(st.sampled_from(["full", "same", "valid"]))
    boundary = draw(st.sampled_from(["fill", "wrap", "symm"]))
    stride = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    if mode == "valid" and not (m >= p and n >= q or p >= m and q >= n):
        p, q = min(p, m), min(q, n)
    kernel_dtype = draw(st.sampled_from([dtype, np.float64]))
    fillvalue = draw(st.sampled_from([0.0, 1.5, -3.0]))
    return (m, n), (p, q), dtype, kernel_dtype, mode, boundary, stride, fillvalue


@given(problem=problems(), seed=st.integers(0, 2**32 - 1), func=st.sampled_from(FUNCS))
@settings(deadline=None, max_examples=300)
def test_fft_within_the_bound_of_direct(problem, seed, func):
    shape1, shape2, dtype, kernel_dtype, mode, boundary, stride, fillvalue = problem
    rng = np.random.default_rng(seed)
    in1 = random_array(rng, shape1, dtype)
    in2 = random_array(rng, shape2, kernel_dtype)
    direct = func(in1, in2, mode, boundary, fillvalue, stride=stride, method="direct")
    fft = func(in1, in2, mode, boundary, fillvalue, stride=stride, method="fft")
    assert_within_bound(fft, direct, in1, in2, fillvalue)
    auto = func(in1, in2, mode, boundary, fillvalue, stride=stride)
    assert np.array_equal(auto, direct) or np.array_equal(auto, fft)


@pytest.mark.parametrize("func", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("kshape", [(33, 33), (1, 63), (63, 1), (40, 17)])
def test_large_kernels_on_a_large_image(func, boundary, dtype, kshape):
    # several tiles in each direction, every tile shape the plans pick here
    rng = np.random.default_rng(1)
    in1 = random_array(rng, (700, 600), dtype)
    in2 = random_array(rng, kshape, dtype)
    for stride in (1, (3, 2)):
        direct = func(in1, in2, "same", boundary, 0.5, stride=stride, method="direct")
        fft = func(in1, in2, "same", boundary, 0.5, stride=stride, method="fft")
        assert_within_bound(fft, direct, in1, in2, 0.5)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_fft_matches_scipy_fftconvolve(mode):
    rng = np.random.default_rng(2)
    in1 = rng.standard_normal((300, 257))
    in2 = rng.standard_normal((31, 45))
    ref = scipy.signal.fftconvolve(in1, in2, mode)
    got = convolve2d(in1, in2, mode, method="fft")
    assert_within_bound(got, ref, in1, in2, 0.0)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shapes", [((20, 30), (50, 70)), ((64, 64), (64, 64)),
                                    ((100, 80), (7, 9))])
def test_wrap_periodic_plan(mode, shapes):
    # boundary="wrap" with a kernel as large as the image, or larger: one circular
    # correlation of the image's size, the kernel folded onto it
    rng = np.random.default_rng(3)
    in1 = rng.standard_normal(shapes[0])
    in2 = rng.standard_normal(shapes[1])
    pb = _problem(in1, in2, mode, "wrap", 0, 1, True)
    if mode != "valid" and shapes[1][0] >= shapes[0][0]:
        assert _fft_plan(pb).periodic
    for stride in (1, 3, (2, 5)):
        direct = correlate2d(in1, in2, mode, "wrap", stride=stride, method="direct")
        fft = correlate2d(in1, in2, mode, "wrap", stride=stride, method="fft")
        assert_within_bound(fft, direct, in1, in2, 0.0)


def test_autocorrelation_of_a_large_image_with_wrap():
    # the full autocorrelation with wrap: a kernel as large as the image
    rng = np.random.default_rng(4)
    a = rng.standard_normal((512, 384))
    got = correlate2d(a, a, "full", boundary="wrap")
    assert got.shape == (1023, 767)
    # against circular correlation by NumPy's FFT, laid out as the full output
    circ = np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(a))).real
    rows = (np.arange(1023) - 511) % 512
    cols = (np.arange(767) - 383) % 384
    assert np.max(np.abs(got - circ[np.ix_(rows, cols)])) <= fft_bound(a, a, 0, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_dtype_kept(dtype):
    rng = np.random.default_rng(5)
    in1 = random_array(rng, (50, 40), dtype)
    in2 = random_array(rng, (9, 9), dtype)
    assert convolve2d(in1, in2, method="fft").dtype == dtype


def test_real_image_complex_fill():
    rng = np.random.default_rng(6)
    in1 = rng.standard_normal((30, 20))
    in2 = random_array(rng, (5, 6), np.complex128)
    for func in FUNCS:
        direct = func(in1, in2, "same", "fill", 1 - 2j, method="direct")
        fft = func(in1, in2, "same", "fill", 1 - 2j, method="fft")
        assert_within_bound(fft, direct, in1, in2, abs(1 - 2j))


def test_layouts_byteswapped_and_out():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((120, 90))
    in2 = rng.standard_normal((17, 13))
    ref = convolve2d(base, in2, "same", method="fft")
    assert_array_equal(convolve2d(np.asfortranarray(base), in2, "same", method="fft"), ref)
    assert_array_equal(convolve2d(base.astype(">f8"), in2.astype(">f8"), "same",
                                  method="fft"), ref)
    strided = np.zeros((240, 180))
    strided[::2, ::2] = base
    assert_array_equal(convolve2d(strided[::2, ::2], in2, "same", method="fft"), ref)
    out = np.zeros((120, 180))[:, ::2]
    assert convolve2d(base, in2, "same", method="fft", out=out) is out
    assert_array_equal(out, ref)
    # out may be the image itself
    image = base.copy()
    convolve2d(image, in2, "same", method="fft", out=image)
    assert_array_equal(image, ref)


def test_broadcast_image_is_read_in_place():
    # a read-only view with zero strides: the gather reads through strides
    image = np.broadcast_to(np.float64(2.0), (300, 400))
    kernel = np.ones((21, 21))
    got = convolve2d(image, kernel, "valid", method="fft")
    assert got.shape == (280, 380)
    assert np.max(np.abs(got - 2.0 * 441)) <= fft_bound(image, kernel, 0, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("boundary", ["fill", "symm", "wrap"])
def test_identical_for_every_workers(dtype, boundary):
    rng = np.random.default_rng(8)
    in1 = random_array(rng, (900, 700), dtype)
    in2 = random_array(rng, (45, 40), dtype)
    ref = convolve2d(in1, in2, "same", boundary, method="fft", workers=1)
    for workers in (2, 3, -1):
        assert_array_equal(convolve2d(in1, in2, "same", boundary, method="fft",
                                      workers=workers), ref)


def test_plan_does_not_depend_on_workers_or_values():
    pb = _problem(np.zeros((3000, 3000)), np.zeros((63, 63)), "same", "fill", 0, 1, True)
    plan = _fft_plan(pb)
    assert not plan.periodic
    # every kept output is covered exactly once
    for axis in range(2):
        assert plan.tiles[axis] * plan.per_tile[axis] >= pb.out_shape[axis]
        assert (plan.tiles[axis] - 1) * plan.per_tile[axis] < pb.out_shape[axis]
        assert plan.shape[axis] >= (plan.per_tile[axis] - 1) * pb.steps[axis] + 63


def test_memory_stays_small_with_a_large_stride():
    # the unstrided result would be 64 MB; the route holds a tile per thread
    rng = np.random.default_rng(9)
    image = rng.standard_normal((4000, 4000)).astype(np.float32)
    kernel = rng.standard_normal((64, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        out = convolve2d(image, kernel, "same", stride=8, method="fft")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (500, 500)
    limit = out.nbytes + (16 << 20)
    assert peak < limit, (peak, limit)
    direct = convolve2d(image, kernel, "same", stride=8, method="direct")
    assert_within_bound(out, direct, image, kernel, 0)


# -- auto and choose_method --------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 9, 21, 31, 45, 63])
def test_auto_is_one_of_the_routes_exactly(k):
    rng = np.random.default_rng(10)
    in1 = rng.standard_normal((400, 300))
    in2 = rng.standard_normal((k, k))
    auto = convolve2d(in1, in2, "same")
    route = choose_method(in1, in2, "same")
    assert_array_equal(auto, convolve2d(in1, in2, "same", method=route))


def test_choose_method_picks_by_size():
    image = np.ones((2000, 2000))
    assert choose_method(image, np.ones((3, 3))) == "direct"
    assert choose_method(image, np.ones((101, 101))) == "fft"
    assert choose_method(image.astype(np.int64), np.ones((101, 101), np.int64)) == "direct"
    # a large stride keeps the direct route
    assert choose_method(image, np.ones((15, 15)), stride=50) == "direct"


def test_choose_method_measures_both_routes():
    rng = np.random.default_rng(11)
    in1, in2 = rng.standard_normal((200, 200)), rng.standard_normal((21, 21))
    best, times = choose_method(in1, in2, "same", measure=True, workers=1)
    assert set(times) == {"direct", "fft"}
    assert best == min(times, key=times.get)
    assert all(t > 0 for t in times.values())
    best, times = choose_method(in1.astype(np.int32), in2.astype(np.int32), measure=True)
    assert best == "direct" and set(times) == {"direct"}


def test_integers_are_exact_and_refuse_fft():
    rng = np.random.default_rng(12)
    in1 = rng.integers(-100, 100, (200, 200))
    in2 = rng.integers(-100, 100, (64, 64))
    assert_array_equal(convolve2d(in1, in2, "same"), scipy.signal.convolve2d(in1, in2, "same"))
    with pytest.raises(ValueError, match="method='fft' is not available for integer"):
        convolve2d(in1, in2, method="fft")


@pytest.mark.parametrize("func", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("method", ["FFT", "", None, 1, "overlap-add"])
def test_bad_method(func, method):
    with pytest.raises(ValueError, match="method must be"):
        func(np.ones((3, 3)), np.ones((2, 2)), method=method)


# -- GIL, Ctrl-C -------------------------------------------------------------------

def test_fft_route_releases_the_gil(assert_releases_gil):
    rng = np.random.default_rng(13)
    kernel = rng.standard_normal((64, 64))
    assert_releases_gil(lambda scale: lambda: convolve2d(
        rng.standard_normal((256 * scale, 512)), kernel, "same", method="fft", workers=1))


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_long_fft_call(assert_interruptible, workers):
    # about 10**6 tiles; a broadcast image costs no memory, the stride keeps the
    # output small
    image = np.broadcast_to(np.float32(1.0), (10**6, 10**6))
    kernel = np.ones((127, 127), np.float32)
    small = lambda: convolve2d(image[:300, :300], kernel, method="fft")  # noqa: E731
    assert_interruptible(lambda: convolve2d(image, kernel, "valid", stride=1000,
                                            method="fft", workers=workers), small=small)
