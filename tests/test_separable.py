"""sepconvolve2d / sepcorrelate2d against the 2-D routes with np.outer(column, row)
(themselves tested against scipy in test_convolve.py) and against scipy."""
import contextlib

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_array_equal

import fastkern.convolve
from fastkern import convolve2d, correlate2d, sepconvolve2d, sepcorrelate2d

PAIRS = [(sepconvolve2d, convolve2d), (sepcorrelate2d, correlate2d)]
PAIR_IDS = ["sepconvolve2d", "sepcorrelate2d"]


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def assert_within_bound(got, want, in1, column, row, fillvalue):
    """The documented bound: 2 (P + Q) eps max(|in1|, |fill|) sum|column| sum|row|."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind in "iu":
        assert_array_equal(got, want)
        return
    if not want.size:
        return
    eps = np.finfo(want.dtype).eps
    big = max(float(np.max(np.abs(in1))), abs(fillvalue))
    bound = (2 * (column.size + row.size) * eps * big
             * float(np.sum(np.abs(column))) * float(np.sum(np.abs(row))))
    err = float(np.max(np.abs(got.astype(np.complex128) - want)))
    assert err <= bound, (err, bound)


@st.composite
def problems(draw):
    m, n = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    p, q = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex64, np.complex128,
                                  np.int16, np.int64, np.uint8]))
    mode = draw(st.sampled_from(["full", "same", "valid"]))
    boundary = draw(st.sampled_from(["fill", "wrap", "symm"]))
    stride = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    fillvalue = draw(st.sampled_from([0, 1, -2]))
    return (m, n), p, q, dtype, mode, boundary, stride, fillvalue


@contextlib.contextmanager
def two_passes_always():
    """Small filters through the two passes too (they normally take the 2-D kernel)."""
    old = fastkern.convolve.SEPARABLE_MIN_TAPS
    fastkern.convolve.SEPARABLE_MIN_TAPS = 0
    try:
        yield
    finally:
        fastkern.convolve.SEPARABLE_MIN_TAPS = old


@given(problem=problems(), seed=st.integers(0, 2**32 - 1), pair=st.sampled_from(PAIRS),
       passes=st.booleans())
@settings(deadline=None, max_examples=400)
def test_equals_the_2d_call(problem, seed, pair, passes):
    with two_passes_always() if passes else contextlib.nullcontext():
        check_against_2d(problem, seed, pair)


def check_against_2d(problem, seed, pair):
    shape, p, q, dtype, mode, boundary, stride, fillvalue = problem
    sep, full = pair
    rng = np.random.default_rng(seed)
    in1 = random_array(rng, shape, dtype)
    column = random_array(rng, p, dtype)
    row = random_array(rng, q, dtype)
    try:
        want = full(in1, np.outer(column, row), mode, boundary, fillvalue, stride=stride,
                    method="direct")
    except ValueError:  # valid mode with neither input the larger
        with pytest.raises(ValueError):
            sep(in1, column, row, mode, boundary, fillvalue, stride=stride)
        return
    got = sep(in1, column, row, mode, boundary, fillvalue, stride=stride)
    assert_within_bound(got, want, in1, column, row, fillvalue)


@pytest.mark.parametrize("sep,full", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [7, 15, 63])
def test_gaussians_against_scipy(sep, full, boundary, dtype, k):
    rng = np.random.default_rng(1)
    in1 = rng.standard_normal((300, 257)).astype(dtype)
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-t * t / (2 * (k / 6) ** 2))
    g = (g / g.sum()).astype(dtype)
    ref = getattr(scipy.signal, full.__name__)(in1, np.outer(g, g), "same", boundary)
    got = sep(in1, g, g, "same", boundary)
    assert_within_bound(got, ref.astype(dtype), in1, g, g, 0)


@pytest.mark.parametrize("sep,full", PAIRS, ids=PAIR_IDS)
def test_mixed_dtypes_and_complex_fill(sep, full):
    rng = np.random.default_rng(2)
    in1 = rng.standard_normal((30, 20)).astype(np.float32)
    column = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    row = np.arange(1, 7, dtype=np.int16)
    want = full(in1, np.outer(column, row), "same", "fill", 1 - 2j, method="direct")
    got = sep(in1, column, row, "same", "fill", 1 - 2j)
    assert got.dtype == np.complex128
    assert_within_bound(got, want, in1, column, row, abs(1 - 2j))


@pytest.mark.parametrize("sep,full", PAIRS, ids=PAIR_IDS)
def test_valid_mode_with_the_filter_larger(sep, full):
    # scipy swaps the inputs; the filter plays the image
    rng = np.random.default_rng(3)
    in1 = rng.standard_normal((3, 4))
    column, row = rng.standard_normal(9), rng.standard_normal(7)
    want = getattr(scipy.signal, full.__name__)(in1, np.outer(column, row), "valid")
    assert_within_bound(sep(in1, column, row, "valid"), want, in1, column, row, 0)


def test_layouts_and_out():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((120, 90))
    column, row = rng.standard_normal(9), rng.standard_normal(5)
    ref = sepconvolve2d(base, column, row, "same")
    assert_array_equal(sepconvolve2d(np.asfortranarray(base), column, row, "same"), ref)
    assert_array_equal(sepconvolve2d(base.astype(">f8"), column.astype(">f8"), row, "same"),
                       ref)
    assert_array_equal(sepconvolve2d(base, np.repeat(column, 2)[::2], row[::-1][::-1],
                                     "same"), ref)
    out = np.zeros((120, 180))[:, ::2]
    assert sepconvolve2d(base, column, row, "same", out=out) is out
    assert_array_equal(out, ref)
    image = base.copy()
    sepconvolve2d(image, column, row, "same", out=image)
    assert_array_equal(image, ref)
    with pytest.raises(ValueError, match="out has shape"):
        sepconvolve2d(base, column, row, "same", out=np.zeros((3, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.complex128])
def test_identical_for_every_workers(dtype):
    rng = np.random.default_rng(5)
    in1 = random_array(rng, (700, 500), dtype)
    column, row = random_array(rng, 13, dtype), random_array(rng, 21, dtype)
    for stride in (1, (2, 3), (3, 1)):
        ref = sepconvolve2d(in1, column, row, "same", "symm", stride=stride, workers=1)
        for workers in (2, 3, -1):
            assert_array_equal(sepconvolve2d(in1, column, row, "same", "symm",
                                             stride=stride, workers=workers), ref)


@given(problem=problems(), seed=st.integers(0, 2**32 - 1), pair=st.sampled_from(PAIRS),
       depth=st.integers(1, 3))
@settings(deadline=None, max_examples=100)
def test_a_stack_of_images_equals_a_loop_of_2d_calls(problem, seed, pair, depth):
    shape, p, q, dtype, mode, boundary, stride, fillvalue = problem
    sep, _ = pair
    rng = np.random.default_rng(seed)
    stack = random_array(rng, (depth,) + shape, dtype)
    column = random_array(rng, p, dtype)
    row = random_array(rng, q, dtype)
    try:
        want = [sep(x, column, row, mode, boundary, fillvalue, stride=stride) for x in stack]
    except ValueError:  # valid mode with neither input the larger
        with pytest.raises(ValueError):
            sep(stack, column, row, mode, boundary, fillvalue, stride=stride)
        return
    got = sep(stack, column, row, mode, boundary, fillvalue, stride=stride)
    assert_array_equal(got, np.stack(want))
    out = np.empty(got.shape[::-1], got.dtype).T    # any layout
    assert sep(stack, column, row, mode, boundary, fillvalue, stride=stride, out=out) is out
    assert_array_equal(out, got)


def test_a_stack_written_over_itself():
    rng = np.random.default_rng(5)
    stack = rng.standard_normal((3, 40, 50))
    column, row = rng.standard_normal(11), rng.standard_normal(12)
    want = sepconvolve2d(stack, column, row, "same")
    sepconvolve2d(stack, column, row, "same", out=stack)
    assert_array_equal(stack, want)
    with pytest.raises(ValueError, match="out has shape"):
        sepconvolve2d(stack, column, row, "full", out=stack)


@pytest.mark.parametrize("args,match", [
    ((np.ones((5, 5)), np.ones((2, 2)), np.ones(3)), "column must be a 1-D array"),
    ((np.ones((5, 5)), np.ones(3), np.ones((1, 3))), "row must be a 1-D array"),
    ((np.ones((5, 5)), np.ones(0), np.ones(3)), "column must not be empty"),
    ((np.ones((5, 5)), np.ones(3), np.array(["a"])), "row has dtype"),
    ((np.ones((2, 5, 5, 2)), np.ones(3), np.ones(3)), "in1 must be a 2-D array, or a 3-D"),
    ((np.ones((0, 5, 5)), np.ones(3), np.ones(3)), "in1 is an empty stack"),
    ((np.ones((2, 0, 5)), np.ones(3), np.ones(3)), "in1 must not be empty"),
    ((np.ones((0, 5)), np.ones(3), np.ones(3)), "in1 must not be empty"),
])
def test_bad_input(args, match):
    for fn in (sepconvolve2d, sepcorrelate2d):
        with pytest.raises(ValueError, match=match):
            fn(*args)


def test_bad_mode_boundary_stride_workers():
    a, c = np.ones((5, 5)), np.ones(3)
    with pytest.raises(ValueError, match="mode must be"):
        sepconvolve2d(a, c, c, "bad")
    with pytest.raises(ValueError, match="boundary must be"):
        sepconvolve2d(a, c, c, "same", "bad")
    with pytest.raises(ValueError, match="stride must be at least 1"):
        sepconvolve2d(a, c, c, stride=0)
    with pytest.raises(ValueError, match="workers"):
        sepconvolve2d(a, c, c, workers=0)


def test_releases_the_gil(assert_releases_gil):
    rng = np.random.default_rng(6)
    column, row = rng.standard_normal(31), rng.standard_normal(31)
    assert_releases_gil(lambda scale: lambda: sepconvolve2d(
        rng.standard_normal((200 * scale, 500)), column, row, "same", workers=1))


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_long_call(assert_interruptible, workers):
    # a broadcast image costs no memory; about 10**7 multiply-adds per output
    # row in the column pass, 10**5 rows: minutes, in bounded memory
    image = np.broadcast_to(np.float32(1.0), (10**6, 3000))
    column = np.ones(2000, np.float32)
    row = np.ones(2000, np.float32)
    small = lambda: sepconvolve2d(image[:30, :30], column[:3], row[:3])  # noqa: E731
    assert_interruptible(lambda: sepconvolve2d(image, column, row, "same", stride=(10, 50),
                                               workers=workers), small=small)


def test_large_filters_keep_the_gather_buffer_bounded():
    # windows of 10**4 x 10**4 taps: gathered in chunks of columns (a tile's rows
    # at once would be 10**8 elements); every output covers the whole image
    image = np.arange(6, dtype=np.float64).reshape(2, 3)
    column, row = np.ones(10**4), np.ones(10**4)
    assert_array_equal(sepconvolve2d(image, column, row, "same"), np.full((2, 3), 15.0))
    assert_array_equal(sepconvolve2d(image, column, row, "same", boundary="wrap"),
                       sepconvolve2d(image, column, row, "same", boundary="wrap", workers=1))
