"""``python -m fastkern`` rows for sparse attention."""
import numpy as np

from .._report import Row, best_time
from .._workers import get_workers
from ..attention import (SparseCSR, axial_2d_pattern, local_2d_pattern, sparse_attention,
                        sparse_attention_backward)


def _dense_forward(q, k, v, dense, scale):
    """Masked attention the NumPy way (the full score matrix, masked, softmaxed):
    (probabilities, output)."""
    s = (q @ np.swapaxes(k, -1, -2)) * scale
    s = np.where(dense, s, np.float32(-np.inf))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s, s @ v


def _dense_backward(q, k, v, dense, g, scale):
    p, _ = _dense_forward(q, k, v, dense, scale)
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return (ds @ k) * scale, (np.swapaxes(ds, -1, -2) @ q) * scale, dv


def workload(quick=False):
    grid = 24 if quick else 48
    heads, dim = 4, 32
    n = grid * grid
    dense = axial_2d_pattern(grid, grid) | local_2d_pattern(grid, grid, distance=2)
    mask = SparseCSR.from_dense(dense)
    mask.transpose()
    rng = np.random.default_rng(0)
    q, k, v, g = rng.standard_normal((4, 1, heads, n, dim)).astype(np.float32)
    scale = np.float32(dim ** -0.5)
    repeat = 3 if quick else 5
    what = f"{grid}x{grid} grid, axial+local, {heads}x{dim}, f32"

    def fk_step(workers):
        o, lse = sparse_attention(q, k, v, mask, workers=workers, return_lse=True)
        return sparse_attention_backward(q, k, v, mask, g, workers=workers, out=o, lse=lse)

    def ref_step():
        _dense_forward(q, k, v, dense, scale)
        return _dense_backward(q, k, v, dense, g, scale)

    # fastkern first, the references after: the BLAS threads of the references'
    # matmuls keep spinning for a while after them, and on a machine with as many
    # threads as cores a short parallel call would wait for one of them
    t_fwd_one, _ = best_time(lambda: sparse_attention(q, k, v, mask, workers=1), repeat)
    t_fwd_all, out_fwd = best_time(
        lambda: sparse_attention(q, k, v, mask, workers=get_workers()), repeat)
    t_step_one, _ = best_time(lambda: fk_step(1), repeat)
    t_step_all, out_step = best_time(lambda: fk_step(get_workers()), repeat)
    t_fwd_ref, (_, ref_fwd) = best_time(lambda: _dense_forward(q, k, v, dense, scale), 2)
    t_step_ref, ref_step_out = best_time(ref_step, 1)

    rows = [
        Row("sparse_attn", f"forward, {what}", "dense masked softmax, NumPy",
            t_fwd_ref, t_fwd_one, t_fwd_all, float(np.max(np.abs(out_fwd - ref_fwd))), "abs"),
        Row("sparse_attn", f"fwd+bwd, {what}", "dense fwd+bwd, NumPy",
            t_step_ref, t_step_one, t_step_all,
            max(float(np.max(np.abs(a - b))) for a, b in zip(out_step, ref_step_out)), "abs"),
    ]
    return rows
