"""convolve2d / correlate2d against scipy.signal, the oracle."""

import contextlib
import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings, strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import fastkern
from fastkern import _convolve, _interrupt, convolve2d, correlate2d

FUNCS = [(convolve2d, scipy.signal.convolve2d), (correlate2d, scipy.signal.correlate2d)]
FUNC_IDS = ["convolve2d", "correlate2d"]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.complex64): 1e-4,
       np.dtype(np.float64): 1e-10, np.dtype(np.complex128): 1e-10}


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def assert_matches(out, ref):
    """Same shape and dtype as scipy's, values within the issue's tolerance."""
    assert out.shape == ref.shape
    assert out.dtype == ref.dtype
    if ref.dtype.kind in "iu":
        assert_array_equal(out, ref)
        return
    rtol = TOL.get(ref.dtype, 1e-10)
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    assert_allclose(out, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shapes", [((13, 17), (3, 4)), ((6, 5), (6, 5)), ((2, 3), (5, 7)),
                                    ((1, 20), (1, 3)), ((20, 1), (4, 1)), ((9, 9), (2, 2))])
def test_parity_with_scipy(func, ref, mode, boundary, dtype, shapes):
    rng = np.random.default_rng(1)
    a = random_array(rng, shapes[0], dtype)
    b = random_array(rng, shapes[1], dtype)
    if mode == "valid" and not (all(x >= y for x, y in zip(*shapes))
                                or all(y >= x for x, y in zip(*shapes))):
        pytest.skip("no valid output for these shapes")
    assert_matches(func(a, b, mode, boundary, fillvalue=1.5), ref(a, b, mode, boundary, 1.5))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_much_larger_than_image(func, ref, boundary):
    # wrap and symm then reach many periods past the edge
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 2))
    b = rng.standard_normal((11, 9))
    for mode in ("full", "same"):
        assert_matches(func(a, b, mode, boundary, 0.5), ref(a, b, mode, boundary, 0.5))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_valid_mode_swaps_inputs_like_scipy(func, ref):
    rng = np.random.default_rng(3)
    small = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    big = rng.standard_normal((8, 9)) + 1j * rng.standard_normal((8, 9))
    assert_matches(func(small, big, "valid"), ref(small, big, "valid"))
    assert_matches(func(small, big, "valid", stride=(2, 3)), ref(small, big, "valid")[::2, ::3])


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_integer_dtypes_exact_with_wraparound(func, ref, dtype):
    rng = np.random.default_rng(4)
    a = random_array(rng, (7, 6), dtype)  # full range: sums overflow and wrap
    b = random_array(rng, (3, 2), dtype)
    for mode in MODES:
        for boundary in BOUNDARIES:
            assert_matches(func(a, b, mode, boundary, fillvalue=3),
                           ref(a, b, mode, boundary, fillvalue=3))


@pytest.mark.parametrize("dt1,dt2", [(np.int8, np.uint8), (np.float32, np.int64),
                                     (np.int8, np.float32), (np.float64, np.complex64),
                                     (np.int16, np.complex128), (np.longdouble, np.float64),
                                     (np.clongdouble, np.float32), (np.uint64, np.int64),
                                     (np.bool_, np.float64), (np.float16, np.float32),
                                     (np.bool_, np.int8), (np.float16, np.int16)])
def test_mixed_and_other_dtypes_follow_scipy(dt1, dt2):
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((6, 7)) * 20).astype(dt1)
    b = (rng.standard_normal((3, 3)) * 20).astype(dt2)
    for func, ref in FUNCS:
        assert_matches(func(a, b, "same", "symm"), ref(a, b, "same", "symm"))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_complex_fillvalue(func, ref):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((5, 6))
    b = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    assert_matches(func(a, b, fillvalue=2 - 3j), ref(a, b, fillvalue=2 - 3j))
    c = a + 1j * rng.standard_normal((5, 6))
    assert_matches(func(c, b.real, fillvalue=1j), ref(c, b.real, fillvalue=1j))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_nan_and_inf_propagate(func, ref):
    a = np.arange(30.0).reshape(5, 6)
    a[2, 3] = np.nan
    a[0, 0] = np.inf
    b = np.ones((2, 2))
    assert_array_equal(np.isnan(func(a, b)), np.isnan(ref(a, b)))
    assert_array_equal(np.isnan(func(a, b, fillvalue=np.nan)), np.isnan(ref(a, b, fillvalue=np.nan)))


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_non_contiguous_inputs(func, ref):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, 50)) + 1j * rng.standard_normal((40, 50))
    kbase = rng.standard_normal((9, 8))
    views = [base[::2, ::3], base[::-1, 5:30], np.asfortranarray(base.real), base.T,
             base.real[3:20, ::-2], base.imag[::3, ::2]]
    kernels = [kbase[::2, ::-1], np.asfortranarray(kbase), kbase.T[1:5, 2:7]]
    for a in views:
        for b in kernels:
            for mode in MODES:
                for boundary in BOUNDARIES:
                    assert_matches(func(a, b, mode, boundary), ref(a, b, mode, boundary))


def test_unaligned_and_byteswapped_inputs():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((9, 11))
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    unaligned = np.frombuffer(buf[1:].data, dtype=np.float64).reshape(a.shape)
    unaligned[...] = a
    assert not unaligned.flags.aligned
    swapped = a.astype(a.dtype.newbyteorder())
    b = rng.standard_normal((3, 2))
    expected = scipy.signal.convolve2d(a, b)
    assert_allclose(convolve2d(unaligned, b), expected, rtol=1e-12)
    assert_allclose(convolve2d(swapped, b), expected, rtol=1e-12)


def test_lists_and_scalars_of_python():
    assert_matches(convolve2d([[1, 2], [3, 4]], [[1]]), scipy.signal.convolve2d([[1, 2], [3, 4]], [[1]]))
    assert_matches(correlate2d([[1.5, 2], [3, 4]], [[1, 2]]),
                   scipy.signal.correlate2d([[1.5, 2], [3, 4]], [[1, 2]]))


# -- stride ---------------------------------------------------------------------

@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("stride", [1, 2, 5, (1, 3), (4, 1), (7, 2), (100, 100)])
def test_stride_equals_slicing(func, ref, stride):
    rng = np.random.default_rng(9)
    a = rng.standard_normal((31, 26))
    b = rng.standard_normal((4, 4))
    sy, sx = (stride, stride) if np.isscalar(stride) else stride
    for mode in MODES:
        for boundary in BOUNDARIES:
            assert_matches(func(a, b, mode, boundary, 2.0, stride=stride),
                           ref(a, b, mode, boundary, 2.0)[::sy, ::sx])


def test_image_workload_every_fifth_pixel():
    # the 2-filter image workload, at test size: zeros-or-random image, [::5, ::5]
    rng = np.random.default_rng(10)
    image = rng.random((300, 300)) * (rng.random((300, 300)) < 0.5)
    for f in (rng.random((4, 4)), rng.random((4, 4))):
        assert_matches(convolve2d(image, f, stride=5), scipy.signal.convolve2d(image, f)[::5, ::5])


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from(FLOAT_DTYPES + [np.int16, np.uint32]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    mode = draw(st.sampled_from(MODES))
    if mode == "valid" and not ((h >= kh and w >= kw) or (kh >= h and kw >= w)):
        mode = "full"
    boundary = draw(st.sampled_from(BOUNDARIES + ["pad", "circular", "symmetric"]))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    which = draw(st.integers(0, 1))
    seed = draw(st.integers(0, 2**32 - 1))
    return dtype, (h, w), (kh, kw), mode, boundary, stride, which, seed


@given(problems())
def test_hypothesis_shapes_modes_strides(problem):
    dtype, shape1, shape2, mode, boundary, stride, which, seed = problem
    rng = np.random.default_rng(seed)
    a = random_array(rng, shape1, dtype)
    b = random_array(rng, shape2, dtype)
    func, ref = FUNCS[which]
    assert_matches(func(a, b, mode, boundary, 1, stride=stride),
                   ref(a, b, mode, boundary, 1)[::stride[0], ::stride[1]])


# -- the kernel families -----------------------------------------------------------
# Unit-stride outputs run in blocks of 4 rows and 2-4 SIMD registers per row, one
# kernel per instruction set, picked at run time.  Each one this CPU runs is tested
# here, on shapes around the block sizes (the small shapes above fall back to the
# plain loop).

_BEST_ISA = _convolve._isa()
ISAS = _convolve._ISA_NAMES[:_convolve._ISA_NAMES.index(_BEST_ISA) + 1]


@pytest.fixture(params=ISAS)
def isa(request):
    _convolve._isa(request.param)
    assert _convolve._isa() == request.param
    yield request.param
    _convolve._isa(_BEST_ISA)


@st.composite
def block_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex128, np.int32]))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 150))
    kh, kw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(["full", "same"]))
    boundary = draw(st.sampled_from(BOUNDARIES))
    stride = (draw(st.integers(1, 3)), 1)
    which = draw(st.integers(0, 1))
    seed = draw(st.integers(0, 2**32 - 1))
    return dtype, (h, w), (kh, kw), mode, boundary, stride, which, seed


def test_isa_names_and_selection():
    assert _BEST_ISA in _convolve._ISA_NAMES
    assert "scalar" in ISAS
    try:
        _convolve._isa("scalar")
        assert _convolve._isa() == "scalar"
    finally:
        _convolve._isa(_BEST_ISA)
    with pytest.raises(ValueError, match="unknown kernel family"):
        _convolve._isa("sse9")


@given(problem=block_problems())
@settings(deadline=None)
@pytest.mark.parametrize("isa_name", ISAS)
def test_every_kernel_family_matches_scipy(isa_name, problem):
    dtype, shape1, shape2, mode, boundary, stride, which, seed = problem
    rng = np.random.default_rng(seed)
    a = random_array(rng, shape1, dtype)
    b = random_array(rng, shape2, dtype)
    func, ref = FUNCS[which]
    try:
        _convolve._isa(isa_name)
        out = func(a, b, mode, boundary, 1, stride=stride)
    finally:
        _convolve._isa(_BEST_ISA)
    assert_matches(out, ref(a, b, mode, boundary, 1)[::stride[0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("kshape", [(1, 1), (2, 3), (3, 3), (4, 4), (5, 2), (9, 7)])
def test_every_kernel_family_on_block_edges(isa, dtype, kshape):
    # rows: not a multiple of 4, and fewer than 4; columns: around 64, the widest block
    rng = np.random.default_rng(21)
    for shape in [(37, 131), (3, 70), (66, 63), (8, 64)]:
        a = random_array(rng, shape, dtype)
        b = random_array(rng, kshape, dtype)
        fits = shape[0] >= kshape[0] and shape[1] >= kshape[1]
        for mode in MODES if fits else ["full", "same"]:
            assert_matches(correlate2d(a, b, mode), scipy.signal.correlate2d(a, b, mode))
        assert_matches(convolve2d(a, b, "same", "wrap"),
                       scipy.signal.convolve2d(a, b, "same", "wrap"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.complex128])
@pytest.mark.parametrize("n_filters", [1, 3, 4, 9])
def test_every_kernel_family_on_column_strides(isa, dtype, n_filters):
    # strided output: rows split by phase, up to four filters per pass; outputs
    # around the widest SIMD block (64) after striding, and narrower ones
    rng = np.random.default_rng(23)
    for shape, kshape, stride in [((23, 64 * 3 + 17), (4, 4), (5, 3)),
                                  ((17, 64 * 5 + 3), (3, 7), (2, 5)),
                                  ((9, 64 * 2 + 1), (2, 9), (1, 2)),
                                  ((30, 140), (5, 1), (3, 4)),
                                  ((12, 40), (3, 3), (2, 3))]:
        a = random_array(rng, shape, dtype)
        bank = random_array(rng, (n_filters,) + kshape, dtype)
        for mode, boundary in [("full", "fill"), ("same", "symm"), ("valid", "fill"),
                               ("full", "wrap")]:
            got = correlate2d(a, bank, mode, boundary, 2, stride=stride)
            for f in range(n_filters):
                want = scipy.signal.correlate2d(a, bank[f], mode, boundary, 2)
                assert_matches(got[f], want[::stride[0], ::stride[1]])
        out = np.empty((n_filters,) + got.shape[1:], dtype, order="F")
        convolve2d(a, bank, "full", stride=stride, out=out)
        want = scipy.signal.convolve2d(a, bank[-1], "full")[::stride[0], ::stride[1]]
        assert_matches(out[-1], want)


def test_every_kernel_family_identical_for_every_workers(isa):
    # 15 million multiply-adds: enough work for 3 threads (see _convolve.pyx)
    rng = np.random.default_rng(22)
    a = rng.standard_normal((701, 1101))
    b = rng.standard_normal((5, 4))
    outs = [convolve2d(a, b, workers=w) for w in (1, 2, 3, 8)]
    for out in outs[1:]:
        assert_array_equal(out, outs[0])


# -- out= ---------------------------------------------------------------------------

@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int16, np.int64, np.uint64])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "unaligned"])
@pytest.mark.parametrize("stride", [1, (1, 2)])
def test_out_receives_the_result(func, ref, dtype, layout, stride):
    rng = np.random.default_rng(31)
    a = random_array(rng, (45, 130), dtype)  # wide enough for every SIMD block
    b = random_array(rng, (4, 3), dtype)
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    expected = ref(a, b, "full", "symm")[::sy, ::sx]
    shape = expected.shape
    if layout == "C":
        out = np.empty(shape, dtype)
    elif layout == "F":
        out = np.empty(shape, dtype, order="F")
    elif layout == "strided":
        out = np.empty((shape[0] * 2, shape[1] * 3), dtype)[::2, ::3]
    else:
        buf = np.empty(np.prod(shape) * np.dtype(dtype).itemsize + 1, np.uint8)
        out = buf[1:].view(dtype).reshape(shape)
        assert not out.flags.aligned or np.dtype(dtype).itemsize == 1
    out[...] = 7
    result = func(a, b, "full", "symm", stride=stride, out=out)
    assert result is out
    assert_matches(out, expected)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_out_may_be_an_input(func, ref):
    rng = np.random.default_rng(32)
    a = rng.standard_normal((40, 90))
    b = rng.standard_normal((5, 5))
    expected = ref(a, b, "same", "wrap")
    work = a.copy()
    assert func(work, b, "same", "wrap", out=work) is work
    assert_matches(work, expected)
    # an output that overlaps the input without being it
    big = np.zeros((50, 100))
    big[5:45, 5:95] = a
    func(big[5:45, 5:95], b, "same", "wrap", out=big[4:44, 6:96])
    assert_matches(big[4:44, 6:96], expected)


def test_out_reused_in_a_loop_matches_fresh_results():
    rng = np.random.default_rng(33)
    b = rng.standard_normal((4, 4))
    out = np.empty((203, 303))
    for _ in range(3):
        a = rng.standard_normal((200, 300))
        convolve2d(a, b, out=out, workers=2)
        assert_array_equal(out, convolve2d(a, b, workers=2))


# -- threads ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_identical_for_every_workers(dtype):
    rng = np.random.default_rng(11)
    a = random_array(rng, (257, 2100), dtype)  # several column blocks and row tiles
    b = random_array(rng, (5, 6), dtype)
    outs = [convolve2d(a, b, "same", "symm", workers=w) for w in (1, 2, 3, 8, -1)]
    for out in outs[1:]:
        assert_array_equal(out, outs[0])
    with fastkern.set_workers(3):
        assert_array_equal(correlate2d(a, b), correlate2d(a, b, workers=1))


def test_releases_the_gil(assert_releases_gil):
    rng = np.random.default_rng(12)
    image = rng.standard_normal((1000, 1000))
    # the kernel grows until one call lasts long enough on this machine
    assert_releases_gil(lambda scale: lambda: convolve2d(
        image, rng.standard_normal((4 * scale, 4)), method="direct", workers=1))


@pytest.mark.slow
def test_offsets_beyond_2_to_31_elements():
    """An image of over 2**31 elements: indices must be 64-bit.

    np.zeros maps untouched pages to the zero page, so this needs memory only for
    the few pages written and read."""
    rows, cols = 2**16 + 2, 2**15 + 5  # 2**31 + 32,773 * 2 elements
    assert rows * cols > 2**31
    try:
        image = np.zeros((rows, cols), dtype=np.float32)
    except MemoryError:
        pytest.skip("cannot reserve 8.6 GB of address space")
    r, c = rows - 2, cols - 3  # element offset r * cols + c > 2**31
    image[r, c] = 3.0
    image[r + 1, c + 1] = 5.0
    kernel = np.array([[1.0, 10.0], [100.0, 1000.0]], dtype=np.float32)
    # valid mode, every 4096th row: only the rows read are touched; r = 16 * 4096
    out = correlate2d(image, kernel, mode="valid", stride=(4096, 1), method="direct")
    assert out.shape == (17, cols - 1)
    last = out[-1]  # the windows starting at image row r
    assert last[c - 1] == 3.0 * 10.0
    assert last[c] == 3.0 * 1.0 + 5.0 * 1000.0
    assert last[c + 1] == 5.0 * 100.0
    assert np.count_nonzero(out) == 3


# -- bad input ---------------------------------------------------------------------

def _readonly(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("func", [convolve2d, correlate2d], ids=FUNC_IDS)
@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((np.ones(3), np.ones((2, 2))), {}, ValueError, "in1 must be a 2-D"),
    ((np.ones((3, 3)), np.ones((2, 2, 1, 1))), {}, ValueError, "in2 must be a 2-D"),
    ((np.ones((0, 3)), np.ones((2, 2))), {}, ValueError, "in1 must not be empty"),
    ((np.ones((3, 3)), np.ones((2, 0))), {}, ValueError, "in2 must not be empty"),
    ((np.ones((3, 3), dtype=object), np.ones((2, 2))), {}, ValueError, "in1 has dtype object"),
    ((np.ones((3, 3)), np.ones((2, 2), dtype="M8[s]")), {}, ValueError, "in2 has dtype datetime64"),
    ((np.ones((3, 3), dtype=bool), np.ones((2, 2), dtype=bool)), {}, ValueError,
     "promote to bool"),
    ((np.ones((3, 3), dtype=np.float16), np.ones((2, 2), dtype=np.float16)), {}, ValueError,
     "promote to float16"),
    ((np.array([["a"]]), np.ones((2, 2))), {}, ValueError, "in1 has dtype"),
    ((np.ones((3, 3)), np.ones((2, 2)), "bad"), {}, ValueError, "mode must be"),
    ((np.ones((3, 3)), np.ones((2, 2)), 0), {}, ValueError, "mode must be"),
    ((np.ones((3, 3)), np.ones((2, 2)), "full", "nearest"), {}, ValueError, "boundary must be"),
    ((np.ones((2, 5)), np.ones((3, 3)), "valid"), {}, ValueError, "one input must be at least"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": 0}, ValueError, "stride must be at least 1"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": (1, -2)}, ValueError, "stride must be at least 1"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": (1, 2, 3)}, ValueError, "stride must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": 1.5}, TypeError, "stride must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": True}, TypeError, "stride must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": 2**63}, ValueError, "stride must be at most"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": (1, 2**64)}, ValueError,
     "stride must be at most"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": "2"}, TypeError, "stride must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"stride": None}, TypeError, "stride must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": [1, 2]}, ValueError,
     "`fillvalue` must be scalar or an array with one element"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": []}, ValueError, "`fillvalue` must be"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": 1 + 2j}, ValueError,
     r"fillvalue \(1\+2j\) is complex but the output dtype is float64: could not cast "
     "`fillvalue` directly to the output"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": "x"}, ValueError,
     "fillvalue must be a number, got 'x'"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": "1"}, ValueError,
     "fillvalue must be a number, got '1'"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": None}, ValueError,
     "fillvalue must be a number, got None"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": object()}, ValueError,
     "fillvalue must be a number, got <object"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": np.datetime64(1, "s")}, ValueError,
     "fillvalue must be a number"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": 2**1100}, ValueError,
     "fillvalue .* does not fit the output dtype float64: could not cast"),
    ((np.ones((3, 3), dtype=np.int64), np.ones((2, 2), dtype=np.int64)), {"fillvalue": 2**63},
     ValueError, "fillvalue 9223372036854775808 does not fit the output dtype int64: could not"),
    ((np.ones((3, 3), dtype=np.uint64), np.ones((2, 2), dtype=np.uint64)), {"fillvalue": 2**64},
     ValueError, "fillvalue 18446744073709551616 does not fit the output dtype uint64"),
    ((np.ones((3, 3), dtype=np.int32), np.ones((2, 2), dtype=np.int32)), {"fillvalue": np.inf},
     ValueError, "fillvalue inf does not fit the output dtype int32"),
    ((np.ones((3, 3), dtype=np.uint8), np.ones((2, 2), dtype=np.uint8)), {"fillvalue": -1},
     ValueError, "fillvalue"),
    ((np.ones((3, 3), dtype=np.int8), np.ones((2, 2), dtype=np.int8)), {"fillvalue": np.nan},
     ValueError, "fillvalue"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": 0}, ValueError, "workers must not be zero"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": -10**6}, ValueError, "workers value out of range"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": 1.5}, TypeError, "workers must be an integer"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": 2**31}, ValueError,
     "workers must be at most 2147483647, got 2147483648"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": 10**30}, ValueError, "workers must be at most"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": True}, TypeError, "workers must be an integer"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"workers": "2"}, TypeError, "workers must be an integer"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": [[0.0] * 4] * 4}, TypeError, "out must be a NumPy"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.empty((3, 3))}, ValueError, "out has shape"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.empty((4, 4), np.float32)}, TypeError,
     "out has dtype float32"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.broadcast_to(0.0, (4, 4))}, ValueError,
     "out is read-only"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": _readonly(np.empty((4, 4)))}, ValueError,
     "out is read-only"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.empty(16)}, ValueError,
     r"out has shape \(16,\), but the result has shape \(4, 4\)"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.empty((4, 4), np.int64)}, TypeError,
     "out has dtype int64, but the result has dtype float64"),
    ((np.ones((3, 3)), np.ones((2, 2))), {"out": np.empty((4, 4), np.complex128)}, TypeError,
     "out has dtype complex128"),
    # more typos, types and shapes of every argument
    ((None, np.ones((2, 2))), {}, ValueError, r"in1 must be a 2-D array, got an array of shape \(\)"),
    (("abc", np.ones((2, 2))), {}, ValueError, "in1 must be a 2-D"),
    ((np.ones((3, 3)), [[[["x"]]]]), {}, ValueError,
     r"in2 must be a 2-D array, got an array of shape \(1, 1, 1, 1\)"),
    ((np.ones((2, 3, 4, 1)), np.ones((2, 2))), {}, ValueError, "in1 must be a 2-D"),
    ((np.ones((3, 3)), np.array([["a", "b"]])), {}, ValueError, "in2 has dtype <U1"),
    ((np.ones((3, 3)), np.ones((2, 2), dtype=object)), {}, ValueError, "in2 has dtype object"),
    (([[None]], np.ones((2, 2))), {}, ValueError, "in1 has dtype object"),
    ((np.ones((3, 3)), np.ones((0, 0))), {}, ValueError, "in2 must not be empty"),
    ((np.ones((3, 3)), np.ones((2, 2)), "Full"), {}, ValueError, "mode must be .* got 'Full'"),
    ((np.ones((3, 3)), np.ones((2, 2)), "fulll"), {}, ValueError, "mode must be"),
    ((np.ones((3, 3)), np.ones((2, 2)), None), {}, ValueError, "mode must be .* got None"),
    ((np.ones((3, 3)), np.ones((2, 2)), "same", "symetric"), {}, ValueError,
     "boundary must be .* got 'symetric'"),
    ((np.ones((3, 3)), np.ones((2, 2)), "same", "FILL"), {}, ValueError, "boundary must be"),
    ((np.ones((3, 3)), np.ones((2, 2)), "same", None), {}, ValueError, "boundary must be"),
])
def test_bad_input(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


def test_where_scipy_raises_valueerror_so_do_we():
    cases = [((np.ones(3), np.ones((2, 2))), {}), ((np.ones((3, 3)), np.ones((2, 2)), "x"), {}),
             ((np.ones((2, 5)), np.ones((3, 3)), "valid"), {}),
             ((np.ones((3, 3), dtype=bool), np.ones((2, 2), dtype=bool)), {}),
             ((np.ones((3, 3), dtype=np.float16), np.ones((2, 2), dtype=np.float16)), {}),
             ((np.ones((3, 3), dtype=object), np.ones((2, 2))), {}),
             ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": [1, 2]})]
    for args, kwargs in cases:
        with pytest.raises(ValueError):
            scipy.signal.convolve2d(*args, **kwargs)
        with pytest.raises(ValueError):
            convolve2d(*args, **kwargs)


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
def test_huge_stride_keeps_tiles_small(func, ref):
    # an output stride far larger than the filter: tiles must not gather the
    # skipped rows and columns (which would need gigabytes here)
    rng = np.random.default_rng(13)
    a = rng.standard_normal((1200, 1300))
    b = rng.standard_normal((3, 4))
    stride = (10**9, 997)
    for mode in MODES:
        for boundary in BOUNDARIES:
            assert_matches(func(a, b, mode, boundary, 0.5, stride=stride),
                           ref(a, b, mode, boundary, 0.5)[::stride[0], ::stride[1]])


@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("stride", [2**62, 2**63 - 1, (2**63 - 1, 1), (1, 2**63 - 1),
                                    (3, 2**62 + 1)])
def test_strides_up_to_the_largest_int64(func, ref, stride):
    # Offsets reach -(kernel size - 1): the geometry must not overflow with them
    # (UBSan once found `step - 1 - off` overflowing in fk_inside).
    rng = np.random.default_rng(15)
    a = rng.standard_normal((13, 17))
    b = rng.standard_normal((5, 4))
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    for mode in MODES:
        for boundary in BOUNDARIES:
            assert_matches(func(a, b, mode, boundary, 0.5, stride=stride),
                           ref(a, b, mode, boundary, 0.5)[::sy, ::sx])


# -- fillvalue ---------------------------------------------------------------------

@pytest.mark.parametrize("func,ref", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("dtype,fill", [
    (np.int64, 2**63 - 1), (np.int64, -2**63), (np.int64, 2**62 + 1), (np.int64, np.int64(-2**62 - 1)),
    (np.uint64, 2**64 - 1), (np.uint64, 2**63 + 1), (np.int8, -128), (np.uint8, 255),
    (np.int32, 2.9), (np.int32, -2.9), (np.uint8, True), (np.uint16, np.uint8(9)),
])
def test_integer_fillvalue_is_exact_like_scipy(func, ref, dtype, fill):
    # scipy converts an integer fill value exactly; a float one is truncated
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.ones((2, 2), dtype=dtype)
    assert_matches(func(a, b, fillvalue=fill), ref(a, b, fillvalue=fill))


@pytest.mark.parametrize("fill", [1j, 2 + 3j, np.complex64(1j)])
def test_fillvalue_errors_keep_scipys_words(fill):
    # code written against scipy matches this text (scipy's own test does)
    for func in (convolve2d, correlate2d):
        with pytest.raises(ValueError, match="could not cast `fillvalue` directly to the output "):
            func([[1]], [[1, 2]], fillvalue=fill)
    with pytest.raises(ValueError, match="`fillvalue` must be scalar or an array with "):
        convolve2d([[1]], [[1, 2]], fillvalue=[1, 2])


# -- scipy's own tests -----------------------------------------------------------------

# A pytest plugin for scipy's test run: scipy.signal's 2-D functions, and the test
# module's own names for them, become fastkern's; the calls are counted.
_SCIPY_SWAP_PLUGIN = """
import scipy.signal
import scipy.signal.tests.test_signaltools as tests

import fastkern

calls = [0]


def counted(func):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        return func(*args, **kwargs)
    return wrapper


for module in (scipy.signal, tests):
    module.convolve2d = counted(fastkern.convolve2d)
    module.correlate2d = counted(fastkern.correlate2d)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"fastkern calls: {calls[0]}")
"""


@pytest.mark.parametrize("marks", ["not slow", pytest.param("slow", marks=pytest.mark.slow)])
def test_scipys_own_convolve2d_tests_pass(tmp_path, marks):
    """scipy's TestConvolve2d and TestCorrelate2d, with scipy.signal's functions
    swapped for fastkern's.  One test is left out, on purpose: test_invalid_dims
    expects 3-D inputs to be refused, and fastkern takes them as a stack of
    images or a bank of filters (test_stacks_equal_a_loop_of_2d_calls)."""
    spec = importlib.util.find_spec("scipy.signal.tests.test_signaltools")
    if spec is None:
        pytest.skip("scipy's tests are not installed")
    (tmp_path / "fastkern_for_scipy.py").write_text(_SCIPY_SWAP_PLUGIN)
    site = pathlib.Path(importlib.util.find_spec("scipy").origin).parent.parent
    test_file = pathlib.Path(spec.origin).relative_to(site).as_posix()
    fastkern_root = pathlib.Path(fastkern.__file__).parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(fastkern_root), os.environ.get("PYTHONPATH", "")]))
    # run from the site directory, so that scipy's conftest.py (the `xp` fixture) loads
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "fastkern_for_scipy", "-p", "no:cacheprovider",
         "-m", marks, "-k", "not test_invalid_dims",
         f"{test_file}::TestConvolve2d", f"{test_file}::TestCorrelate2d"],
        cwd=site, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert " passed" in out and "fastkern calls: 0" not in out and "fastkern calls: " in out, out


# -- Ctrl-C ------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_long_call(assert_interruptible, workers):
    # 10**12 multiply-adds by the direct route (minutes on any machine) in 80 MB
    rng = np.random.default_rng(16)
    image = rng.standard_normal((3000, 3000)).astype(np.float32)
    kernel = rng.standard_normal((301, 301)).astype(np.float32)

    def small():
        assert_matches(convolve2d(image[:40, :50], kernel[:9, :7], workers=workers),
                       scipy.signal.convolve2d(image[:40, :50], kernel[:9, :7]))

    assert_interruptible(lambda: convolve2d(image, kernel, method="direct", workers=workers),
                         small=small)


@pytest.mark.parametrize("func", [convolve2d, correlate2d], ids=FUNC_IDS)
def test_ctrl_c_stops_a_call_of_one_long_row(assert_interruptible, func):
    # one output row of 10**7 columns, 10**5 multiply-adds each: the row is cut
    # into column blocks, between which the call sees Ctrl-C
    image = np.ones((1, 10**7), np.float32)
    kernel = np.ones((1, 10**5), np.float32)
    small = lambda: assert_array_equal(func(image[:, :10], kernel[:, :3], "valid"), [[3.0] * 8])
    assert_interruptible(lambda: func(image, kernel, method="direct", workers=1), small=small)


@contextlib.contextmanager
def signal_interval(seconds):
    old = _interrupt.interval(seconds)
    try:
        yield
    finally:
        _interrupt.interval(old)


def _looking_every(seconds, func, *args, **kwargs):
    """func(*args, **kwargs), its calling thread looking at the signals every
    `seconds` (1e-9: between any two units; inf: never)."""
    with signal_interval(seconds):
        return func(*args, **kwargs)


@st.composite
def tiled_problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex64, np.int32]))
    h, w = draw(st.integers(1, 90)), draw(st.integers(1, 700))
    kh, kw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(["full", "same"]))
    boundary = draw(st.sampled_from(BOUNDARIES))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    workers = draw(st.integers(1, 3))
    which = draw(st.integers(0, 1))
    seed = draw(st.integers(0, 2**32 - 1))
    return dtype, (h, w), (kh, kw), mode, boundary, stride, workers, which, seed


@given(tiled_problems())
@settings(deadline=None)
def test_looking_for_signals_changes_no_result(problem):
    dtype, shape1, shape2, mode, boundary, stride, workers, which, seed = problem
    rng = np.random.default_rng(seed)
    a = random_array(rng, shape1, dtype)
    b = random_array(rng, shape2, dtype)
    func = FUNCS[which][0]
    args = (func, a, b, mode, boundary, 2)
    tiny = _looking_every(1e-9, *args, stride=stride, workers=workers)
    whole = _looking_every(float("inf"), *args, stride=stride, workers=workers)
    assert tiny.tobytes() == whole.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape1,shape2,mode,stride", [
    ((2, 9000), (2, 4100), "valid", 1),  # large kernels: column blocks cut into pieces
    ((3, 6000), (1, 8200), "same", 1),
    ((40, 4500), (37, 250), "valid", (2, 1)),
    ((300, 2100), (5, 6), "same", (1, 3)),  # many tiles of rows
])
def test_signal_checks_and_workers_identical_on_tiled_calls(dtype, shape1, shape2, mode, stride):
    rng = np.random.default_rng(17)
    a = random_array(rng, shape1, dtype)
    b = random_array(rng, shape2, dtype)
    outs = [_looking_every(seconds, correlate2d, a, b, mode, "symm", stride=stride, workers=workers)
            for seconds in (1e-9, float("inf")) for workers in (1, 3)]
    for out in outs[1:]:
        assert out.tobytes() == outs[0].tobytes()
    ref = scipy.signal.correlate2d(a[:, :700], b[:, :50], mode, "symm")
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    assert_matches(correlate2d(a[:, :700], b[:, :50], mode, "symm", stride=stride), ref[::sy, ::sx])


# -- stacks of images and banks of filters -----------------------------------------

@pytest.mark.parametrize("func", [convolve2d, correlate2d], ids=FUNC_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int16])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stacked", ["both", "images", "filters"])
def test_stacks_equal_a_loop_of_2d_calls(func, dtype, mode, stacked):
    rng = np.random.default_rng(30)
    images = random_array(rng, (3, 23, 17), dtype)
    bank = random_array(rng, (4, 5, 3), dtype)
    in1 = images if stacked in ("both", "images") else images[0]
    in2 = bank if stacked in ("both", "filters") else bank[0]
    got = func(in1, in2, mode, "symm", stride=(2, 1))
    want = np.array([[func(a, k, mode, "symm", stride=(2, 1)) for k in np.reshape(
        in2, (-1,) + in2.shape[-2:])] for a in np.reshape(in1, (-1,) + in1.shape[-2:])])
    want = want.reshape(in1.shape[:-2] + in2.shape[:-2] + want.shape[-2:])
    assert got.shape == want.shape and got.dtype == want.dtype
    assert_array_equal(got, want)


@pytest.mark.parametrize("func", [convolve2d, correlate2d], ids=FUNC_IDS)
def test_stacks_through_the_fft_route_and_valid_swap(func):
    rng = np.random.default_rng(31)
    images = rng.standard_normal((2, 60, 50))
    bank = rng.standard_normal((3, 33, 31))
    for method in ("fft", "auto"):
        got = func(images, bank, "same", method=method)
        for b in range(2):
            for f in range(3):
                assert_array_equal(got[b, f], func(images[b], bank[f], "same", method=method))
    small = rng.standard_normal((2, 3, 4))
    got = func(small, bank, "valid")  # the filters are the larger: scipy swaps
    assert got.shape == (2, 3, 31, 28)
    assert_array_equal(got[1, 2], func(small[1], bank[2], "valid"))


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int32])
@pytest.mark.parametrize("shapes", [((2, 30, 70), (3, 3, 4)), ((30, 70), (3, 3, 4)),
                                    ((2, 30, 70), (3, 4))])
def test_stacks_write_any_out_layout(dtype, shapes):
    # out is written in place where it has the compute dtype, else through a copy
    rng = np.random.default_rng(33)
    images, bank = random_array(rng, shapes[0], dtype), random_array(rng, shapes[1], dtype)
    want = correlate2d(images, bank, "same", stride=(1, 2))
    for out in (np.zeros(want.shape[::-1], dtype).T,
                np.zeros(want.shape[:-1] + (2 * want.shape[-1],), dtype)[..., ::2]):
        assert correlate2d(images, bank, "same", stride=(1, 2), out=out) is out
        assert_array_equal(out, want)


def test_stacks_out_and_bad_shapes():
    rng = np.random.default_rng(32)
    images, bank = rng.standard_normal((2, 10, 9)), rng.standard_normal((3, 2, 2))
    out = np.zeros((2, 3, 11, 10))
    assert convolve2d(images, bank, out=out) is out
    assert_array_equal(out, convolve2d(images, bank))
    with pytest.raises(ValueError, match="out has shape"):
        convolve2d(images, bank, out=np.zeros((3, 2, 11, 10)))
    # a non-contiguous out, on both routes
    big = rng.standard_normal((3, 40, 40))
    for method in ("direct", "fft"):
        out = np.zeros((4, 3, 49, 48))[::2]
        assert convolve2d(images, big, method=method, out=out) is out
        assert_array_equal(out[1, 2], convolve2d(images[1], big[2], method=method))
    with pytest.raises(ValueError, match="in1 must be a 2-D array, or a 3-D stack"):
        convolve2d(np.ones((1, 2, 3, 4)), bank)
    with pytest.raises(ValueError, match="in2 is an empty stack"):
        convolve2d(images, np.ones((0, 2, 2)))
    with pytest.raises(ValueError, match="in1 is an empty stack"):
        correlate2d(np.ones((0, 4, 4)), bank)
