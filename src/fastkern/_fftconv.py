"""The FFT route of convolve2d: its plans and cost model, and the periodic plan.

Everything arrives as convolve.py's normal form: ``out[a, b] = sum_{p, q}
kernel[p, q] * X[off0 + a*step0 + p, off1 + b*step1 + q]``, X the image extended
by the boundary rule.  The route runs overlap-save: a tile is an ``Lr x Lc``
window of X, and its circular convolution with the reversed kernel holds, from
row ``P-1`` and column ``Q-1`` on, every output whose window lies inside the
tile.  With a stride only the kept outputs are written, so nothing of the
unstrided result is held.  The tiles' transforms are fastkern's own
(csrc/convolve/fk_fftconv.h, driven by _convolve.fft_correlate): power-of-two
tiles, every tile of a call in one nogil parallel loop, each thread with its own
workspace of a few tiles' size.

With ``boundary="wrap"`` the extended image is periodic, so the whole output is a
periodic tiling of one circular correlation of the image's own size (with the
kernel folded onto it, if larger): that "periodic" plan is taken where it costs
less than tiles, which is where the kernel is large next to the image.  Its
transforms, of any size, are scipy.fft's (pocketfft: BSD, already a dependency,
GIL-free, threaded by ``workers``).

A plan depends on the shapes, the stride, the boundary and the dtype only, never
on ``workers``, so neither does the result.
"""
import math
from typing import NamedTuple

import numpy as np
import scipy.fft

from . import _convolve

def _powers_of_two(limit):
    """Powers of two from 8 up to the first at or past `limit`."""
    out = [8]
    while out[-1] < limit:
        out.append(2 * out[-1])
    return np.array(out, dtype=np.int64)


# fastkern's own transforms of real tiles: seconds x 1e9 per tile element, as
# _transform_ns, by log2 of the tile's elements; measured on the development
# machine (bench/README.md, "The FFT route's cost model").  A tile of 2**16
# elements (256 x 256) stays in the L2 cache; past 2**18 the cost grows fast.
_OWN_LOG2 = [12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0]
_OWN_NS = {True: [4.5, 5.0, 5.5, 6.8, 12.5, 18.6, 22.0],     # float32
           False: [7.4, 8.8, 10.7, 15.0, 30.0, 38.0, 45.0]}  # float64


def _own_ns(elements, single, complex_):
    """Complex data cost twice: two real planes through the transforms."""
    ns = np.interp(np.log2(elements), _OWN_LOG2, _OWN_NS[bool(single)])
    return ns * (2.0 if complex_ else 1.0)


def _transform_ns(elements, single, complex_):
    """The periodic plan's cost: seconds x 1e9 per element for one forward and
    one inverse 2-D transform by scipy.fft, on one thread.  Measured on the
    development machine with scipy 1.17 (bench/README.md, "The FFT route's cost
    model"): about 18 ns (float64) and 8.5 ns (float32) while the array fits in
    cache, rising to twice (float64) and 2.7 times (float32) that at 2**22
    elements.  Complex data cost twice real data."""
    log_n = np.log2(elements)
    if single:
        ns = 8.5 * (1.0 + 1.7 * np.clip((log_n - 18.0) / 4.0, 0.0, 1.0))
    else:
        ns = 18.0 * (1.0 + 1.0 * np.clip((log_n - 17.0) / 5.0, 0.0, 1.0))
    return ns * (2.0 if complex_ else 1.0)


class Plan(NamedTuple):
    periodic: bool       # one circular correlation of the image's size, tiled out
    own: bool            # fastkern's transforms (real tiles of powers of two), else scipy.fft
    shape: tuple         # (Lr, Lc): the transform's shape
    per_tile: tuple      # kept outputs per tile along each axis
    tiles: tuple         # tiles along each axis
    seconds: float       # the cost model's estimate, one thread


def _axis_plans(n_out, k, step, lengths):
    """For each candidate tile length: kept outputs per tile and tiles needed."""
    L = lengths[lengths >= k]
    per = (L - k) // step + 1
    per = np.minimum(per, n_out)
    tiles = -(-n_out // per)
    return L, per, tiles


def plan(image_shape, kernel_shape, out_shape, steps, boundary, single, complex_):
    """The cheapest FFT plan for an output of `out_shape` (strided): tiles
    through fastkern's own transforms (csrc/convolve/fk_fftconv.h), or for
    boundary="wrap" the periodic plan through scipy.fft."""
    spans = [(n - 1) * s + k for n, s, k in zip(out_shape, steps, kernel_shape)]
    L0, per0, t0 = _axis_plans(out_shape[0], kernel_shape[0], steps[0],
                               _powers_of_two(spans[0]))
    L1, per1, t1 = _axis_plans(out_shape[1], kernel_shape[1], steps[1],
                               _powers_of_two(spans[1]))
    elements = np.multiply.outer(L0, L1).astype(np.float64)
    # the kernel's spectrum costs about half a tile's transforms
    tiles = np.multiply.outer(t0.astype(np.float64), t1.astype(np.float64))
    cost = (tiles + 0.5) * elements * _own_ns(elements, single, complex_)
    i, j = np.unravel_index(np.argmin(cost), cost.shape)
    best = Plan(False, True, (int(L0[i]), int(L1[j])), (int(per0[i]), int(per1[j])),
                (int(t0[i]), int(t1[j])), float(cost[i, j]) * 1e-9)
    if boundary == 1:
        m, n = image_shape
        size = float(m * n)
        seconds = (1.5 * size * float(_transform_ns(size, single, complex_))
                   + 2.0 * out_shape[0] * out_shape[1]) * 1e-9
        if seconds < best.seconds:
            best = Plan(True, False, (m, n), tuple(out_shape), (1, 1), seconds)
    return best


def periodic(image, kernel, off, steps, out, n_threads):
    """boundary="wrap": out[a, b] = C[(off0 + a*step0) % M, (off1 + b*step1) % N]
    with C the circular correlation of the image with the kernel folded onto its
    shape."""
    m, n = image.shape
    dtype = out.dtype
    real = dtype.kind == "f"
    # fold the kernel onto the image's shape: padded to whole periods, summed
    P, Q = kernel.shape
    fp, fq = -(-P // m), -(-Q // n)
    padded = np.zeros((fp * m, fq * n), dtype=dtype)
    padded[:P, :Q] = kernel
    folded = padded.reshape(fp, m, fq, n).sum(axis=(0, 2))
    del padded
    # circular convolution with h[i] = folded[-i mod M] is the correlation
    h = np.roll(folded[::-1, ::-1], (1, 1), axis=(0, 1))
    x = image.astype(dtype, copy=False)
    if real:
        spec = scipy.fft.rfft2(x, workers=n_threads)
        spec *= scipy.fft.rfft2(h, workers=n_threads)
        c = scipy.fft.irfft2(spec, s=(m, n), workers=n_threads, overwrite_x=True)
    else:
        spec = scipy.fft.fft2(x, workers=n_threads)
        spec *= scipy.fft.fft2(h, workers=n_threads)
        c = scipy.fft.ifft2(spec, workers=n_threads, overwrite_x=True)
    del spec
    rows = (off[0] + np.arange(out.shape[0], dtype=np.int64) * steps[0]) % m
    cols = (off[1] + np.arange(out.shape[1], dtype=np.int64) * steps[1]) % n
    out[...] = c[rows[:, None], cols]
