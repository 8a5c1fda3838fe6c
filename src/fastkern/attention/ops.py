"""sparse_attention and sparse_attention_backward: validation, layout and dispatch.

Arrays are checked and brought to the kernels' layout here, with the GIL held;
the kernels in ``fastkern._attention`` then run without it.  Dispatch is by the
kind of array: NumPy arrays (and anything ``numpy.asarray`` takes) run on the CPU
kernels; device arrays (``__cuda_array_interface__`` or a DLPack capsule on a
GPU) go to the CUDA kernels through ``_device``.
"""
import math

import numpy as np

from .. import _attention
from .._validation import as_array, check_real
from .._workers import resolve_workers
from . import _device
from .csr import SparseCSR, pattern_of

__all__ = ["sparse_attention", "sparse_attention_backward"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Multiply-adds a thread must have before another one is woken: below this,
# starting threads costs more than it saves (results never depend on it).
_MIN_WORK_PER_THREAD = 1 << 16


def _reject_device_array(x, name):
    """Raise for a GPU array: this build has CPU kernels only."""
    on_device = hasattr(x, "__cuda_array_interface__")
    if not on_device and hasattr(x, "__dlpack_device__") and not isinstance(x, np.ndarray):
        try:
            on_device = int(x.__dlpack_device__()[0]) != 1  # 1 is kDLCPU
        except Exception:
            on_device = False
    if on_device:
        raise TypeError(f"{name} is a GPU array but q, k and v are host arrays: pass them "
                        f"all on the host, or all on one GPU")


def _as_float_array(x, name):
    _reject_device_array(x, name)
    arr = as_array(x, name)
    if arr.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., length, dim), got shape {arr.shape}")
    return arr


def _check_inputs(q, k, v):
    q = _as_float_array(q, "q")
    k = _as_float_array(k, "k")
    v = _as_float_array(v, "v")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must have the same dtype, got {q.dtype}, {k.dtype} "
                        f"and {v.dtype}")
    if q.shape[:-2] != k.shape[:-2] or q.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"q, k and v must have the same leading (batch, head) axes, got "
                         f"shapes {q.shape}, {k.shape} and {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dimension, got shapes "
                         f"{q.shape} and {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length (axis -2), got shapes "
                         f"{k.shape} and {v.shape}")
    if q.shape[-1] == 0 or v.shape[-1] == 0:
        raise ValueError(f"q and v must have a last dimension of at least 1, got shapes "
                         f"{q.shape} and {v.shape}")
    return q, k, v


def _check_mask(mask, n, m):
    """mask as the Pattern (see _attention.Pattern) of an (n, m) SparseCSR."""
    if not isinstance(mask, SparseCSR):
        _reject_device_array(mask, "mask")
        arr = as_array(mask, "mask")
        if arr.dtype != np.bool_:
            raise TypeError(f"mask must be a SparseCSR or a boolean array, got "
                            f"{type(mask).__name__} of dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"mask must be 2-D, of shape (N, M), got shape {arr.shape}")
        if arr.shape != (n, m):
            raise ValueError(f"mask must have shape (N, M) = ({n}, {m}) for q of length {n} "
                             f"and k of length {m}, got {arr.shape}")
        mask = SparseCSR.from_dense(arr)
    pattern = pattern_of(mask)
    shape = (pattern.n_rows, pattern.n_cols)
    if shape != (n, m):
        raise ValueError(f"mask must have shape (N, M) = ({n}, {m}) for q of length {n} "
                         f"and k of length {m}, got {shape}")
    return pattern


def _check_scale(scale, d, dtype):
    if scale is None:
        return dtype.type(d ** -0.5)
    value = check_real(scale, "scale")
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite, got {scale!r}")
    with np.errstate(over="ignore"):
        cast = dtype.type(value)
    if not np.isfinite(cast):
        raise ValueError(f"scale must be finite in {dtype}, got {scale!r}")
    return cast


def _heads(x):
    """x as an aligned, C-contiguous (heads, length, dim) array (a view where
    possible): the kernels load whole elements and vectors of them."""
    heads = math.prod(x.shape[:-2])
    return np.require(x.reshape((heads,) + x.shape[-2:]), requirements=("C", "A"))


def _prepare(q, k, v, mask, scale, workers):
    q, k, v = _check_inputs(q, k, v)
    n, m = q.shape[-2], k.shape[-2]
    pattern = _check_mask(mask, n, m)
    scale = _check_scale(scale, q.shape[-1], q.dtype)
    # the kernels' units are (head, block of rows): at most a thread per row
    n_threads = resolve_workers(workers, units=math.prod(q.shape[:-2]) * max(n, m))
    return q, k, v, pattern, scale, n_threads


def _threads_for(n_threads, heads, pattern, d, dv):
    work = heads * pattern.nnz * (d + dv)
    return max(1, min(n_threads, work // _MIN_WORK_PER_THREAD))


def _forward(q3, k3, v3, pattern, scale, n_threads):
    h, n, _ = q3.shape
    shape = (h, n, v3.shape[-1])
    if not (h and n and pattern.nnz):
        return np.zeros(shape, dtype=q3.dtype), np.full((h, n), -np.inf, dtype=q3.dtype)
    # the kernel writes every row (row_order lists them all), empty rows included
    out = np.empty(shape, dtype=q3.dtype)
    lse = np.empty((h, n), dtype=q3.dtype)
    n_threads = _threads_for(n_threads, h, pattern, q3.shape[2], v3.shape[2])
    _attention.forward(q3, k3, v3, pattern, scale, out, lse, n_threads)
    return out, lse


def sparse_attention(q, k, v, mask, *, scale=None, workers=None, return_lse=False):
    """Scaled dot-product attention restricted to the positions a sparse mask allows.

    ``out[..., i, :] = sum_j softmax_j(scale * q_i . k_j) v_j`` with the softmax
    over the keys j that row i of ``mask`` allows.  A row with no allowed key
    gives zeros (never NaN); so does a row whose allowed keys all score -inf (a
    key scoring -inf weighs 0, as a masked one does), while a NaN score, or a
    +inf one (inf / inf), makes its row NaN.  The computation never forms an (N, M) or (nnz,)
    score matrix: each row is streamed once with an online softmax, in parallel
    over (batch x head, blocks of rows) without the GIL.

    Parameters
    ----------
    q : array_like, shape (..., N, D)
        Queries, float32 or float64 (on a GPU also float16 and bfloat16, see
        Notes).  Leading axes (batch, heads, ...) are independent problems
        sharing the mask.
    k : array_like, shape (..., M, D)
        Keys, same dtype and leading axes as ``q``.
    v : array_like, shape (..., M, Dv)
        Values, same dtype and leading axes as ``q``.
    mask : SparseCSR or array_like of bool, shape (N, M)
        True where query i may attend to key j.  Build a :class:`SparseCSR` once
        and reuse it: a dense mask is converted on every call (and refused,
        before any scan, where its N * M elements outnumber this machine's bytes
        of memory, as a broadcast view can).
    scale : float, optional
        Factor applied to ``q . k``; default ``D ** -0.5``.  Must be finite.
    workers : int, optional
        Threads to use; ``None`` uses the default (see :func:`fastkern.set_workers`),
        negative values count back from the number of CPUs.  The result does not
        depend on it.  The threads check for an interrupt between units of
        (head, block of rows), so that Ctrl-C raises KeyboardInterrupt.
    return_lse : bool, optional
        Also return the log-sum-exp of each row's scores, which
        :func:`sparse_attention_backward` can reuse.

    Returns
    -------
    out : ndarray, shape (..., N, Dv)
        Same dtype as ``q``.
    lse : ndarray, shape (..., N)
        Only with ``return_lse=True``: ``log sum_j exp(scale * q_i . k_j)`` over the
        allowed keys, ``-inf`` for a row with none.

    Raises
    ------
    TypeError
        For a dtype other than float32/float64, different dtypes among q, k, v,
        a mask that is neither a SparseCSR nor boolean, a non-real scale, or
        host and GPU arrays mixed.
    ValueError
        For shapes that do not match (leading axes, D between q and k, M between
        k and v, mask not (N, M)), a zero D or Dv, a non-finite scale (or one
        beyond the float range), ``workers=0`` or ``workers >= 2**31``, or a dense
        mask larger than memory.

    NotImplementedError
        For GPU arrays in a build without the CUDA kernels.

    See Also
    --------
    sparse_attention_backward, SparseCSR, fastkern.attention.torch.sparse_attention

    Notes
    -----
    GPU arrays (CuPy, Numba device arrays, PyTorch CUDA tensors: anything with
    ``__cuda_array_interface__`` or a DLPack capsule on a CUDA device) run on the
    CUDA kernels, on the arrays' device and the library's current stream, and
    give arrays of the same library.  There q, k, v may also be float16 or
    bfloat16, summed in float32; ``lse`` is float32 for those and float32 inputs,
    float64 for float64; head sizes D and Dv are at most 256; each array must
    start at a multiple of its element size (ValueError otherwise; host arrays
    are copied instead); ``workers`` is unused.  The mask stays on the host: a
    SparseCSR is copied to each device once and kept there for the life of the
    object.

    Examples
    --------
    >>> import numpy as np
    >>> from fastkern.attention import SparseCSR, local_1d_pattern, sparse_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.standard_normal((3, 2, 4, 6, 8))   # batch 2, 4 heads, 6 tokens
    >>> mask = SparseCSR.from_dense(local_1d_pattern(6, window_size=3))
    >>> sparse_attention(q, k, v, mask).shape
    (2, 4, 6, 8)
    """
    if _device.on_device(q, k, v):
        return _device.sparse_attention(q, k, v, mask, scale=scale, workers=workers,
                                        return_lse=return_lse)
    q, k, v, pattern, scale, n_threads = _prepare(q, k, v, mask, scale, workers)
    lead, n = q.shape[:-2], q.shape[-2]
    out, lse = _forward(_heads(q), _heads(k), _heads(v), pattern, scale, n_threads)
    out = out.reshape(lead + out.shape[1:])
    if return_lse:
        return out, lse.reshape(lead + (n,))
    return out


def sparse_attention_backward(q, k, v, mask, grad_out, *, scale=None, workers=None,
                              out=None, lse=None):
    """Gradients of :func:`sparse_attention` with respect to q, k and v.

    The probabilities are recomputed from each row's log-sum-exp (taken from
    ``lse``, or from a forward pass run here), never stored.  ``dq`` is computed
    row by row over the mask, ``dk`` and ``dv`` row by row over its transpose, so
    every gradient row is summed by one thread in one fixed order: the result is
    the same for every ``workers``.

    Parameters
    ----------
    q, k, v, mask, scale, workers
        As for :func:`sparse_attention`.
    grad_out : array_like, shape (..., N, Dv)
        Gradient of the loss with respect to the attention output; same dtype as q.
    out, lse : ndarray, optional
        The forward's output and log-sum-exp (``sparse_attention(...,
        return_lse=True)``) for these inputs; pass both to skip the forward pass.

    Returns
    -------
    dq : ndarray, shape (..., N, D)
    dk : ndarray, shape (..., M, D)
    dv : ndarray, shape (..., M, Dv)
        Same dtype as q.

    Raises
    ------
    TypeError, ValueError
        As for :func:`sparse_attention`, and for a ``grad_out`` (or ``out``,
        ``lse``) of the wrong shape or dtype, or only one of ``out`` and ``lse``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastkern.attention import causal_1d_pattern, sparse_attention_backward
    >>> rng = np.random.default_rng(0)
    >>> q, k, v, g = rng.standard_normal((4, 5, 8))
    >>> dq, dk, dv = sparse_attention_backward(q, k, v, causal_1d_pattern(5), g)
    >>> dq.shape, dk.shape, dv.shape
    ((5, 8), (5, 8), (5, 8))
    """
    if _device.on_device(q, k, v, grad_out, out, lse):
        return _device.sparse_attention_backward(q, k, v, mask, grad_out, scale=scale,
                                                 workers=workers, out=out, lse=lse)
    q, k, v, pattern, scale, n_threads = _prepare(q, k, v, mask, scale, workers)
    lead, n, m = q.shape[:-2], q.shape[-2], k.shape[-2]
    out_shape = lead + (n, v.shape[-1])
    grad_out = _as_float_array(grad_out, "grad_out")
    if grad_out.dtype != q.dtype:
        raise TypeError(f"grad_out must have q's dtype {q.dtype}, got {grad_out.dtype}")
    if grad_out.shape != out_shape:
        raise ValueError(f"grad_out must have the output's shape {out_shape}, got "
                         f"{grad_out.shape}")
    if (out is None) != (lse is None):
        raise ValueError("pass both out and lse from the forward pass, or neither")
    q3, k3, v3 = _heads(q), _heads(k), _heads(v)
    h = q3.shape[0]
    if out is None:
        out3, lse2 = _forward(q3, k3, v3, pattern, scale, n_threads)
    else:
        out = _as_float_array(out, "out")
        lse = as_array(lse, "lse")
        if out.dtype != q.dtype or lse.dtype != q.dtype:
            raise TypeError(f"out and lse must have q's dtype {q.dtype}, got {out.dtype} "
                            f"and {lse.dtype}")
        if out.shape != out_shape or lse.shape != lead + (n,):
            raise ValueError(f"out and lse must have shapes {out_shape} and {lead + (n,)}, "
                             f"got {out.shape} and {lse.shape}")
        out3 = _heads(out)
        lse2 = np.require(lse.reshape(h, n), requirements=("C", "A"))
    if not (h and n and m and pattern.nnz):
        return np.zeros(q.shape, q.dtype), np.zeros(k.shape, q.dtype), np.zeros(v.shape, q.dtype)
    # the kernels write every row of dq (row_order) and of dk, dv (the transpose's)
    dq = np.empty_like(q3)
    dk = np.empty_like(k3)
    dv = np.empty_like(v3)
    n_threads = _threads_for(n_threads, h, pattern, q3.shape[2], v3.shape[2])
    delta = np.empty((h, n), dtype=q.dtype)
    _attention.backward(q3, k3, v3, out3, _heads(grad_out), lse2, pattern, scale,
                        dq, dk, dv, delta, n_threads)
    return (dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape))
