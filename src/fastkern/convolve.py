"""2-D convolution and correlation: drop-ins for ``scipy.signal.convolve2d`` and
``correlate2d`` that release the GIL, run on several threads and can stride."""
import math
import numbers
import operator
import sys
import time
from typing import NamedTuple

import numpy as np

from . import _convolve, _fftconv
from ._validation import as_array
from ._workers import resolve_workers

__all__ = ["choose_method", "convolve2d", "correlate2d", "sepconvolve2d", "sepcorrelate2d"]

_MODES = ("full", "same", "valid")
# scipy's names and aliases -> the core's FK_BOUNDARY_* codes
_BOUNDARIES = {"fill": 0, "pad": 0, "wrap": 1, "circular": 1, "symm": 2, "symmetric": 2}
# scipy's words for a fill value that does not fit the output, which code that
# catches scipy's error may match
_CAST_FAILED = "could not cast `fillvalue` directly to the output type"


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, stride=1,
               method="auto", workers=None, out=None):
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d`` does.

    The result equals ``scipy.signal.convolve2d(in1, in2, mode, boundary,
    fillvalue)[::sy, ::sx]`` with ``(sy, sx) = stride``, in shape, dtype and value,
    but only the kept outputs are computed.  The computation runs without the GIL,
    tiled, on ``workers`` threads.

    Parameters
    ----------
    in1 : array_like, shape (M, N) or (B, M, N)
        First input (the image), or a stack of ``B`` images.
    in2 : array_like, shape (P, Q) or (F, P, Q)
        Second input (the filter), or a bank of ``F`` filters.  In ``"valid"``
        mode one of the two must be at least as large as the other in every
        dimension; the larger one acts as the image.  With a stack or a bank the
        result is ``(B, F, R, C)``, the ``B`` and ``F`` axes present only where
        the inputs have them, each slice equal to the 2-D call; the direct
        route runs a whole bank over each tile of an image while it is in cache.
    mode : {"full", "same", "valid"}, optional
        Output size: the full convolution, ``in1``'s shape centred on the full
        output, or only the outputs that need no boundary value.
    boundary : {"fill", "wrap", "symm"}, optional
        How ``in1`` is extended past its edges: with ``fillvalue``, periodically,
        or by reflection.  scipy's aliases ``"pad"``, ``"circular"`` and
        ``"symmetric"`` are accepted.
    fillvalue : scalar, optional
        The value beyond the edges for ``boundary="fill"``: a number, cast to
        the output dtype (exactly, for an integer one).  A value that does not
        fit (a complex value for a real output, or an out-of-range or non-finite
        one for an integer output) is a ValueError whose message includes
        scipy's "could not cast `fillvalue` directly to the output type".
    stride : int or (int, int), optional
        Keep every ``sy``-th output row and every ``sx``-th column, starting with
        the first.  Default 1.
    method : {"auto", "direct", "fft"}, optional
        How to compute, with ``scipy.signal.convolve``'s names.  ``"direct"``
        sums the products: exact for integers, and what scipy computes for
        floats.  ``"fft"`` goes through FFTs of overlapping tiles (overlap-save),
        whose work per output grows with the log of the tile instead of with
        ``in2.size``; it is for float and complex inputs (a ValueError for
        integer ones), and differs from ``"direct"`` by at most
        ``2 * eps * log2(4 * (M+P) * (N+Q)) * max(|in1|, |fillvalue|) * sum(|in2|)``,
        ``eps`` that of the result's dtype.  ``"auto"`` (default) takes the
        route that a cost model of both predicts to be faster for these shapes,
        dtype, stride and this CPU (never for ``workers``, so the result does
        not depend on it); :func:`fastkern.convolve.choose_method` says which.
        Integer inputs always take ``"direct"``.
    workers : int, optional
        Threads to use; ``None`` uses the default (see :func:`fastkern.set_workers`),
        negative values count back from the number of CPUs.  The result does not
        depend on it.
    out : ndarray, optional
        Where to write the result: an array of the result's shape and dtype, of
        any memory layout, which may be one of the inputs.  A loop over images of
        one size that passes the same ``out`` each time saves the cost of
        allocating the result, which for a large output is that of writing it
        once more.

    Returns
    -------
    out : ndarray, shape ([B,] [F,] ceil(R / sy), ceil(C / sx))
        ``R x C`` is the shape of the unstrided output for ``mode``.  The dtype is
        the promoted dtype of the inputs, as scipy's.  float32/float64 and
        complex64/complex128 are computed natively; integer dtypes exactly, with
        the same wraparound as scipy; long double dtypes in double precision.
        The array passed as ``out``, if one was.

    Raises
    ------
    ValueError
        For inputs that are not 2-D or are empty, or whose dtypes promote to one
        scipy rejects (bool, float16, object, ...); for an unknown mode, boundary
        or method, ``method="fft"`` with integer inputs, a bad fillvalue, a stride
        below 1 or above ``sys.maxsize``, or ``workers=0``; in ``"valid"`` mode,
        when neither input is at least as large as the other in every dimension;
        and for an ``out`` of the wrong shape or one that is read-only.
    TypeError
        For an ``out`` that is not a NumPy array or has another dtype than the
        result's.

    See Also
    --------
    correlate2d, choose_method, scipy.signal.convolve2d, scipy.signal.fftconvolve

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> image = np.arange(25.0).reshape(5, 5)
    >>> box = np.ones((2, 2))
    >>> fastkern.convolve2d(image, box, mode="valid")
    array([[12., 16., 20., 24.],
           [32., 36., 40., 44.],
           [52., 56., 60., 64.],
           [72., 76., 80., 84.]])
    >>> fastkern.convolve2d(image, box, mode="valid", stride=2)
    array([[12., 20.],
           [52., 60.]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, stride, method, workers, out,
                   convolve=True)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, stride=1,
                method="auto", workers=None, out=None):
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d`` does.

    ``out[i, j] = sum_{k, l} in1[i + k - o0, j + l - o1] * conj(in2[k, l])`` with
    the offsets ``o0, o1`` set by ``mode``; the result equals
    ``scipy.signal.correlate2d(in1, in2, mode, boundary, fillvalue)[::sy, ::sx]``,
    including scipy's reversed output when ``"valid"`` mode swaps the inputs.

    Parameters
    ----------
    in1, in2, mode, boundary, fillvalue, stride, method, workers, out
        As for :func:`convolve2d`.

    Returns
    -------
    out : ndarray
        As for :func:`convolve2d`.

    See Also
    --------
    convolve2d, scipy.signal.correlate2d

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> fastkern.correlate2d(x, np.array([[1.0, -1.0]]), mode="valid")
    array([[-1., -1.],
           [-1., -1.]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, stride, method, workers, out,
                   convolve=False)


def sepconvolve2d(in1, column, row, mode="full", boundary="fill", fillvalue=0, *, stride=1,
                  workers=None, out=None):
    """Convolve a 2-D array with a separable filter, ``np.outer(column, row)``.

    The result equals ``convolve2d(in1, np.outer(column, row), mode, boundary,
    fillvalue, stride=stride)`` in shape and dtype, and in value within the
    rounding bound below, but costs ``P + Q`` multiply-adds per output instead of
    ``P * Q``: each tile of rows is filtered down its columns with `column`, then
    along its rows with `row`, without a full-size intermediate.  A Gaussian blur
    or a box filter is separable.  Filters of at most 100 taps with a unit column
    stride go through the 2-D kernel of :func:`convolve2d`, faster there.

    Parameters
    ----------
    in1 : array_like, shape (M, N) or (B, M, N)
        The image, or a stack of B images (each filtered as the 2-D call would).
    column : array_like, shape (P,)
        The filter's column factor (applied down the columns).
    row : array_like, shape (Q,)
        The filter's row factor (applied along the rows).
    mode, boundary, fillvalue, stride, workers, out
        As for :func:`convolve2d`.

    Returns
    -------
    out : ndarray, shape (R, C) or (B, R, C)
        As for :func:`convolve2d` with ``in2 = np.outer(column, row)``: the dtype
        is the promoted dtype of `in1`, `column` and `row`.  Integer dtypes are
        exact, with scipy's wraparound.  Float results differ from the 2-D
        convolution's by at most ``2 * (P + Q) * eps * max(|in1|, |fillvalue|) *
        sum(|column|) * sum(|row|)``, ``eps`` that of the result's dtype (the
        sums are taken in another order).

    Raises
    ------
    ValueError, TypeError
        As :func:`convolve2d`, and for a `column` or `row` that is not a 1-D,
        non-empty array of numbers.  In ``"valid"`` mode with a filter larger
        than the image (scipy swaps the inputs), the 2-D route computes it.

    Examples
    --------
    >>> import numpy as np, fastkern
    >>> image = np.arange(25.0).reshape(5, 5)
    >>> fastkern.sepconvolve2d(image, [1.0, 1.0], [1.0, 1.0], mode="valid")
    array([[12., 16., 20., 24.],
           [32., 36., 40., 44.],
           [52., 56., 60., 64.],
           [72., 76., 80., 84.]])
    """
    return _sep2d(in1, column, row, mode, boundary, fillvalue, stride, workers, out,
                  convolve=True)


def sepcorrelate2d(in1, column, row, mode="full", boundary="fill", fillvalue=0, *, stride=1,
                   workers=None, out=None):
    """Cross-correlate a 2-D array with a separable filter, ``np.outer(column, row)``:
    ``correlate2d(in1, np.outer(column, row), ...)`` at ``P + Q`` multiply-adds per
    output.

    Parameters, returns and errors as :func:`sepconvolve2d`.
    """
    return _sep2d(in1, column, row, mode, boundary, fillvalue, stride, workers, out,
                  convolve=False)


# Filters of at most this many taps (P * Q) go through the 2-D direct kernel when
# the column stride is 1: on the 3000x3000 image, one thread, a 7x7 Gaussian took
# 28.4 ms there against 39.5 ms in two passes, and 15x15 77.7 against 48.5 ms
# (python bench/bench_separable.py, float64; the crossover is near 11x11).
SEPARABLE_MIN_TAPS = 100


def _sep2d(in1, column, row, mode, boundary, fillvalue, stride, workers, result, convolve):
    column = _as_input(column, "column", ndim=1)
    row = _as_input(row, "row", ndim=1)
    ndim = as_array(in1, "in1").ndim
    if ndim not in (2, 3):
        raise ValueError(f"in1 must be a 2-D array, or a 3-D stack of them, got an array of "
                         f"shape {as_array(in1, 'in1').shape}")
    if ndim == 3:
        return _sep_stack(as_array(in1, "in1"), column, row, mode, boundary, fillvalue, stride,
                          workers, result, convolve)
    in1 = _as_input(in1, "in1")
    # the 2-D filter as scipy would see it, without its values: shape and dtype
    shape2 = (column.size, row.size)
    placeholder = np.broadcast_to(np.zeros((), np.result_type(column.dtype, row.dtype)), shape2)
    if isinstance(mode, str) and mode == "valid" and _valid_swap(in1.shape, shape2, "in1"):
        # scipy swaps the inputs: the filter plays the image; a 2-D problem
        return _conv2d(in1, np.outer(column, row), mode, boundary, fillvalue, stride, "direct",
                       workers, result, convolve)
    pb = _problem(in1, placeholder, mode, boundary, fillvalue, stride, convolve)
    if pb.steps[1] == 1 and column.size * row.size <= SEPARABLE_MIN_TAPS:
        # a small filter: the 2-D kernel's blocked multiply-adds beat two passes
        return _conv2d(in1, np.outer(column, row), mode, boundary, fillvalue, stride,
                       "direct", workers, result, convolve)
    n_threads = resolve_workers(workers)
    image = pb.image
    if convolve:
        column, row = column[::-1], row[::-1]
    out, direct = _result_array(pb, result)
    if result is not None:
        if np.may_share_memory(image, result):
            image = image.copy()
        if np.may_share_memory(column, result) or np.may_share_memory(row, result):
            column, row = column.copy(), row.copy()
    img_re, img_im = _compute_planes(image, pb.real_dtype)
    col_re, col_im = _compute_planes(column.reshape(-1, 1), pb.real_dtype, pb.conjugate)
    row_re, row_im = _compute_planes(row.reshape(1, -1), pb.real_dtype, pb.conjugate)
    if img_im is None and pb.fill.imag != 0:
        img_im = np.zeros_like(img_re)
    contiguous = [None if a is None else np.ascontiguousarray(a)
                  for a in (col_re, col_im, row_re, row_im)]
    _convolve.sepcorrelate_planes(img_re, img_im, *contiguous, *_out_planes(out),
                                  *_fill_parts(pb), pb.off[0], pb.off[1], pb.steps[0],
                                  pb.steps[1], pb.boundary, n_threads)
    return _finish(pb, out, result, direct)


def _sep_stack(images, column, row, mode, boundary, fillvalue, stride, workers, result,
               convolve):
    """A stack of images (B, M, N) through one separable filter: (B, R, C), each
    slice the 2-D call."""
    if images.shape[0] == 0:
        raise ValueError(f"in1 is an empty stack: shape {images.shape}")
    placeholder = np.broadcast_to(np.zeros((), np.result_type(column.dtype, row.dtype)),
                                  (column.size, row.size))
    pb = _problem(images[0], placeholder, mode, boundary, fillvalue, stride, convolve)
    shape = (images.shape[0],) + pb.out_shape
    if result is not None:
        _check_out(result, shape, pb.out_dtype)
        if np.may_share_memory(images, result):
            images = images.copy()
    n_threads = resolve_workers(workers)
    out = np.empty(shape, dtype=pb.out_dtype) if result is None else result
    for b in range(images.shape[0]):
        _sep2d(images[b], column, row, mode, boundary, fillvalue, stride, n_threads, out[b],
               convolve)
    return out


def _as_input(x, name, ndim=2):
    """x as a non-empty array of `ndim` dimensions of a dtype the kernels take."""
    x = as_array(x, name)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got an array of shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    if x.dtype.kind not in "biufc":
        raise ValueError(f"{name} has dtype {x.dtype}, for which 2-D convolution is not "
                         f"available (integer, float and complex dtypes are)")
    return x


def _valid_swap(shape1, shape2, name1):
    """scipy's 'valid'-mode rule: True if the second input is the larger one (the
    inputs swap roles); a ValueError if neither is as large as the other."""
    ok1 = all(a >= b for a, b in zip(shape1, shape2))
    ok2 = all(b >= a for a, b in zip(shape1, shape2))
    if not (ok1 or ok2):
        raise ValueError("in 'valid' mode one input must be at least as large as the "
                         f"other in every dimension; got {name1} of shape {shape1} and "
                         f"in2 of shape {shape2}")
    return not ok1


def _parse_stride(stride):
    if isinstance(stride, bool):
        raise TypeError(f"stride must be an int or a pair of ints, got {stride!r}")
    try:
        steps = (operator.index(stride),) * 2
    except TypeError:
        try:
            steps = tuple(operator.index(s) for s in stride)
        except TypeError:
            raise TypeError(f"stride must be an int or a pair of ints, got {stride!r}") from None
        if len(steps) != 2 or any(isinstance(s, (bool, np.bool_)) for s in stride):
            raise ValueError(f"stride must be an int or a pair of ints, got {stride!r}")
    if min(steps) < 1:
        raise ValueError(f"stride must be at least 1, got {stride!r}")
    if max(steps) > sys.maxsize:
        raise ValueError(f"stride must be at most {sys.maxsize}, got {stride!r}")
    return steps


def _parse_fill(fillvalue, out_dtype):
    """The fill value, checked to fit the output dtype: for an integer output an
    int, exact (as scipy's, whose conversion tries the integer first), else a
    complex number."""
    fv = as_array(fillvalue, "fillvalue")
    if fv.size != 1:  # scipy's words
        raise ValueError("`fillvalue` must be scalar or an array with one element, "
                         f"got shape {fv.shape}")
    if (out_dtype.kind != "c" and fv.dtype.kind == "c"
            and not isinstance(fillvalue, np.complexfloating)):
        # scipy converts to the output dtype safely: a Python complex or a complex
        # array fails even with no imaginary part (a NumPy complex scalar passes)
        raise ValueError(f"fillvalue {fillvalue!r} is complex but the output dtype is "
                         f"{out_dtype}: {_CAST_FAILED}")
    fv = fv.reshape(())
    if fv.dtype.kind in "fc":
        value = complex(fv.astype(np.complex128))
    elif fv.dtype.kind in "biuO":
        value = fv.item()  # integers of any size, exactly
    else:
        value = None
    if isinstance(value, numbers.Number) and not isinstance(value, numbers.Integral):
        try:
            value = complex(value)
        except (TypeError, ValueError):
            value = None
    if not isinstance(value, (numbers.Integral, complex)):
        raise ValueError(f"fillvalue must be a number, got {fillvalue!r}")
    does_not_fit = ValueError(f"fillvalue {fillvalue!r} does not fit the output dtype "
                              f"{out_dtype}: {_CAST_FAILED}")
    if isinstance(value, complex):
        if out_dtype.kind != "c" and value.imag != 0:
            raise ValueError(f"fillvalue {fillvalue!r} is complex but the output dtype is "
                             f"{out_dtype}: {_CAST_FAILED}")
        if out_dtype.kind in "iu":
            if not math.isfinite(value.real):
                raise does_not_fit
            value = int(value.real)  # truncated, as scipy's
    if out_dtype.kind in "iu":
        info = np.iinfo(out_dtype)
        if not info.min <= value <= info.max:
            raise does_not_fit
        return int(value)
    try:
        return complex(value)
    except OverflowError:  # an int beyond every float
        raise does_not_fit from None


def _check_out(out, shape, dtype):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def _aligned(x):
    return x if x.flags.aligned else x.copy()


def _planes(x, real_dtype):
    """(real plane, imaginary plane or None) of x in the compute dtype."""
    if x.dtype.kind == "c":
        x = _aligned(np.asarray(x, dtype=np.result_type(real_dtype, np.complex64)))
        return x.real, x.imag
    return _aligned(np.asarray(x, dtype=real_dtype)), None


class _Problem(NamedTuple):
    """A call in normal form: ``out[a, b] = sum_{p, q} kernel[p, q] *
    X[off0 + a*step0 + p, off1 + b*step1 + q]``, X the image extended by the
    boundary rule; for a correlation ``kernel`` is in2 as given (conjugated by
    the routes), for a convolution in2 reversed."""
    image: np.ndarray
    kernel: np.ndarray
    conjugate: bool      # the kernel enters conjugated (a complex correlation)
    off: tuple
    steps: tuple
    boundary: int        # an FK_BOUNDARY_* code
    fill: object         # int for integer outputs, else complex
    out_shape: tuple
    out_dtype: np.dtype
    real_dtype: np.dtype  # the compute dtype of one plane: float32, float64 or uint64


def _problem(in1, in2, mode, boundary, fillvalue, stride, convolve):
    in1 = _as_input(in1, "in1")
    in2 = _as_input(in2, "in2")
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be 'full', 'same' or 'valid', got {mode!r}")
    if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        raise ValueError("boundary must be 'fill', 'wrap' (or 'circular') or 'symm' "
                         f"(or 'symmetric'), got {boundary!r}")
    step0, step1 = _parse_stride(stride)
    # scipy computes in the promoted dtype, so bool or float16 mixed with a wider
    # type is fine, and only the promoted dtype must be one the kernels have
    out_dtype = np.result_type(in1.dtype, in2.dtype)
    if out_dtype.kind not in "iufc" or out_dtype == np.float16:
        raise ValueError(f"in1 and in2 have dtypes {in1.dtype} and {in2.dtype}, which promote "
                         f"to {out_dtype}, for which 2-D convolution is not available "
                         f"(integer, float32/64 and complex dtypes are)")
    fill = _parse_fill(fillvalue, out_dtype)

    swapped = mode == "valid" and _valid_swap(in1.shape, in2.shape, "in1")

    # Everything becomes a correlation of `image` with `kernel`, the kernel's window
    # for output (0, 0) starting at image coordinate `off`.
    if convolve:
        image, kernel = (in2, in1) if swapped else (in1, in2)
        kernel = kernel[::-1, ::-1]
        centre = [k // 2 for k in kernel.shape]
    else:
        if swapped:  # scipy reverses this output; reversing both inputs is the same
            image, kernel = in2[::-1, ::-1], in1[::-1, ::-1]
        else:
            image, kernel = in1, in2
        centre = [(k - 1) // 2 for k in kernel.shape]
    if mode == "full":
        off = [1 - k for k in kernel.shape]
        full_shape = [n + k - 1 for n, k in zip(image.shape, kernel.shape)]
    elif mode == "same":
        off = [-c for c in centre]
        full_shape = list(image.shape)
    else:
        off = [0, 0]
        full_shape = [n - k + 1 for n, k in zip(image.shape, kernel.shape)]
    out_shape = ((full_shape[0] + step0 - 1) // step0, (full_shape[1] + step1 - 1) // step1)
    if out_dtype.kind in "iu":
        real_dtype = np.dtype(np.uint64)
    elif out_dtype in (np.float32, np.complex64):
        real_dtype = np.dtype(np.float32)
    else:
        real_dtype = np.dtype(np.float64)
    return _Problem(image, kernel, not convolve and kernel.dtype.kind == "c", tuple(off),
                    (step0, step1), _BOUNDARIES[boundary], fill, out_shape, out_dtype,
                    real_dtype)


def _conv2d(in1, in2, mode, boundary, fillvalue, stride, method, workers, result, convolve):
    a1, a2 = as_array(in1, "in1"), as_array(in2, "in2")
    if a1.ndim == 3 or a2.ndim == 3:
        return _stacked(a1, a2, mode, boundary, fillvalue, stride, method, workers, result,
                        convolve)
    pb = _problem(in1, in2, mode, boundary, fillvalue, stride, convolve)
    n_threads = resolve_workers(workers)
    route = _route(pb, method)
    image, kernel = pb.image, pb.kernel
    out, direct = _result_array(pb, result)
    if result is not None:
        # the kernels write while they read: an input that shares memory with the
        # output is read from a copy
        if np.may_share_memory(image, result):
            image = image.copy()
        if np.may_share_memory(kernel, result):
            kernel = kernel.copy()
    geometry = (pb.off[0], pb.off[1], pb.steps[0], pb.steps[1], pb.boundary)
    if route is None:  # the direct route: csrc/convolve's tiled correlation core
        img_re, img_im, ker_re, ker_im, out_re, out_im, fill_re, fill_im = _plane_args(
            pb, image, kernel, out)
        _convolve.correlate_planes(img_re, img_im, _bank(ker_re), _bank(ker_im),
                                   _bank(out_re), _bank(out_im), fill_re, fill_im,
                                   *geometry, n_threads)
    elif route.own:  # the FFT route's own transforms (csrc/convolve/fk_fftconv.h)
        _convolve.fft_correlate(*_plane_args(pb, image, kernel, out), *geometry,
                                *route.shape, *route.per_tile, n_threads)
    else:  # the periodic plan of boundary="wrap", by scipy.fft
        _fftconv.periodic(image, kernel.conj() if pb.conjugate else kernel, pb.off,
                          pb.steps, out, n_threads)
    return _finish(pb, out, result, direct)


def _stacked(in1, in2, mode, boundary, fillvalue, stride, method, workers, result, convolve):
    """A stack of images (B, M, N) and/or a bank of filters (F, P, Q): the result
    is (B, F, R, C), the B and F axes present only where the inputs have them,
    each slice the 2-D call.  The direct route runs the whole bank in one call per
    image, every tile of the image through every filter while it is in cache."""
    for x, name in ((in1, "in1"), (in2, "in2")):
        if x.ndim not in (2, 3):
            raise ValueError(f"{name} must be a 2-D array, or a 3-D stack of them, got an "
                             f"array of shape {x.shape}")
        if x.ndim == 3 and x.shape[0] == 0:
            raise ValueError(f"{name} is an empty stack: shape {x.shape}")
    images = in1 if in1.ndim == 3 else in1[None]
    bank = in2 if in2.ndim == 3 else in2[None]
    # the problem of one slice: shapes, dtypes, geometry, route
    pb = _problem(images[0], bank[0], mode, boundary, fillvalue, stride, convolve)
    n_threads = resolve_workers(workers)
    route = _route(pb, method)
    lead = in1.shape[:in1.ndim - 2] + in2.shape[:in2.ndim - 2]
    shape = lead + pb.out_shape
    if result is not None:
        _check_out(result, shape, pb.out_dtype)
    # the result is written while the inputs are read: inputs that share memory
    # with it are read from copies
    if result is not None and (np.may_share_memory(in1, result)
                               or np.may_share_memory(in2, result)):
        images, bank = images.copy(), bank.copy()
    fn = convolve2d if convolve else correlate2d
    swapped = pb.image.shape != images.shape[1:]
    if route is not None or swapped:
        # one 2-D call per pair: the FFT route (or scipy's swapped 'valid' mode)
        out = np.empty(shape, dtype=pb.out_dtype) if result is None else result
        view = out if in1.ndim == 3 else out[None]  # views, whatever out's layout
        view = view if in2.ndim == 3 else view[:, None]
        for b in range(images.shape[0]):
            for f in range(bank.shape[0]):
                fn(images[b], bank[f], mode, boundary, fillvalue, stride=stride,
                   method=method, workers=n_threads, out=view[b, f])
        return out
    if convolve:
        bank = bank[:, ::-1, ::-1]
    compute_dtype = (np.result_type(pb.real_dtype, np.complex64) if pb.out_dtype.kind == "c"
                     else pb.real_dtype)
    ker_re, ker_im = _compute_planes(bank, pb.real_dtype, pb.conjugate)
    ker_re = np.ascontiguousarray(ker_re)
    ker_im = None if ker_im is None else np.ascontiguousarray(ker_im)
    if result is not None and result.dtype == compute_dtype:
        # written in place, through views of any layout
        out = result if in1.ndim == 3 else result[None]
        out = out if in2.ndim == 3 else out[:, None]
    else:
        out = np.empty((images.shape[0], bank.shape[0]) + pb.out_shape, dtype=compute_dtype)
    fill_re, fill_im = _fill_parts(pb)
    for b in range(images.shape[0]):
        img_re, img_im = _compute_planes(images[b], pb.real_dtype)
        if img_im is None and pb.fill.imag != 0:
            img_im = np.zeros_like(img_re)
        out_re, out_im = _out_planes(out[b])
        _convolve.correlate_planes(img_re, img_im, ker_re, ker_im, out_re, out_im, fill_re,
                                   fill_im, pb.off[0], pb.off[1], pb.steps[0], pb.steps[1],
                                   pb.boundary, n_threads)
    if result is not None and result.dtype == compute_dtype:
        return result
    if pb.real_dtype == np.uint64 and pb.out_dtype.kind == "i":
        out = out.view(np.int64)
    out = out.reshape(shape)
    if result is None:
        return out.astype(pb.out_dtype, copy=False)
    np.copyto(result, out, casting="unsafe")
    return result


def _bank(x):
    """A plane as a bank of one (a leading axis of length 1), or None."""
    return None if x is None else x[None]


def _result_array(pb, result):
    """(out, direct): the array the kernels write, in the compute dtype: the
    result array itself where its dtype is the compute dtype (int64 is written as
    its uint64 view) and it is aligned (direct True), else a new one."""
    if result is not None:
        _check_out(result, pb.out_shape, pb.out_dtype)
    compute_dtype = (np.result_type(pb.real_dtype, np.complex64) if pb.out_dtype.kind == "c"
                     else pb.real_dtype)
    direct = result is not None and result.flags.aligned and (
        pb.out_dtype == compute_dtype
        or (pb.out_dtype == np.int64 and compute_dtype == np.uint64))
    out = result.view(compute_dtype) if direct else np.empty(pb.out_shape, dtype=compute_dtype)
    return out, direct


def _finish(pb, out, result, direct):
    """The result: `out` in the result dtype, or copied into the caller's `result`."""
    if pb.real_dtype == np.uint64 and pb.out_dtype.kind == "i":
        out = out.view(np.int64)
    if result is None:
        return out.astype(pb.out_dtype, copy=False)
    if not direct:
        np.copyto(result, out, casting="unsafe")  # integers wrap, as scipy's do
    return result


def _compute_planes(x, real_dtype, conjugate=False):
    """x as (real plane, imaginary plane or None) of the compute dtype: float32
    or float64, or uint64 (wrapping) for integers; conjugated if asked."""
    if real_dtype == np.uint64:
        x = x.astype(np.int64 if x.dtype.kind == "i" else np.uint64, copy=False).view(np.uint64)
    re, im = _planes(x, real_dtype)
    if im is not None and conjugate:
        im = -im
    return re, im


def _fill_parts(pb):
    if pb.real_dtype == np.uint64:
        return int(pb.fill.real) % 2**64, 0
    with np.errstate(over="ignore"):
        return pb.real_dtype.type(pb.fill.real), pb.real_dtype.type(pb.fill.imag)


def _out_planes(out):
    return (out.real, out.imag) if out.dtype.kind == "c" else (out, None)


def _plane_args(pb, image, kernel, out):
    """Both routes' arguments: the image, kernel and output as real planes of the
    compute dtype (imaginary planes None where zero), and the fill value's parts."""
    img_re, img_im = _compute_planes(image, pb.real_dtype)
    ker_re, ker_im = _compute_planes(kernel, pb.real_dtype, pb.conjugate)
    ker_re = np.ascontiguousarray(ker_re)
    if ker_im is not None:
        ker_im = np.ascontiguousarray(ker_im)
    if img_im is None and pb.fill.imag != 0:
        img_im = np.zeros_like(img_re)
    return (img_re, img_im, ker_re, ker_im, *_out_planes(out), *_fill_parts(pb))


_METHODS = ("auto", "direct", "fft")

# The direct route's cost on one thread, seconds x 1e9: per output, plus per
# multiply-add, for unit-stride outputs with the AVX-512 kernels; measured on the
# development machine (python bench/fft_calibrate.py; bench/README.md, "The FFT
# route's cost model").  Strided outputs (column step s > 1) first split the image
# rows they read by phase, about _SPLIT_NS per element copied (each output copies
# min(s0, kr) x min(s1, kc) of them), and then cost _DIRECT_STRIDED_NS x
# (1 + min(s1, kc)) per multiply-add: their vector kernels load every operand,
# from a working set that grows with the stride.  The other kernel families were
# slower there by the factors given (the "scalar" family is plain C that the
# compiler vectorises; "base" is what a CPU without AVX2 runs).
_DIRECT_NS = {np.dtype(np.float32): (0.5, 0.019), np.dtype(np.float64): (1.0, 0.035)}
_DIRECT_STRIDED_NS = {np.dtype(np.float32): 0.014, np.dtype(np.float64): 0.025}
_SPLIT_NS = 1.0
_ISA_SLOWDOWN = {"avx512": 1.0, "avx2": 1.7, "base": 7.5, "scalar": 4.0}


def _direct_seconds(pb):
    outs = float(pb.out_shape[0]) * float(pb.out_shape[1])
    kr, kc = pb.kernel.shape
    taps = float(kr) * float(kc)
    products = (1 + (pb.image.dtype.kind == "c")) * (1 + (pb.kernel.dtype.kind == "c"))
    if pb.steps[1] == 1:  # the row stride only picks rows: the SIMD kernels run
        per_out, per_tap = _DIRECT_NS[pb.real_dtype]
    else:
        s0, s1 = pb.steps
        per_out = 6.0 + _SPLIT_NS * float(min(s0, kr)) * float(min(s1, kc))
        per_tap = _DIRECT_STRIDED_NS[pb.real_dtype] * (1 + min(s1, kc))
    per_tap *= _ISA_SLOWDOWN.get(_convolve._isa(), 8.0)
    return products * outs * (per_out + per_tap * taps) * 1e-9


def _fft_plan(pb):
    complex_ = pb.image.dtype.kind == "c" or pb.kernel.dtype.kind == "c" or pb.fill.imag != 0
    return _fftconv.plan(pb.image.shape, pb.kernel.shape, pb.out_shape, pb.steps,
                         pb.boundary, pb.real_dtype == np.float32, complex_)


def _route(pb, method):
    """None for the direct route, else the FFT route's plan."""
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    if method == "direct":
        return None
    if pb.real_dtype == np.uint64:
        if method == "fft":
            raise ValueError(f"method='fft' is not available for integer inputs (the result "
                             f"dtype is {pb.out_dtype}): they are computed exactly, by "
                             f"method='direct'")
        return None
    fft = _fft_plan(pb)
    if method == "fft" or fft.seconds < _direct_seconds(pb):
        return fft
    return None


def choose_method(in1, in2, mode="full", boundary="fill", fillvalue=0, *, stride=1,
                  convolve=True, measure=False, workers=None):
    """The route ``method="auto"`` takes for these arguments, as
    ``scipy.signal.choose_conv_method`` does for ``scipy.signal.convolve``.

    ``"auto"`` compares a cost model of the direct route (multiply-adds, by
    dtype, stride and the CPU's kernel family) with one of the FFT route (the
    transforms of the cheapest tiling): see the README, "Large filters: the FFT
    route".  The choice depends on the shapes, dtypes, mode, boundary and
    stride, never on ``workers``, so the result does not either.

    Parameters
    ----------
    in1, in2, mode, boundary, fillvalue, stride
        As for :func:`convolve2d`.
    convolve : bool, optional
        True (default) for :func:`convolve2d`, False for :func:`correlate2d`.
    measure : bool, optional
        If True, also run both routes once on these inputs and return their
        times: ``(fastest, {"direct": seconds, "fft": seconds})``.  Integer
        inputs have only the direct route.
    workers : int, optional
        Threads for the measured runs.

    Returns
    -------
    method : {"direct", "fft"}
        The route auto takes; with ``measure=True``, the faster measured route
        and the times.

    Examples
    --------
    >>> import numpy as np
    >>> from fastkern.convolve import choose_method
    >>> choose_method(np.ones((1000, 1000)), np.ones((5, 5)))
    'direct'
    >>> choose_method(np.ones((1000, 1000)), np.ones((101, 101)))
    'fft'
    """
    pb = _problem(in1, in2, mode, boundary, fillvalue, stride, convolve)
    method = "direct" if _route(pb, "auto") is None else "fft"
    if not measure:
        return method
    n_threads = resolve_workers(workers)
    fn = convolve2d if convolve else correlate2d
    methods = ("direct",) if pb.real_dtype == np.uint64 else ("direct", "fft")
    times = {}
    for m in methods:
        start = time.perf_counter()
        fn(in1, in2, mode, boundary, fillvalue, stride=stride, method=m, workers=n_threads)
        times[m] = time.perf_counter() - start
    return min(times, key=times.get), times
