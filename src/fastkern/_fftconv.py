"""The FFT route of convolve2d: the correlation of convolve.py's geometry, computed
by overlap-save over tiles, with the transforms of scipy.fft.

Everything arrives as convolve.py's normal form: ``out[a, b] = sum_{p, q}
kernel[p, q] * X[off0 + a*step0 + p, off1 + b*step1 + q]``, X the image extended
by the boundary rule.  A tile is a ``Lr x Lc`` window of X; its circular
convolution with the reversed kernel holds, from row ``P-1`` and column ``Q-1``
on, every output whose window lies inside the tile.  With a stride only the kept
outputs are written, so nothing of the unstrided result is held beyond a batch of
tiles.

The engine is scipy.fft (pocketfft): it is already a dependency, its transforms
release the GIL and run a batch of tiles on several threads, and it keeps float32
in float32.  The gather, the scatter and the transforms run without the GIL; the
GIL is taken between them, a few times per batch of tiles (Ctrl-C is handled
there).

With ``boundary="wrap"`` the extended image is periodic, so the whole output is a
periodic tiling of one circular correlation of the image's own size (with the
kernel folded onto it, if larger): that "periodic" plan is taken where it costs
less than tiles, which is where the kernel is large next to the image.

The plan (tile shape) depends on the shapes, the stride, the boundary and the
dtype only, never on ``workers``, so neither does the result.
"""
import math
from typing import NamedTuple

import numpy as np
import scipy.fft

from . import _convolve

# Spectra of one batch of tiles, at most (bytes): the memory the route needs
# beyond its output and its inputs.
BATCH_BYTES = 4 << 20


def _powers_of_two(limit):
    """Powers of two from 8 up to the first at or past `limit`."""
    out = [8]
    while out[-1] < limit:
        out.append(2 * out[-1])
    return np.array(out, dtype=np.int64)


def _fast_lengths(limit):
    """Lengths 2^a 3^b 5^c up to the first at or past `limit`, sorted."""
    out = []
    p2 = 1
    while p2 < 2 * limit:
        p3 = p2
        while p3 < 2 * limit:
            p5 = p3
            while p5 < 2 * limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    out.sort()
    end = next(i for i, n in enumerate(out) if n >= limit)
    return np.array(out[:end + 1], dtype=np.int64)


# fastkern's own transforms of real tiles: seconds x 1e9 per tile element, as
# _transform_ns, by log2 of the tile's elements; measured on the development
# machine (bench/README.md, "The FFT route's cost model").  A tile of 2**16
# elements (256 x 256) stays in the L2 cache; past 2**18 the cost grows fast.
_OWN_LOG2 = [12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0]
_OWN_NS = {True: [4.5, 5.0, 5.5, 6.8, 12.5, 18.6, 22.0],     # float32
           False: [7.4, 8.8, 10.7, 15.0, 30.0, 38.0, 45.0]}  # float64


def _own_ns(elements, single, complex_):
    return np.interp(np.log2(elements), _OWN_LOG2, _OWN_NS[bool(single)])


def _transform_ns(elements, single, complex_):
    """Seconds x 1e9 per element of a tile for one forward and one inverse 2-D
    transform, with the gather, product and scatter around them, on one thread.
    Measured on the development machine with scipy 1.17 (bench/README.md, "The
    FFT route's cost model"): about 18 ns (float64) and 8.5 ns (float32) while a
    tile fits in cache, rising to twice (float64) and 2.7 times (float32) that at
    2**22 elements.  A complex tile costs twice a real one."""
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
    """The cheapest FFT plan for an output of `out_shape` (strided): real tiles
    go through fastkern's own transforms (csrc/convolve/fk_fftconv.h), complex
    ones and the periodic plan through scipy.fft."""
    spans = [(n - 1) * s + k for n, s, k in zip(out_shape, steps, kernel_shape)]
    lengths = _fast_lengths if complex_ else _powers_of_two
    ns = _transform_ns if complex_ else _own_ns
    L0, per0, t0 = _axis_plans(out_shape[0], kernel_shape[0], steps[0], lengths(spans[0]))
    L1, per1, t1 = _axis_plans(out_shape[1], kernel_shape[1], steps[1], lengths(spans[1]))
    elements = np.multiply.outer(L0, L1).astype(np.float64)
    # the kernel's spectrum costs about half a tile's transforms
    cost = (np.multiply.outer(t0, t1) + 0.5) * elements * ns(elements, single, complex_)
    i, j = np.unravel_index(np.argmin(cost), cost.shape)
    best = Plan(False, not complex_, (int(L0[i]), int(L1[j])), (int(per0[i]), int(per1[j])),
                (int(t0[i]), int(t1[j])), float(cost[i, j]) * 1e-9)
    if boundary == 1:
        m, n = image_shape
        size = float(m * n)
        seconds = (1.5 * size * float(_transform_ns(size, single, complex_))
                   + 2.0 * out_shape[0] * out_shape[1]) * 1e-9
        if seconds < best.seconds:
            best = Plan(True, False, (m, n), tuple(out_shape), (1, 1), seconds)
    return best


def _spectrum(kernel, shape, real):
    """Transform of the reversed kernel, zero-padded to `shape`."""
    g = kernel[::-1, ::-1]
    return scipy.fft.rfft2(g, s=shape) if real else scipy.fft.fft2(g, s=shape)


def correlate(image, kernel, fill, off, steps, boundary, out, n_threads, p):
    """Write convolve.py's normal-form correlation into `out` (compute dtype,
    real or complex as the inputs) by the plan `p`."""
    real = out.dtype.kind == "f"
    if p.periodic:
        _periodic(image, kernel, off, steps, out, n_threads, real)
        return
    if p.own:
        dtype = out.dtype
        image = image.astype(dtype, copy=False)
        if not image.flags.aligned:
            image = image.copy()
        _convolve.fft_correlate(
            image, np.ascontiguousarray(kernel, dtype=dtype), out,
            dtype.type(fill.real), off[0], off[1], steps[0], steps[1], boundary,
            p.shape[0], p.shape[1], p.per_tile[0], p.per_tile[1], n_threads)
        return
    dtype = out.dtype
    image = image.astype(dtype, copy=False)
    fill = dtype.type(fill if not real else fill.real)
    (Lr, Lc), (nk, nm) = p.shape, p.per_tile
    P, Q = kernel.shape
    G = _spectrum(kernel.astype(dtype, copy=False), (Lr, Lc), real)
    # every tile's kept outputs start at (k0, m0), its window at X's
    # (off0 + k0*step0, off1 + m0*step1)
    k0 = np.arange(p.tiles[0], dtype=np.intp) * nk
    m0 = np.arange(p.tiles[1], dtype=np.intp) * nm
    k0, m0 = (a.ravel() for a in np.meshgrid(k0, m0, indexing="ij"))
    row0 = off[0] + k0 * steps[0]
    col0 = off[1] + m0 * steps[1]
    per_batch = max(1, BATCH_BYTES // (G.nbytes * (2 if real else 1)))
    for b in range(0, len(k0), per_batch):
        s = slice(b, b + per_batch)
        buf = np.empty((len(k0[s]), Lr, Lc), dtype=dtype)
        _convolve.gather_tiles(image, fill, boundary, row0[s], col0[s], buf, n_threads)
        if real:
            spec = scipy.fft.rfft2(buf, workers=n_threads, overwrite_x=True)
            del buf
            np.multiply(spec, G, out=spec)
            y = scipy.fft.irfft2(spec, s=(Lr, Lc), workers=n_threads, overwrite_x=True)
        else:
            spec = scipy.fft.fft2(buf, workers=n_threads, overwrite_x=True)
            np.multiply(spec, G, out=spec)
            y = scipy.fft.ifft2(spec, workers=n_threads, overwrite_x=True)
        del spec
        _convolve.scatter_tiles(y, out, k0[s], m0[s], nk, nm, steps[0], steps[1],
                                P - 1, Q - 1, n_threads)


def _periodic(image, kernel, off, steps, out, n_threads, real):
    """boundary="wrap": out[a, b] = C[(off0 + a*step0) % M, (off1 + b*step1) % N]
    with C the circular correlation of the image with the kernel folded onto its
    shape."""
    m, n = image.shape
    dtype = out.dtype
    folded = np.zeros((m, n), dtype=dtype)
    P, Q = kernel.shape
    for p0 in range(0, P, m):
        for q0 in range(0, Q, n):
            part = kernel[p0:p0 + m, q0:q0 + n]
            folded[:part.shape[0], :part.shape[1]] += part
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
