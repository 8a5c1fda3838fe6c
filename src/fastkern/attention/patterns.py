"""Attention masks as dense NumPy arrays of shape (N, N): the pattern builders
xformers users know, with the same names and meanings.

Tokens of an H x W grid are numbered row by row: token ``t`` sits at
``(t // W, t % W)``.  Entry ``[a, b]`` of a mask is True where query ``a`` may
attend to key ``b``.  Build a mask once, then turn it into a
:class:`~fastkern.attention.SparseCSR` for :func:`~fastkern.attention.sparse_attention`.

Builders work on blocks of rows, so their temporaries stay small beside the
(N, N) result.
"""
import math

import numpy as np

from .._seeding import root_seed
from .._validation import INDEX_MAX, as_array, check_int, check_real

__all__ = [
    "axial_2d_pattern",
    "causal_1d_pattern",
    "dilated_2d_pattern",
    "global_token_pattern",
    "local_1d_pattern",
    "local_2d_distance",
    "local_2d_gaussian_distribution",
    "local_2d_gausian_distribution",
    "local_2d_pattern",
    "random_pattern",
    "random_pattern_from_probability_matrix",
    "swin_attention_pattern",
]

# Query rows per block when a builder computes an (N, N) result.
_BLOCK_ELEMENTS = 1 << 21


def _count(value, name, minimum=1):
    return check_int(value, name, minimum)


def _real(value, name):
    value = check_real(value, name)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _square(n, dtype, names):
    """An empty (n, n) result; MemoryError naming the arguments where no array
    can hold it (NumPy's own error would name none)."""
    if n * n * np.dtype(dtype).itemsize > INDEX_MAX:
        raise MemoryError(f"the ({n}, {n}) result cannot be allocated: {names} too large")
    return np.empty((n, n), dtype=dtype)


def _grid(H, W):
    H = _count(H, "H")
    W = _count(W, "W")
    if (H * W) ** 2 > INDEX_MAX:
        raise MemoryError(f"the ({H * W}, {H * W}) result cannot be allocated: "
                          f"H={H} by W={W} too large")
    t = np.arange(H * W)
    return t // W, t % W


def _row_blocks(n_rows, row_length=None):
    """Slices of [0, n_rows) holding about _BLOCK_ELEMENTS elements each."""
    row_length = n_rows if row_length is None else row_length
    step = max(1, _BLOCK_ELEMENTS // max(row_length, 1))
    for a in range(0, n_rows, step):
        yield slice(a, min(n_rows, a + step))


def _minkowski(di, dj, p):
    """Minkowski p-distance of integer offsets, as ``torch.cdist`` defines it
    (p = 0 counts the differing coordinates, p = inf takes the largest).

    The general case is computed as ``top * (1 + (low / top)**p)**(1/p)`` with
    ``top, low = max(di, dj), min(di, dj)``: the power lies in [0, 1], so a large
    p cannot overflow it (``2.0**2000`` is inf), and a tiny one cannot turn an
    offset along one axis into 1 (``(3**p)**(1/p)`` is 1 for p = 1e-300)."""
    di = np.abs(di)
    dj = np.abs(dj)
    if p == 0:
        return (di != 0).astype(np.float64) + (dj != 0)
    if p == math.inf:
        return np.maximum(di, dj).astype(np.float64)
    if p == 1:
        return (di + dj).astype(np.float64)
    if p == 2:
        return np.sqrt((di * di + dj * dj).astype(np.float64))
    top = np.maximum(di, dj).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.minimum(di, dj) / top  # NaN where top is 0: the distance is 0 there
        d = top * (1 + ratio ** p) ** (1.0 / p)
    return np.where(top == 0, 0.0, d)


def local_2d_distance(H, W, p=2.0):
    """Distances between the tokens of an H x W grid.

    Parameters
    ----------
    H, W : int
        Grid height and width; N = H * W tokens, numbered row by row.
    p : float, optional
        Minkowski exponent, p >= 0 (``2`` Euclidean, ``1`` Manhattan, ``inf``
        Chebyshev, ``0`` the number of differing coordinates).

    Returns
    -------
    d : ndarray of float64, shape (N, N)
        ``d[a, b]`` is the p-distance between the grid positions of tokens a and b.
    """
    i, j = _grid(H, W)
    p = _real(p, "p")
    if p < 0:
        raise ValueError(f"p must be non-negative, got {p}")
    n = i.size
    d = _square(n, np.float64, "n")
    for rows in _row_blocks(n):
        d[rows] = _minkowski(i[rows, None] - i[None, :], j[rows, None] - j[None, :], p)
    return d


def local_2d_pattern(H, W, distance, p=2.0):
    """Each token attends to the tokens within ``distance`` of it on an H x W grid.

    Parameters
    ----------
    H, W : int
        Grid height and width; N = H * W tokens, numbered row by row.
    distance : float
        Strict bound: key b is allowed for query a where ``d_p(a, b) < distance``.
    p : float, optional
        Minkowski exponent of the distance (default 2, Euclidean); see
        :func:`local_2d_distance`.

    Returns
    -------
    mask : ndarray of bool, shape (N, N)

    Examples
    --------
    >>> from fastkern.attention import local_2d_pattern
    >>> local_2d_pattern(3, 3, distance=2).sum(axis=1)   # 3x3 neighbourhoods
    array([4, 6, 4, 6, 9, 6, 4, 6, 4])
    """
    i, j = _grid(H, W)
    distance = _real(distance, "distance")
    p = _real(p, "p")
    if p < 0:
        raise ValueError(f"p must be non-negative, got {p}")
    n = i.size
    mask = _square(n, bool, "n")
    for rows in _row_blocks(n):
        mask[rows] = _minkowski(i[rows, None] - i[None, :], j[rows, None] - j[None, :],
                                p) < distance
    return mask


def axial_2d_pattern(H, W):
    """Each token attends to its own row and its own column of an H x W grid.

    Returns
    -------
    mask : ndarray of bool, shape (H*W, H*W)
        ``mask[a, b]`` is True where tokens a and b share a grid row or column.
    """
    i, j = _grid(H, W)
    n = i.size
    mask = _square(n, bool, "n")
    for rows in _row_blocks(n):
        mask[rows] = (i[rows, None] == i[None, :]) | (j[rows, None] == j[None, :])
    return mask


def dilated_2d_pattern(H, W, k=2):
    """Each token attends to every k-th token of an H x W grid, counted from itself
    along both axes: a downsampled view of the grid.

    Returns
    -------
    mask : ndarray of bool, shape (H*W, H*W)
        True where both grid offsets between the tokens are multiples of k.
    """
    i, j = _grid(H, W)
    k = _count(k, "k")
    n = i.size
    mask = _square(n, bool, "n")
    for rows in _row_blocks(n):
        mask[rows] = (((i[rows, None] - i[None, :]) % k == 0)
                      & ((j[rows, None] - j[None, :]) % k == 0))
    return mask


def swin_attention_pattern(H, W, window_size, shift_size=0):
    """Swin Transformer windows: tokens attend within their window of an H x W grid.

    The grid is cut into ``window_size`` x ``window_size`` windows, shifted by
    ``shift_size`` towards the top left; the cut-off windows at the edges are
    windows of their own (what Swin's cyclic shift with masking computes).

    Parameters
    ----------
    H, W : int
        Grid height and width, both multiples of ``window_size``.
    window_size : int
        Window side.
    shift_size : int, optional
        Window shift, ``0 <= shift_size < window_size``.

    Returns
    -------
    mask : ndarray of bool, shape (H*W, H*W)
        True where two tokens share a window.
    """
    i, j = _grid(H, W)
    window_size = _count(window_size, "window_size")
    shift_size = _count(shift_size, "shift_size", minimum=0)
    if H % window_size or W % window_size:
        raise ValueError(f"H and W must be multiples of window_size; got H={H}, W={W}, "
                         f"window_size={window_size}")
    if shift_size >= window_size:
        raise ValueError(f"shift_size must be less than window_size, got "
                         f"shift_size={shift_size}, window_size={window_size}")
    s = (-shift_size) % window_size
    n_cols = W // window_size + 1
    window = ((i + s) // window_size) * n_cols + (j + s) // window_size
    n = i.size
    mask = _square(n, bool, "n")
    for rows in _row_blocks(n):
        mask[rows] = window[rows, None] == window[None, :]
    return mask


def local_2d_gaussian_distribution(H, W, sigma=1, dtype=np.float64):
    """Gaussian weights of the Euclidean distance between tokens of an H x W grid:
    ``exp(-d**2 / (2 sigma**2))``.  Feed it to
    :func:`random_pattern_from_probability_matrix` for a random mask that favours
    near tokens.

    Parameters
    ----------
    H, W : int
        Grid height and width; N = H * W tokens.
    sigma : float, optional
        Width of the Gaussian, > 0.
    dtype : {numpy.float64, numpy.float32}, optional
        The result's dtype; float32 halves its memory.

    Returns
    -------
    weights : ndarray, shape (N, N)
        1 on the diagonal, decreasing with distance.
    """
    i, j = _grid(H, W)
    sigma = _real(sigma, "sigma")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be positive and finite, got {sigma}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    n = i.size
    out = _square(n, dtype, "n")
    for rows in _row_blocks(n):
        di = i[rows, None] - i[None, :]
        dj = j[rows, None] - j[None, :]
        # d**2 / sigma / sigma: sigma**2 would under- or overflow (1e-200, 1e200)
        # where the weights are plainly 0 off the diagonal, or 1 everywhere
        with np.errstate(over="ignore"):
            out[rows] = np.exp(-0.5 * ((di * di + dj * dj) / sigma / sigma))
    return out


#: The name xformers gave :func:`local_2d_gaussian_distribution` (misspelt there).
local_2d_gausian_distribution = local_2d_gaussian_distribution


def local_1d_pattern(n, window_size):
    """Each position attends to the ``window_size`` positions centred on it.

    Parameters
    ----------
    n : int
        Sequence length.
    window_size : int
        Odd window length: the position itself and ``window_size // 2`` on each side.

    Returns
    -------
    mask : ndarray of bool, shape (n, n)
        True where ``|a - b| <= window_size // 2``.
    """
    n = _count(n, "n")
    window_size = _count(window_size, "window_size")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd (the position itself and two equal "
                         f"wings), got {window_size}")
    mask = _square(n, bool, "n")
    t = np.arange(n)
    half = window_size // 2
    for rows in _row_blocks(n):
        mask[rows] = np.abs(t[rows, None] - t[None, :]) <= half
    return mask


def causal_1d_pattern(n):
    """Each position attends to itself and the positions before it.

    Returns
    -------
    mask : ndarray of bool, shape (n, n)
        Lower triangular, diagonal included.
    """
    n = _count(n, "n")
    mask = _square(n, bool, "n")  # first: an impossible n fails here, at once
    t = np.arange(n)
    for rows in _row_blocks(n):
        mask[rows] = t[rows, None] >= t[None, :]
    return mask


def _generator(seed):
    """A Generator is drawn from as it is; anything else seeds a new one, as
    numpy.random.default_rng(seed) would, with errors that name seed."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(root_seed(seed))


def random_pattern(n, sparsity, seed=None):
    """Each query-key pair is allowed independently with probability ``1 - sparsity``.

    Parameters
    ----------
    n : int
        Number of tokens.
    sparsity : float
        Expected fraction of disallowed pairs, ``0 <= sparsity <= 1``.
    seed : None, int, SeedSequence or Generator, optional
        Random source (``numpy.random.default_rng(seed)``).

    Returns
    -------
    mask : ndarray of bool, shape (n, n)
    """
    n = _count(n, "n")
    sparsity = _real(sparsity, "sparsity")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    rng = _generator(seed)
    mask = _square(n, bool, "n")
    for rows in _row_blocks(n):
        mask[rows] = rng.random((rows.stop - rows.start, n)) >= sparsity
    return mask


def random_pattern_from_probability_matrix(dist, nnz, seed=None):
    """Exactly ``nnz`` allowed positions, drawn without replacement with
    probabilities proportional to the weights ``dist``.

    The draw is that of ``numpy.random.Generator.choice(dist.size, nnz, p=dist/sum,
    replace=False)`` (successive sampling), done in one pass over ``dist`` by the
    exponential-keys method: each position gets the key ``E / w`` with ``E``
    standard exponential, and the ``nnz`` smallest keys win.  Memory beyond the
    result is O(nnz + one block of rows).

    Parameters
    ----------
    dist : array_like, shape (N, M)
        Non-negative, finite weights; they need not sum to 1.  Positions of weight
        0 are never drawn.
    nnz : int
        Number of positions to allow, at most the number of positive weights.
    seed : None, int, SeedSequence or Generator, optional
        Random source (``numpy.random.default_rng(seed)``).

    Returns
    -------
    mask : ndarray of bool, shape (N, M)
        With exactly ``nnz`` True entries.

    Examples
    --------
    >>> from fastkern.attention import (local_2d_gaussian_distribution,
    ...                                 random_pattern_from_probability_matrix)
    >>> w = local_2d_gaussian_distribution(8, 8, sigma=2)
    >>> int(random_pattern_from_probability_matrix(w, 400, seed=0).sum())
    400
    """
    dist = as_array(dist, "dist")
    if dist.ndim != 2:
        raise ValueError(f"dist must be a 2-D array, got shape {dist.shape}")
    if dist.dtype.kind not in "iuf":
        raise TypeError(f"dist must hold real numbers, got dtype {dist.dtype}")
    nnz = _count(nnz, "nnz", minimum=0)
    rng = _generator(seed)
    n, m = dist.shape
    best_keys = np.empty(0)
    best_pos = np.empty(0, dtype=np.int64)
    positive = 0
    for rows in _row_blocks(n, m):
        w = dist[rows].astype(np.float64, copy=False).ravel()
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("dist must be finite and non-negative")
        e = rng.standard_exponential(w.size)
        pos = np.flatnonzero(w > 0)
        positive += pos.size
        keys = e[pos] / w[pos]
        if best_keys.size == nnz:
            # a candidate must beat the largest key kept so far
            keep = keys < (best_keys.max() if nnz else -np.inf)
            keys, pos = keys[keep], pos[keep]
        keys = np.concatenate([best_keys, keys])
        pos = np.concatenate([best_pos, pos + rows.start * m])
        if keys.size > nnz:
            top = np.argpartition(keys, nnz)[:nnz]
            keys, pos = keys[top], pos[top]
        best_keys, best_pos = keys, pos
    if nnz > positive:
        raise ValueError(f"nnz must be at most the number of positive weights in dist, "
                         f"{positive}; got {nnz}")
    mask = np.zeros((n, m), dtype=bool)
    mask.ravel()[best_pos] = True
    return mask


def global_token_pattern(attention_query_mask):
    """Global tokens: they attend to every token, and every token attends to them.

    Parameters
    ----------
    attention_query_mask : array_like of bool, shape (N,)
        True for the global tokens (e.g. a class token).

    Returns
    -------
    mask : ndarray of bool, shape (N, N)
        ``mask[a, b] = g[a] or g[b]``.  Combine it with another pattern with ``|``.
    """
    g = as_array(attention_query_mask, "attention_query_mask")
    if g.ndim != 1:
        raise ValueError(f"attention_query_mask must be 1-D, got shape {g.shape}")
    if g.dtype != np.bool_:
        raise TypeError(f"attention_query_mask must be boolean, got dtype {g.dtype}")
    return g[:, None] | g[None, :]
