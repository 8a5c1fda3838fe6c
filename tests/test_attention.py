"""fastkern.attention: the op against a dense NumPy reference, finite differences,
the pattern builders against their definitions, SparseCSR, determinism across
workers, the GIL, and bad input."""
import math
import os
import pickle
import subprocess
import sys
import textwrap
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastkern.attention import (
    SparseCSR,
    axial_2d_pattern,
    causal_1d_pattern,
    dilated_2d_pattern,
    global_token_pattern,
    local_1d_pattern,
    local_2d_distance,
    local_2d_gaussian_distribution,
    local_2d_gausian_distribution,
    local_2d_pattern,
    random_pattern,
    random_pattern_from_probability_matrix,
    sparse_attention,
    sparse_attention_backward,
    swin_attention_pattern,
)
from fastkern.attention import csr as csr_module

from attention_problems import nonfinite_problem, random_problem


# ---------------------------------------------------------------- reference

def dense_reference(q, k, v, mask, grad_out=None, scale=None):
    """Masked softmax attention and its gradients with dense (..., N, M) matrices,
    in float64.  Rows with no allowed key give zeros."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = scale * (q @ np.swapaxes(k, -1, -2))
    s = np.where(mask, s, -np.inf)
    row_max = s.max(axis=-1, keepdims=True) if s.shape[-1] else np.zeros(s.shape[:-1] + (1,))
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    e = np.where(mask, np.exp(s - row_max), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    p = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    out = p @ v
    with np.errstate(divide="ignore"):
        lse = np.where(total[..., 0] > 0, np.log(total[..., 0]) + row_max[..., 0], -np.inf)
    if grad_out is None:
        return out, lse
    g = np.asarray(grad_out, dtype=np.float64)
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = scale * (ds @ k)
    dk = scale * (np.swapaxes(ds, -1, -2) @ q)
    return out, lse, dq, dk, dv


# ---------------------------------------------------------------- the op

@pytest.mark.parametrize("lead, n, m, d, dv, density", [
    ((), 40, 40, 8, 8, 0.2),
    ((3,), 33, 21, 5, 7, 0.3),         # rectangular mask, Dv != D
    ((2, 3), 17, 50, 16, 4, 0.05),
    ((2,), 70, 9, 3, 3, 0.9),
    ((1,), 130, 130, 32, 32, 0.5),     # rows longer than the kernel's 64-score chunk
])
@pytest.mark.parametrize("index", ["int32", "int64"])
def test_matches_dense_reference_float64(lead, n, m, d, dv, density, index, request):
    if index == "int64":
        request.getfixturevalue("int64_indices")
    rng = np.random.default_rng(n * m + d)
    q, k, v, g, mask = random_problem(rng, lead, n, m, d, dv, density, empty_rows=(0, n // 2))
    csr = SparseCSR.from_dense(mask)
    assert csr.index_dtype == np.dtype(index)
    out, lse = sparse_attention(q, k, v, csr, return_lse=True)
    ref_out, ref_lse, ref_dq, ref_dk, ref_dv = dense_reference(q, k, v, mask, g)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lse, ref_lse, rtol=0, atol=1e-10)
    assert np.all(out[..., 0, :] == 0) and np.all(lse[..., 0] == -np.inf)
    dq, dk, dv_ = sparse_attention_backward(q, k, v, csr, g)
    np.testing.assert_allclose(dq, ref_dq, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dk, ref_dk, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dv_, ref_dv, rtol=0, atol=1e-10)
    for got, x in ((out, g), (dq, q), (dk, k), (dv_, v)):
        assert got.dtype == np.float64 and got.shape == x.shape


@pytest.mark.parametrize("dim", [12, 16, 32, 64, 24])
@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-10), (np.float32, 3e-5)])
def test_common_head_sizes(dim, dtype, atol):
    # the core compiles these head sizes (d == dv) as constants: each path is checked
    rng = np.random.default_rng(dim)
    q, k, v, g, mask = random_problem(rng, (2,), 90, 70, dim, dim, 0.3, dtype, empty_rows=(3,))
    ref = dense_reference(q, k, v, mask, g)
    np.testing.assert_allclose(sparse_attention(q, k, v, mask), ref[0], rtol=0, atol=atol)
    for got, want in zip(sparse_attention_backward(q, k, v, mask, g), ref[2:]):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_float32_matches_reference():
    rng = np.random.default_rng(1)
    q, k, v, g, mask = random_problem(rng, (2, 4), 64, 48, 32, 16, 0.2, np.float32,
                                      empty_rows=(5,))
    out = sparse_attention(q, k, v, mask)
    grads = sparse_attention_backward(q, k, v, mask, g)
    ref = dense_reference(q, k, v, mask, g)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=2e-6)
    for got, want in zip(grads, ref[2:]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_large_scores_do_not_overflow():
    # softmax must be shift-invariant: scores of 1e3 would overflow a naive exp
    rng = np.random.default_rng(2)
    q, k, v, g, mask = random_problem(rng, (2,), 80, 80, 4, 4, 0.6)
    out = sparse_attention(q, k, v, mask, scale=300.0)
    ref = dense_reference(q, k, v, mask, g, scale=300.0)
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=1e-10)
    for got, want in zip(sparse_attention_backward(q, k, v, mask, g, scale=300.0), ref[2:]):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


def loop_reference(q, k, v, mask, grad_out, scale):
    """Attention and its gradients row by row over the allowed keys only, in plain
    NumPy (one head).  A key whose score is -inf weighs 0; a row whose keys all
    score -inf gives zeros, as a row with no key does; NaN propagates.  Gradients
    are the sums of the usual terms over the allowed pairs."""
    n, m = mask.shape
    out, lse = np.zeros((n, v.shape[1])), np.full(n, -np.inf)
    dq, dk, dv = np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
    with np.errstate(all="ignore"):
        for i in range(n):
            keys = np.flatnonzero(mask[i])
            s = scale * (k[keys] @ q[i])
            top = s.max() if keys.size else -np.inf
            w = np.where(s == -np.inf, 0.0, np.exp(s - top))
            total = w.sum()
            if total == 0:  # out and lse stay 0 and -inf, p 0 (0 * inf is still NaN)
                p = np.zeros_like(w)
            else:
                p = w / total
                out[i], lse[i] = p @ v[keys], top + np.log(total)
            ds = p * (v[keys] @ grad_out[i] - grad_out[i] @ out[i])
            dq[i] = scale * (ds @ k[keys])
            dk[keys] += scale * ds[:, None] * q[i]
            dv[keys] += p[:, None] * grad_out[i]
    return out, lse, dq, dk, dv


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_scores_match_a_plain_reference(dtype):
    # inf and NaN in q and k give scores of +-inf and NaN; rows are longer than one
    # chunk of the kernel, and some start with a chunk of -inf scores only
    q, k, v, g, mask = nonfinite_problem(dtype)
    scale = 0.5
    want = loop_reference(*(x.astype(np.float64) for x in (q, k, v)), mask,
                          g.astype(np.float64), scale)
    assert np.isnan(want[0][1]).all() and np.all(want[0][4] == 0)
    assert np.all(np.isfinite(want[0][5]))
    out, lse = sparse_attention(q, k, v, mask, scale=scale, return_lse=True)
    grads = sparse_attention_backward(q, k, v, mask, g, scale=scale)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for got, ref in zip((out, lse) + grads, want):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


def _misaligned(x):
    """A copy of x whose data starts one byte past an aligned address."""
    buf = np.empty(x.nbytes + x.itemsize, np.uint8)
    y = np.frombuffer(buf, x.dtype, count=x.size, offset=1).reshape(x.shape)
    y.flags.writeable = True
    y[...] = x
    assert not y.flags.aligned
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_inputs(dtype, monkeypatch):
    # the kernels load whole vectors of the element type: they are only ever
    # handed aligned arrays, and the results are those of aligned inputs
    from fastkern import _attention
    rng = np.random.default_rng(19)
    q, k, v, g, mask = random_problem(rng, (2,), 40, 30, 16, 16, 0.4, dtype)
    out, lse = sparse_attention(q, k, v, mask, return_lse=True)
    grads = sparse_attention_backward(q, k, v, mask, g)
    for name in ("forward", "backward"):
        kernel = getattr(_attention, name)

        def spy(*args, kernel=kernel):
            assert all(a.flags.aligned for a in args if isinstance(a, np.ndarray))
            return kernel(*args)

        monkeypatch.setattr(_attention, name, spy)
    mq, mk, mv, mg, mo, ml = map(_misaligned, (q, k, v, g, out, lse))
    np.testing.assert_array_equal(sparse_attention(mq, mk, mv, mask), out)
    for got, want in zip(sparse_attention_backward(mq, mk, mv, mask, mg), grads):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(sparse_attention_backward(mq, mk, mv, mask, mg, out=mo, lse=ml),
                         grads):
        np.testing.assert_array_equal(got, want)


def test_scale_default_and_explicit():
    rng = np.random.default_rng(3)
    q, k, v, _, mask = random_problem(rng, (), 20, 20, 9, 9, 0.5)
    np.testing.assert_array_equal(sparse_attention(q, k, v, mask),
                                  sparse_attention(q, k, v, mask, scale=9 ** -0.5))
    np.testing.assert_allclose(sparse_attention(q, k, v, mask, scale=0.0),
                               dense_reference(q, k, v, mask, scale=0.0)[0], atol=1e-12)
    np.testing.assert_allclose(sparse_attention(q, k, v, mask, scale=-2),
                               dense_reference(q, k, v, mask, scale=-2.0)[0], atol=1e-12)


def test_dense_mask_and_csr_agree_and_full_mask_is_softmax():
    rng = np.random.default_rng(4)
    q, k, v, _, _ = random_problem(rng, (3,), 12, 10, 4, 4, 1.0)
    full = np.ones((12, 10), dtype=bool)
    s = q @ np.swapaxes(k, -1, -2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    want = (p / p.sum(-1, keepdims=True)) @ v
    np.testing.assert_allclose(sparse_attention(q, k, v, full), want, atol=1e-12)
    np.testing.assert_array_equal(sparse_attention(q, k, v, full),
                                  sparse_attention(q, k, v, SparseCSR.from_dense(full)))


@pytest.mark.parametrize("lead, n, m", [((0,), 5, 5), ((2,), 0, 5), ((2,), 5, 0)])
def test_empty_shapes(lead, n, m):
    q = np.ones(lead + (n, 3))
    k = np.ones(lead + (m, 3))
    v = np.ones(lead + (m, 2))
    mask = np.ones((n, m), dtype=bool)
    out, lse = sparse_attention(q, k, v, mask, return_lse=True)
    assert out.shape == lead + (n, 2) and not np.any(out)
    assert lse.shape == lead + (n,) and np.all(lse == -np.inf)
    dq, dk, dv = sparse_attention_backward(q, k, v, mask, np.ones(lead + (n, 2)))
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    assert not (np.any(dq) or np.any(dk) or np.any(dv))


def test_mask_without_nonzeros_gives_zeros():
    rng = np.random.default_rng(5)
    q, k, v, g, _ = random_problem(rng, (2,), 6, 7, 3, 3, 0)
    mask = np.zeros((6, 7), dtype=bool)
    assert not np.any(sparse_attention(q, k, v, mask))
    assert not any(np.any(x) for x in sparse_attention_backward(q, k, v, mask, g))


def test_backward_reuses_forward_outputs():
    rng = np.random.default_rng(6)
    q, k, v, g, mask = random_problem(rng, (2, 2), 30, 25, 6, 5, 0.3, empty_rows=(1,))
    out, lse = sparse_attention(q, k, v, mask, return_lse=True)
    a = sparse_attention_backward(q, k, v, mask, g)
    b = sparse_attention_backward(q, k, v, mask, g, out=out, lse=lse)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(7)
    qkv = rng.standard_normal((2, 24, 3, 4, 8))         # (B, N, 3, heads, dim), timm layout
    q, k, v = np.moveaxis(qkv, 2, 0).transpose(0, 1, 3, 2, 4)  # each (B, heads, N, dim)
    mask = rng.random((24, 24)) < 0.4
    g = rng.standard_normal((2, 24, 4, 8)).transpose(0, 2, 1, 3)   # (B, heads, N, dim) view
    assert not (q.flags.c_contiguous or g.flags.c_contiguous)
    ref = dense_reference(q, k, v, mask, g)
    np.testing.assert_allclose(sparse_attention(q, k, v, mask), ref[0], atol=1e-10)
    for got, want in zip(sparse_attention_backward(q, k, v, mask, g), ref[2:]):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(8)
    q, k, v, g, mask = random_problem(rng, (2,), 6, 5, 3, 2, 0.5, empty_rows=(2,))
    mask[0, 0] = True
    dq, dk, dv = sparse_attention_backward(q, k, v, mask, g)

    def loss(q_, k_, v_):
        return float(np.sum(sparse_attention(q_, k_, v_, mask) * g))

    eps = 1e-6
    for x, grad, idx in ((q, dq, 0), (k, dk, 1), (v, dv, 2)):
        numeric = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            args = [q.copy(), k.copy(), v.copy()]
            args[idx][pos] += eps
            up = loss(*args)
            args[idx][pos] -= 2 * eps
            numeric[pos] = (up - loss(*args)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    n=st.integers(0, 12), m=st.integers(0, 12),
    d=st.integers(1, 6), dv=st.integers(1, 5),
    density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_shapes(lead, n, m, d, dv, density, seed):
    rng = np.random.default_rng(seed)
    q, k, v, g, mask = random_problem(rng, lead, n, m, d, dv, density)
    csr = SparseCSR.from_dense(mask)
    ref = dense_reference(q, k, v, mask, g)
    out, lse = sparse_attention(q, k, v, csr, return_lse=True)
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(lse, ref[1], rtol=0, atol=1e-10)
    for got, want in zip(sparse_attention_backward(q, k, v, csr, g), ref[2:]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_identical_for_every_workers(dtype):
    rng = np.random.default_rng(9)
    q, k, v, g, mask = random_problem(rng, (2, 3), 300, 260, 16, 12, 0.1, dtype,
                                      empty_rows=(0, 7))
    csr = SparseCSR.from_dense(mask)
    base = sparse_attention(q, k, v, csr, workers=1)
    base_grads = sparse_attention_backward(q, k, v, csr, g, workers=1)
    for workers in (2, 3, 5, -1):
        np.testing.assert_array_equal(sparse_attention(q, k, v, csr, workers=workers), base)
        for got, want in zip(sparse_attention_backward(q, k, v, csr, g, workers=workers),
                             base_grads):
            np.testing.assert_array_equal(got, want)


def test_releases_the_gil(assert_releases_gil):
    rng = np.random.default_rng(10)
    q, k, v, g, mask = random_problem(rng, (1,), 400, 400, 32, 32, 0.3, np.float32)
    csr = SparseCSR.from_dense(mask)

    def make_call(scale):
        qs, ks, vs, gs = (np.repeat(x, scale, axis=0) for x in (q, k, v, g))
        return lambda: sparse_attention_backward(qs, ks, vs, csr, gs, workers=1)

    assert_releases_gil(make_call)


@pytest.mark.parametrize("workers", [1, 2])
def test_results_do_not_depend_on_signal_checks(workers):
    # never looking at the signals, or looking between any two units: bit for bit
    from fastkern import _interrupt
    rng = np.random.default_rng(17)
    q, k, v, g, mask = random_problem(rng, (3,), 200, 150, 16, 8, 0.2, empty_rows=(4,))
    csr = SparseCSR.from_dense(mask)
    results = []
    for seconds in (math.inf, 1e-9):
        old = _interrupt.interval(seconds)
        try:
            results.append((sparse_attention(q, k, v, csr, workers=workers),)
                           + sparse_attention_backward(q, k, v, csr, g, workers=workers))
        finally:
            _interrupt.interval(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def _long_problem(heads):
    """float32 q, k, v of `heads` heads over 6000 tokens, every key allowed: about
    1e10 multiply-adds a head, in well under 1 GB."""
    n, d = 6000, 64
    q, k, v = (np.full((heads, n, d), 0.01, np.float32) for _ in range(3))
    mask = SparseCSR.from_dense(np.broadcast_to(np.ones(1, bool), (n, n)))
    return q, k, v, mask


def test_forward_stops_on_ctrl_c(assert_interruptible):
    q, k, v, mask = _long_problem(heads=100)
    small = _ok()

    def call():
        while True:  # each call alone lasts seconds even on many fast cores
            sparse_attention(q, k, v, mask)

    assert_interruptible(call, small=lambda: sparse_attention(*small))


def test_backward_stops_on_ctrl_c(assert_interruptible):
    q, k, v, mask = _long_problem(heads=40)
    mask.transpose()
    small = _ok()

    def call():
        while True:
            sparse_attention_backward(q, k, v, mask, v)

    assert_interruptible(call, small=lambda: sparse_attention_backward(*small,
                                                                        np.ones((2, 4, 2))))


# ---------------------------------------------------------------- bad input

def _ok(n=4, m=5, d=3, dv=2, dtype=np.float64):
    return (np.ones((2, n, d), dtype), np.ones((2, m, d), dtype), np.ones((2, m, dv), dtype),
            np.ones((n, m), dtype=bool))


@pytest.mark.parametrize("change, exc, words", [
    (lambda a: (a[0].astype(np.int64),) + a[1:], TypeError, "q must be float32 or float64"),
    (lambda a: (a[0], a[1].astype(np.float16)) + a[2:], TypeError, "k must be float32"),
    (lambda a: (a[0], a[1], a[2].astype(np.complex128), a[3]), TypeError, "v must be"),
    (lambda a: (a[0].astype(np.float32),) + a[1:], TypeError, "same dtype"),
    (lambda a: (a[0][0, 0],) + a[1:], ValueError, "q must have shape"),
    (lambda a: (a[0][:1],) + a[1:], ValueError, "leading"),
    (lambda a: (a[0], a[1][..., :2], a[2], a[3]), ValueError, "q and k must have the same last"),
    (lambda a: (a[0], a[1], a[2][:, :3], a[3]), ValueError, "k and v must have the same length"),
    (lambda a: (a[0][..., :0], a[1][..., :0], a[2], a[3]), ValueError, "at least 1"),
    (lambda a: a[:3] + (a[3][:, :4],), ValueError, "mask must have shape (N, M) = (4, 5)"),
    (lambda a: a[:3] + (np.ones((5, 5), dtype=bool),), ValueError, "mask must have shape"),
    (lambda a: a[:3] + (a[3].astype(np.int8),), TypeError, "mask must be a SparseCSR or a bool"),
    (lambda a: a[:3] + (a[3][None],), ValueError, "mask must be 2-D"),
    (lambda a: a[:3] + (SparseCSR.from_dense(np.ones((5, 4), bool)),), ValueError, "mask must"),
])
def test_bad_inputs(change, exc, words):
    args = change(_ok())
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")):
        sparse_attention(*args)
    with pytest.raises(exc):
        sparse_attention_backward(*args, np.ones((2, 4, 2)))


@pytest.mark.parametrize("scale, exc", [(math.nan, ValueError), (math.inf, ValueError),
                                        (-math.inf, ValueError), ("1", TypeError),
                                        (True, TypeError), (1j, TypeError),
                                        (np.float64("nan"), ValueError)])
def test_bad_scale(scale, exc):
    with pytest.raises(exc, match="scale"):
        sparse_attention(*_ok(), scale=scale)
    with pytest.raises(exc, match="scale"):
        sparse_attention_backward(*_ok(), np.ones((2, 4, 2)), scale=scale)


def test_scale_overflowing_float32():
    q, k, v, mask = _ok(dtype=np.float32)
    with pytest.raises(ValueError, match="scale must be finite in float32"):
        sparse_attention(q, k, v, mask, scale=1e300)


def test_bad_workers():
    with pytest.raises(ValueError, match="workers"):
        sparse_attention(*_ok(), workers=0)
    with pytest.raises(TypeError, match="workers"):
        sparse_attention(*_ok(), workers=1.5)


def test_workers_beyond_int():
    with pytest.raises(ValueError, match="workers"):
        sparse_attention(*_ok(), workers=2**31)
    with pytest.raises(ValueError, match="workers"):
        sparse_attention_backward(*_ok(), np.ones((2, 4, 2)), workers=2**63)


@pytest.mark.parametrize("scale", [2**2000, -(2**2000), 2**1024],
                         ids=["2**2000", "-2**2000", "2**1024"])
def test_scale_too_large_for_a_float(scale):
    with pytest.raises(ValueError, match="scale"):
        sparse_attention(*_ok(), scale=scale)
    with pytest.raises(ValueError, match="scale"):
        sparse_attention_backward(*_ok(), np.ones((2, 4, 2)), scale=scale)


def test_huge_broadcast_mask_fails_fast():
    # 10**12 mask elements from one byte: converting them would scan for minutes and
    # then need terabytes; the size alone is refused.  In a child with a time limit,
    # so that a regression fails instead of stalling the suite.
    run_child("""
        import numpy as np
        from fastkern.attention import SparseCSR, sparse_attention
        n = 10**6
        q = np.ones((n, 1), np.float32)
        mask = np.broadcast_to(np.ones(1, bool), (n, n))
        for call in (lambda: sparse_attention(q, q, q, mask), lambda: SparseCSR.from_dense(mask)):
            try:
                call()
            except (ValueError, MemoryError) as e:
                assert "mask" in str(e), e
            else:
                raise AssertionError("a 10**12-element mask was accepted")
    """, timeout=60)


def test_bad_backward_arguments():
    q, k, v, mask = _ok()
    with pytest.raises(ValueError, match="grad_out must have the output's shape"):
        sparse_attention_backward(q, k, v, mask, np.ones((2, 4, 3)))
    with pytest.raises(TypeError, match="grad_out must have q's dtype"):
        sparse_attention_backward(q, k, v, mask, np.ones((2, 4, 2), np.float32))
    with pytest.raises(TypeError, match="grad_out must be float32"):
        sparse_attention_backward(q, k, v, mask, np.ones((2, 4, 2), int))
    out, lse = sparse_attention(q, k, v, mask, return_lse=True)
    with pytest.raises(ValueError, match="both out and lse"):
        sparse_attention_backward(q, k, v, mask, out, out=out)
    with pytest.raises(ValueError, match="out and lse must have shapes"):
        sparse_attention_backward(q, k, v, mask, out, out=out, lse=lse[:1])
    with pytest.raises(TypeError, match="out and lse must have q's dtype"):
        sparse_attention_backward(q, k, v, mask, out, out=out, lse=lse.astype(np.float32))


def test_gpu_arrays_are_refused_clearly():
    class FakeCuda:
        __cuda_array_interface__ = {"shape": (2, 4, 3), "typestr": "<f8", "version": 3,
                                    "data": (0, False)}

    q, k, v, mask = _ok()
    with pytest.raises(TypeError, match="q is a GPU array"):
        sparse_attention(FakeCuda(), k, v, mask)


# ---------------------------------------------------------------- SparseCSR

def test_csr_round_trip_and_fields():
    rng = np.random.default_rng(11)
    dense = rng.random((37, 23)) < 0.3
    dense[4] = False
    csr = SparseCSR.from_dense(dense)
    assert csr.shape == (37, 23)
    assert csr.nnz == dense.sum()
    assert csr.index_dtype == np.int32
    np.testing.assert_array_equal(csr.to_dense(), dense)
    np.testing.assert_array_equal(csr.row_lengths, dense.sum(axis=1))
    for i in range(37):
        row = csr.column_indices[csr.row_offsets[i]:csr.row_offsets[i + 1]]
        np.testing.assert_array_equal(row, np.flatnonzero(dense[i]))
    again = SparseCSR(csr.row_offsets, csr.column_indices, csr.shape)
    assert again == csr
    assert "nnz=" in repr(csr)


def test_csr_keeps_every_nonzero():
    # xformers rounded nnz to a multiple of 4 and lost the last row's tail
    for n in range(1, 9):
        dense = np.zeros((n, n), dtype=bool)
        dense[-1, :] = True
        dense[0, 0] = True
        csr = SparseCSR.from_dense(dense)
        assert csr.nnz == dense.sum()
        np.testing.assert_array_equal(csr.to_dense(), dense)


def test_csr_transpose():
    rng = np.random.default_rng(12)
    dense = rng.random((19, 31)) < 0.2
    csr = SparseCSR.from_dense(dense)
    t = csr.transpose()
    assert t.shape == (31, 19)
    np.testing.assert_array_equal(t.to_dense(), dense.T)
    assert t == SparseCSR.from_dense(dense.T)
    assert t.transpose() is csr and csr.T is t


def test_csr_row_order_longest_first():
    lengths = np.array([2, 5, 0, 5, 1, 3])
    dense = np.arange(6)[None, :] < lengths[:, None]
    csr = SparseCSR.from_dense(dense)
    np.testing.assert_array_equal(csr.row_order, [1, 3, 5, 0, 4, 2])


def test_csr_pickle():
    dense = np.random.default_rng(13).random((9, 14)) < 0.5
    csr = SparseCSR.from_dense(dense)
    csr.transpose()
    back = pickle.loads(pickle.dumps(csr))
    assert back == csr and back.index_dtype == csr.index_dtype
    np.testing.assert_array_equal(back.row_order, csr.row_order)
    np.testing.assert_array_equal(back.transpose().to_dense(), dense.T)


def test_csr_int64_beyond_int32(int64_indices):
    csr = SparseCSR.from_dense(np.eye(3, dtype=bool))
    assert csr.index_dtype == np.int64
    assert csr.row_offsets.dtype == csr.column_indices.dtype == csr.row_order.dtype
    assert pickle.loads(pickle.dumps(csr)).index_dtype == np.int64


def test_csr_index_dtype_by_extent():
    assert csr_module._index_dtype(10, 2**31 - 1) == np.int32
    assert csr_module._index_dtype(10, 2**31) == np.int64


def test_csr_accepts_any_integer_dtype():
    csr = SparseCSR(np.array([0, 2, 2, 3], np.uint8), np.array([1, 0, 2], np.uint16), (3, 3))
    assert csr.index_dtype == np.int32
    np.testing.assert_array_equal(csr.column_indices, [0, 1, 2])
    with pytest.raises(ValueError, match="non-decreasing"):
        SparseCSR(np.array([0, 2, 1, 3], np.uint8), np.array([1, 0, 2]), (3, 3))


def test_csr_sorts_columns_within_rows():
    csr = SparseCSR([0, 3, 3, 5], [4, 0, 2, 1, 0], (3, 5))
    np.testing.assert_array_equal(csr.column_indices, [0, 2, 4, 0, 1])
    dense = np.zeros((3, 5), bool)
    dense[0, [0, 2, 4]] = dense[2, [0, 1]] = True
    np.testing.assert_array_equal(csr.to_dense(), dense)


def test_csr_arrays_are_read_only():
    csr = SparseCSR.from_dense(np.eye(3, dtype=bool))
    with pytest.raises(ValueError):
        csr.column_indices[0] = 2


def run_child(code, timeout=120):
    """Run code in a new interpreter that imports this fastkern: a crash there
    fails the test instead of ending pytest.  Returns its stdout."""
    import fastkern
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(fastkern.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"the child ended with status {proc.returncode}:\n{proc.stdout[-2000:]}\n"
        f"{proc.stderr[-3000:]}")
    return proc.stdout


def test_csr_arrays_cannot_be_made_writeable():
    csr = SparseCSR.from_dense(np.eye(3, dtype=bool))
    arrays = (csr.row_offsets, csr.column_indices, csr.row_order, csr.transpose().row_offsets,
              csr.transpose().column_indices)
    for a in arrays:
        for x in (a, a[:], a.view(), np.asarray(a)):
            with pytest.raises(ValueError):
                x.flags.writeable = True
            with pytest.raises(ValueError):
                x[0] = 2


# Each snippet tampers with `csr`, a 6 x 5 mask of SparseCSR (or a subclass), the
# way a user could; a call must then give a clean error or the right result.
_TAMPERING = {
    "writeable flag": """
        for a in (csr.column_indices, csr.row_offsets, csr.row_order):
            try:
                a.flags.writeable = True
                a[:] = 10**6
            except ValueError:
                pass
    """,
    "base of the arrays": """
        for a in (csr.column_indices, csr.row_offsets):
            base = a.base
            while isinstance(base, np.ndarray):
                base = base.base
            try:
                np.frombuffer(base, np.uint8)[:] = 255
            except (TypeError, ValueError, AttributeError):
                pass
    """,
    "subclass shape": """
        class Evil(SparseCSR):
            shape = property(lambda self: (600, 500))
        csr = Evil(csr.row_offsets, csr.column_indices, (6, 5))
        q, k, v, g = (np.ones((2, s, 3)) for s in (600, 500, 500, 600))
    """,
    "subclass arrays": """
        class Evil(SparseCSR):
            row_offsets = property(lambda self: np.array([0] + [10**6] * 6, np.int32))
            column_indices = property(lambda self: np.full(10**6, 10**9, np.int32))
            row_order = property(lambda self: np.arange(1000, 1006, dtype=np.int32))
            index_dtype = property(lambda self: np.dtype(np.int64))
            nnz = property(lambda self: 10**6)
        csr = Evil(csr.row_offsets, csr.column_indices, (6, 5))
    """,
    "subclass transpose": """
        class Evil(SparseCSR):
            def transpose(self):
                return SparseCSR.from_dense(np.ones((5, 60), bool))
            T = property(transpose)
        csr = Evil(csr.row_offsets, csr.column_indices, (6, 5))
    """,
    "subclass private names": """
        class Evil(SparseCSR):
            _pattern = property(lambda self: np.zeros(3))
            _offsets = property(lambda self: np.full(7, 10**6, np.int32))
            _cols = property(lambda self: np.full(7, 10**6, np.int32))
            _shape = property(lambda self: (600, 500))
        try:
            csr = Evil(csr.row_offsets, csr.column_indices, (6, 5))
        except (TypeError, ValueError, AttributeError):
            pass
    """,
    "object.__setattr__": """
        for name, value in [("_pattern", np.zeros(3)), ("_offsets", np.full(7, 10**6)),
                            ("_cols", np.arange(10**6)), ("_shape", (600, 500)),
                            ("_transpose", SparseCSR.from_dense(np.ones((5, 60), bool)))]:
            try:
                object.__setattr__(csr, name, value)
            except (AttributeError, TypeError):
                pass
    """,
    "state from __reduce__": """
        cls, args = csr.__reduce__()[:2]
        bad = (np.array([0, 1, 2, 3, 4, 5, 6]), np.array([0, 1, 2, 3, 4, 10**6]), (6, 5))
        try:
            csr = cls(*bad)
        except ValueError:
            pass
        import copy
        csr = copy.deepcopy(csr)
    """,
    "the kernels' own pattern": """
        from fastkern import _attention
        P = type(csr._pattern) if hasattr(csr, "_pattern") else None
        if P is not None:
            for args in [(np.array([0, 1, 5]), np.array([0, 9]), 5),
                         (np.array([0, 1, 2], np.int32), np.array([0, 9], np.int32), 5),
                         (np.array([0, 2, 1], np.int32), np.array([0, 1], np.int32), 5),
                         (np.array([0, 2, 2], np.int32), np.array([1, 1], np.int32), 5)]:
                try:
                    P(*args)
                except (TypeError, ValueError):
                    pass
                else:
                    raise AssertionError(f"accepted {args}")
            try:
                class Sub(P):
                    pass
            except TypeError:
                pass
    """,
}


@pytest.mark.parametrize("name", sorted(_TAMPERING))
def test_tampered_csr_never_crashes(name):
    out = run_child(_CHILD_HEADER + textwrap.indent(textwrap.dedent(_TAMPERING[name]), "    ")
                    + _CHILD_FOOTER)
    assert "checked" in out


_CHILD_HEADER = """
import numpy as np
from fastkern.attention import SparseCSR, sparse_attention, sparse_attention_backward

dense = np.random.default_rng(0).random((6, 5)) < 0.5
dense[2] = False
csr = SparseCSR.from_dense(dense)
rng = np.random.default_rng(1)
q, k, v, g = (rng.standard_normal((2, s, 3)) for s in (6, 5, 5, 6))
if True:
"""

# the result must be that of the pattern the kernels were given
_CHILD_FOOTER = """
for call in ("forward", "backward"):
    try:
        if call == "forward":
            got = sparse_attention(q, k, v, csr)
        else:
            got = sparse_attention_backward(q, k, v, csr, g)
    except (TypeError, ValueError) as e:
        print("refused:", type(e).__name__, e)
        continue
    # a correct result: that of the dense pattern the object actually holds
    want_mask = SparseCSR.to_dense(csr) if isinstance(csr, SparseCSR) else dense
    if call == "forward":
        want = sparse_attention(q, k, v, want_mask)
        np.testing.assert_allclose(got, want, atol=1e-12)
    else:
        for a, b in zip(got, sparse_attention_backward(q, k, v, want_mask, g)):
            np.testing.assert_allclose(a, b, atol=1e-12)
print("checked")
"""


def test_csr_from_scipy():
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.random.default_rng(14).random((8, 6)) < 0.3
    assert SparseCSR.from_scipy(sparse.csr_array(dense)) == SparseCSR.from_dense(dense)


@pytest.mark.parametrize("matrix", [np.eye(3), [[1, 0]], None, "csr"])
def test_csr_from_scipy_refuses_other_objects(matrix):
    with pytest.raises(TypeError, match="matrix must be a scipy.sparse"):
        SparseCSR.from_scipy(matrix)


@pytest.mark.parametrize("args, exc, words", [
    (([0, 1], [0], (2, 2)), ValueError, "N \\+ 1 = 3"),
    (([1, 1, 1], [0], (2, 2)), ValueError, "start at 0"),
    (([0, 1, 2], [0], (2, 2)), ValueError, "end at len"),
    (([0, 2, 2], [0], (2, 2)), ValueError, "end at len"),
    (([0, 2, 1, 3], [0, 1, 0], (3, 2)), ValueError, "non-decreasing"),
    (([0, 1, 2], [0, 2], (2, 2)), ValueError, "column_indices must lie in \\[0, 2\\)"),
    (([0, 1, 2], [0, -1], (2, 2)), ValueError, "column_indices must lie"),
    (([0, 2, 2], [1, 1], (2, 2)), ValueError, "repeats column 1 in row 0"),
    (([0, 1, 2], [0.0, 1.0], (2, 2)), TypeError, "column_indices must hold integers"),
    (([0.0, 1, 2], [0, 1], (2, 2)), TypeError, "row_offsets must hold integers"),
    (([[0, 1, 2]], [0, 1], (2, 2)), ValueError, "row_offsets must be 1-D"),
    (([0, 1, 2], [0, 1], (2,)), TypeError, "shape must be a pair"),
    (([0, 1, 2], [0, 1], (2, -1)), ValueError, "shape must be non-negative"),
    (([0, 1, 2], [0, 1], (2, 2.0)), TypeError, "shape must be a pair"),
])
def test_csr_bad_construction(args, exc, words):
    with pytest.raises(exc, match=words):
        SparseCSR(*args)


def test_csr_from_dense_bad_input():
    with pytest.raises(TypeError, match="boolean"):
        SparseCSR.from_dense(np.eye(3))
    with pytest.raises(ValueError, match="2-D"):
        SparseCSR.from_dense(np.ones(3, dtype=bool))


# ---------------------------------------------------------------- patterns

def _coords(H, W):
    return [(t // W, t % W) for t in range(H * W)]


def _loop_mask(H, W, allowed):
    c = _coords(H, W)
    return np.array([[allowed(a, b) for b in c] for a in c], dtype=bool)


def test_axial_2d_pattern():
    for H, W in [(1, 1), (3, 4), (5, 2)]:
        want = _loop_mask(H, W, lambda a, b: a[0] == b[0] or a[1] == b[1])
        np.testing.assert_array_equal(axial_2d_pattern(H, W), want)


@pytest.mark.parametrize("p, distance", [(2.0, 2), (2.0, 1.5), (2.0, 3), (1.0, 2),
                                         (1.0, 3.5), (math.inf, 2), (3.0, 2.5), (0.5, 4.1),
                                         (0, 2)])
def test_local_2d_pattern(p, distance):
    H, W = 6, 5

    def dist(a, b):
        di, dj = abs(a[0] - b[0]), abs(a[1] - b[1])
        if p == 0:
            return (di != 0) + (dj != 0)
        if p == math.inf:
            return max(di, dj)
        return (di ** p + dj ** p) ** (1 / p)

    want = _loop_mask(H, W, lambda a, b: dist(a, b) < distance)
    np.testing.assert_array_equal(local_2d_pattern(H, W, distance, p=p), want)
    d = local_2d_distance(H, W, p=p)
    c = _coords(H, W)
    np.testing.assert_allclose(d, [[dist(a, b) for b in c] for a in c], rtol=1e-12)


def test_local_2d_pattern_matches_cdist():
    cdist = pytest.importorskip("scipy.spatial.distance").cdist
    H, W = 7, 9
    coords = np.array(_coords(H, W), dtype=float)
    for p, distance in [(2.0, 2), (1.0, 3), (2.0, 2.5)]:
        np.testing.assert_array_equal(local_2d_pattern(H, W, distance, p=p),
                                      cdist(coords, coords, "minkowski", p=p) < distance)


def _exact_minkowski(di, dj, p):
    """The p-distance of integer offsets to 40 digits (integer p)."""
    with localcontext() as ctx:
        ctx.prec = 40
        total = Decimal(abs(di)) ** p + Decimal(abs(dj)) ** p
        return float(total ** (Decimal(1) / Decimal(p))) if total else 0.0


@pytest.mark.parametrize("p", [3, 64, 1000, 2000, 10**6])
def test_local_2d_pattern_large_p(p):
    # di**p overflows a float long before p = 2000: nothing may be lost to it
    H, W = 7, 6
    c = _coords(H, W)
    d = np.array([[_exact_minkowski(a[0] - b[0], a[1] - b[1], p) for b in c] for a in c])
    np.testing.assert_allclose(local_2d_distance(H, W, p=p), d, rtol=1e-14)
    for distance in (1.5, 2.2, 4.01, 6.5):
        want = _loop_mask(H, W, lambda a, b: _exact_minkowski(a[0] - b[0], a[1] - b[1], p)
                          < distance)
        np.testing.assert_array_equal(local_2d_pattern(H, W, distance, p=p), want)


def test_local_2d_pattern_tiny_p():
    # p -> 0: offsets along one axis keep their length, others tend to infinity
    want = _loop_mask(5, 4, lambda a, b: (a[0] == b[0] or a[1] == b[1])
                      and max(abs(a[0] - b[0]), abs(a[1] - b[1])) < 3)
    np.testing.assert_array_equal(local_2d_pattern(5, 4, 3, p=1e-300), want)


def test_axial_is_local_with_p0_distance2():
    np.testing.assert_array_equal(axial_2d_pattern(5, 7), local_2d_pattern(5, 7, 2, p=0))


def test_local_1d_pattern():
    for n, w in [(1, 1), (7, 1), (7, 3), (10, 5), (4, 11)]:
        want = np.array([[abs(a - b) <= w // 2 for b in range(n)] for a in range(n)])
        np.testing.assert_array_equal(local_1d_pattern(n, w), want)
    with pytest.raises(ValueError, match="odd"):
        local_1d_pattern(5, 4)


def test_causal_1d_pattern():
    want = np.array([[b <= a for b in range(6)] for a in range(6)])
    np.testing.assert_array_equal(causal_1d_pattern(6), want)


def test_dilated_2d_pattern():
    for H, W, k in [(4, 6, 2), (7, 5, 3), (3, 3, 1)]:
        want = _loop_mask(H, W, lambda a, b: (a[0] - b[0]) % k == 0 and (a[1] - b[1]) % k == 0)
        np.testing.assert_array_equal(dilated_2d_pattern(H, W, k), want)


@pytest.mark.parametrize("H, W, ws, shift", [(4, 4, 2, 0), (6, 9, 3, 0), (6, 9, 3, 1),
                                             (8, 4, 4, 2), (8, 8, 4, 3), (4, 6, 2, 1)])
def test_swin_attention_pattern(H, W, ws, shift):
    # definition: every token belongs to the nearest window centre of a grid of
    # anchors shifted by shift_size (with one extra row and column when shifted)
    extra = int(shift % ws != 0)
    offset = ws / 2 - (-shift) % ws
    anchors = [(a * ws + offset, b * ws + offset)
               for a in range(H // ws + extra) for b in range(W // ws + extra)]

    def window(t):
        y, x = t[0] + 0.5, t[1] + 0.5
        return min(range(len(anchors)),
                   key=lambda n: (y - anchors[n][0]) ** 2 + (x - anchors[n][1]) ** 2)

    want = _loop_mask(H, W, lambda a, b: window(a) == window(b))
    np.testing.assert_array_equal(swin_attention_pattern(H, W, ws, shift), want)


def test_swin_attention_pattern_bad_input():
    with pytest.raises(ValueError, match="multiples of window_size"):
        swin_attention_pattern(5, 4, 2)
    with pytest.raises(ValueError, match="shift_size must be less"):
        swin_attention_pattern(4, 4, 2, 2)


def test_local_2d_gaussian_distribution():
    H, W, sigma = 4, 5, 1.7
    want = _loop_mask(H, W, lambda a, b: True).astype(float)
    c = _coords(H, W)
    for x, a in enumerate(c):
        for y, b in enumerate(c):
            want[x, y] = math.exp(-0.5 * ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / sigma ** 2)
    got = local_2d_gaussian_distribution(H, W, sigma=sigma)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert local_2d_gausian_distribution is local_2d_gaussian_distribution
    got32 = local_2d_gausian_distribution(H, W, sigma=sigma, dtype=np.float32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        local_2d_gaussian_distribution(2, 2, sigma=0)


@pytest.mark.parametrize("sigma", [1e-160, 1e-200, 5e-324, 1e-20])
def test_local_2d_gaussian_distribution_tiny_sigma(sigma):
    # every other token is infinitely many sigmas away: the identity
    for dtype in (np.float64, np.float32):
        np.testing.assert_array_equal(
            local_2d_gaussian_distribution(3, 4, sigma=sigma, dtype=dtype), np.eye(12))


@pytest.mark.parametrize("sigma", [1e200, 1.7e308, 1e20])
def test_local_2d_gaussian_distribution_huge_sigma(sigma):
    np.testing.assert_array_equal(local_2d_gaussian_distribution(3, 4, sigma=sigma),
                                  np.ones((12, 12)))


@pytest.mark.parametrize("call", [
    lambda: local_2d_gaussian_distribution(2, 2, sigma=2**2000),
    lambda: local_2d_pattern(2, 2, 2**2000),
    lambda: random_pattern(2, 2**2000),
])
def test_patterns_huge_integers_are_value_errors(call):
    with pytest.raises(ValueError, match="sigma|distance|sparsity"):
        call()


def test_random_pattern():
    a = random_pattern(200, 0.9, seed=1)
    np.testing.assert_array_equal(a, random_pattern(200, 0.9, seed=1))
    assert a.shape == (200, 200) and a.dtype == bool
    assert abs(a.mean() - 0.1) < 0.01
    assert random_pattern(5, 0.0, seed=0).all() and not random_pattern(5, 1.0, seed=0).any()
    with pytest.raises(ValueError, match="sparsity"):
        random_pattern(5, 1.5)


def test_random_pattern_from_probability_matrix_exact_nnz():
    w = local_2d_gaussian_distribution(9, 9, sigma=2)
    w[3, :] = 0
    for nnz in (0, 1, 7, 500, int((w > 0).sum())):
        mask = random_pattern_from_probability_matrix(w, nnz, seed=nnz)
        assert mask.shape == w.shape and mask.sum() == nnz
        assert not mask[3].any()
    np.testing.assert_array_equal(random_pattern_from_probability_matrix(w, 50, seed=3),
                                  random_pattern_from_probability_matrix(w, 50, seed=3))
    with pytest.raises(ValueError, match="at most the number of positive"):
        random_pattern_from_probability_matrix(w, int((w > 0).sum()) + 1)
    with pytest.raises(ValueError, match="non-negative"):
        random_pattern_from_probability_matrix(-w, 2)


def test_random_pattern_from_probability_matrix_draws_without_replacement():
    # weights 1, 2, 3; two draws without replacement: P({a, b}) under successive
    # sampling is p_a p_b / (1 - p_a) + p_b p_a / (1 - p_b)
    w = np.array([[1.0, 2.0, 3.0]])
    p = w[0] / w.sum()
    rng = np.random.default_rng(15)
    trials = 3000
    counts = {}
    for _ in range(trials):
        key = tuple(np.flatnonzero(random_pattern_from_probability_matrix(w, 2, seed=rng)[0]))
        counts[key] = counts.get(key, 0) + 1
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        want = p[a] * p[b] / (1 - p[a]) + p[b] * p[a] / (1 - p[b])
        sd = math.sqrt(want * (1 - want) / trials)
        assert abs(counts.get((a, b), 0) / trials - want) < 5 * sd


def test_random_pattern_from_probability_matrix_over_blocks(monkeypatch):
    # the selection spans several row blocks: it must still keep the best keys overall
    from fastkern.attention import patterns
    monkeypatch.setattr(patterns, "_BLOCK_ELEMENTS", 64)
    w = local_2d_gaussian_distribution(6, 6)
    small = random_pattern_from_probability_matrix(w, 100, seed=4)
    monkeypatch.setattr(patterns, "_BLOCK_ELEMENTS", 1 << 21)
    np.testing.assert_array_equal(small, random_pattern_from_probability_matrix(w, 100, seed=4))


def test_global_token_pattern():
    g = np.array([True, False, False, True, False])
    want = np.array([[g[a] or g[b] for b in range(5)] for a in range(5)])
    np.testing.assert_array_equal(global_token_pattern(g), want)
    with pytest.raises(TypeError, match="boolean"):
        global_token_pattern(np.array([1, 0]))


def test_patterns_bad_arguments():
    with pytest.raises(TypeError, match="H must be an integer"):
        axial_2d_pattern(2.5, 3)
    with pytest.raises(ValueError, match="W must be at least 1"):
        local_2d_pattern(3, 0, 2)
    with pytest.raises(TypeError, match="distance must be a real number"):
        local_2d_pattern(3, 3, "2")
    with pytest.raises(ValueError, match="p must be non-negative"):
        local_2d_pattern(3, 3, 2, p=-1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        dilated_2d_pattern(3, 3, 0)


def test_patterns_feed_the_op():
    H = W = 6
    mask = SparseCSR.from_dense(axial_2d_pattern(H, W) | local_2d_pattern(H, W, 2))
    rng = np.random.default_rng(16)
    q, k, v = rng.standard_normal((3, 2, H * W, 8))
    np.testing.assert_allclose(sparse_attention(q, k, v, mask),
                               dense_reference(q, k, v, mask.to_dense())[0], atol=1e-10)


@pytest.mark.parametrize("build", [
    lambda: local_2d_pattern(230584300921369383, 5, 1.0),
    lambda: local_2d_pattern(2**31, 2**31, 1.0),
    lambda: axial_2d_pattern(2**40, 3),
    lambda: local_1d_pattern(2**62, 3),
    lambda: causal_1d_pattern(2**40),
])
def test_patterns_too_large_for_any_array(build):
    # NumPy's own refusal ("array is too big") names no argument; this one does
    with pytest.raises(MemoryError, match="too large"):
        build()
