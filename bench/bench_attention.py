"""Benchmarks of fastkern.attention against what a user would run instead.

    python -m pytest bench/bench_attention.py --benchmark-group-by=group -s

1. A 48x48 grid of tokens (2,304), axial + local(distance 2) mask (4.3% dense),
   4 heads, D = 32, float32: fastkern against dense masked attention in NumPy
   (target: at least 20x faster) and, where torch is installed, against
   torch.nn.functional.scaled_dot_product_attention with a dense bool mask
   (target: faster), forward and forward+backward.
2. A 112x112 grid (12,544 tokens), a 99.5%-sparse Gaussian-random mask, 8 heads,
   D = 12, float32: forward and backward in a fresh subprocess whose peak memory
   (resident set, and NumPy's allocations as tracemalloc sees them) must stay
   under 600 MB.

Times are medians; the machine may be shared, so read ratios rather than
absolute figures.  The speed-up checks time both sides in the same test,
interleaved, to share whatever the machine is doing.
"""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastkern import get_workers
from fastkern._demo.attention import _dense_forward
from fastkern.attention import (
    SparseCSR,
    axial_2d_pattern,
    local_2d_gaussian_distribution,
    local_2d_pattern,
    random_pattern_from_probability_matrix,
    sparse_attention,
    sparse_attention_backward,
)

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

GRID = 48
HEADS = 4
DIM = 32


@pytest.fixture(scope="module")
def grid_case():
    dense = axial_2d_pattern(GRID, GRID) | local_2d_pattern(GRID, GRID, distance=2)
    mask = SparseCSR.from_dense(dense)
    mask.transpose()
    rng = np.random.default_rng(0)
    n = GRID * GRID
    q, k, v, g = rng.standard_normal((4, 1, HEADS, n, DIM)).astype(np.float32)
    return dense, mask, q, k, v, g


def dense_numpy_attention(q, k, v, dense, scale):
    """Masked attention the NumPy way: the full score matrix, masked, softmaxed
    (the main job's reference)."""
    return _dense_forward(q, k, v, dense, scale)[1]


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ------------------------------------------------------------ 48x48, forward

@pytest.mark.benchmark(group="grid48-forward")
def test_grid48_forward_fastkern(benchmark, grid_case):
    dense, mask, q, k, v, _ = grid_case
    out = benchmark(sparse_attention, q, k, v, mask)
    assert out.shape == q.shape


@pytest.mark.benchmark(group="grid48-forward")
def test_grid48_forward_numpy_dense(benchmark, grid_case):
    dense, mask, q, k, v, _ = grid_case
    out = benchmark.pedantic(dense_numpy_attention, (q, k, v, dense, np.float32(DIM ** -0.5)),
                             rounds=5, iterations=1)
    np.testing.assert_allclose(out, sparse_attention(q, k, v, mask), atol=1e-5)


@needs_torch
@pytest.mark.benchmark(group="grid48-forward")
def test_grid48_forward_torch_sdpa(benchmark, grid_case):
    dense, mask, q, k, v, _ = grid_case
    tq, tk, tv = map(torch.from_numpy, (q, k, v))
    tmask = torch.from_numpy(dense)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.no_grad():
        out = benchmark(sdpa, tq, tk, tv, attn_mask=tmask)
    np.testing.assert_allclose(out.numpy(), sparse_attention(q, k, v, mask), atol=1e-5)


# ------------------------------------------------------------ 48x48, forward + backward

@pytest.mark.benchmark(group="grid48-forward-backward")
def test_grid48_train_fastkern(benchmark, grid_case):
    _, mask, q, k, v, g = grid_case

    def step():
        out, lse = sparse_attention(q, k, v, mask, return_lse=True)
        return sparse_attention_backward(q, k, v, mask, g, out=out, lse=lse)

    benchmark(step)


@needs_torch
@pytest.mark.benchmark(group="grid48-forward-backward")
def test_grid48_train_torch_sdpa(benchmark, grid_case):
    dense, _, q, k, v, g = grid_case
    tmask = torch.from_numpy(dense)
    tg = torch.from_numpy(g)
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def step():
        tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
        sdpa(tq, tk, tv, attn_mask=tmask).backward(tg)
        return tq.grad

    benchmark(step)


# ------------------------------------------------------------ 48x48, the targets

def test_grid48_speedup_targets(grid_case):
    """fastkern >= 20x dense NumPy, and faster than torch SDPA, timed side by side."""
    dense, mask, q, k, v, g = grid_case
    scale = np.float32(DIM ** -0.5)
    fk = []
    ref = []
    for _ in range(3):  # interleaved, so that both see the same machine load
        fk.append(_median_time(lambda: sparse_attention(q, k, v, mask), 15))
        ref.append(_median_time(lambda: dense_numpy_attention(q, k, v, dense, scale), 2))
    t_fk, t_np = float(np.median(fk)), float(np.median(ref))
    print(f"\n48x48 forward, {get_workers()} workers: fastkern {t_fk * 1e3:.2f} ms, "
          f"dense NumPy {t_np * 1e3:.1f} ms: {t_np / t_fk:.1f}x")
    assert t_np / t_fk >= 20
    if torch is not None:
        tq, tk, tv = map(torch.from_numpy, (q, k, v))
        tmask = torch.from_numpy(dense)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        tt = []
        fk = []
        with torch.no_grad():
            for _ in range(3):
                fk.append(_median_time(lambda: sparse_attention(q, k, v, mask), 15))
                tt.append(_median_time(lambda: sdpa(tq, tk, tv, attn_mask=tmask), 15))
        t_fk, t_t = float(np.median(fk)), float(np.median(tt))
        print(f"48x48 forward: fastkern {t_fk * 1e3:.2f} ms, torch {torch.__version__} SDPA "
              f"with a bool mask ({torch.get_num_threads()} threads) {t_t * 1e3:.2f} ms: "
              f"{t_t / t_fk:.1f}x")
        assert t_t > t_fk


# ------------------------------------------------------------ 112x112, memory

BIG_GRID = 112
BIG_HEADS = 8
BIG_DIM = 12
BIG_SPARSITY = 0.995
BIG_SIGMA = 4.0  # width of the Gaussian, in tokens: ~100 near tokens carry the weight
MEMORY_LIMIT_MB = 600

_CHILD = textwrap.dedent("""
    import json, sys, time, tracemalloc
    import numpy as np
    tracemalloc.start()
    from fastkern.attention import SparseCSR, sparse_attention, sparse_attention_backward
    offsets, cols = np.load(sys.argv[1]), np.load(sys.argv[2])
    n, heads, dim = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    mask = SparseCSR(offsets, cols, (n, n))
    del offsets, cols
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((1, heads, n, dim), dtype=np.float32) for _ in range(4))
    t0 = time.perf_counter()
    mask.transpose()  # built once per mask, kept on it for every backward
    t_transpose = time.perf_counter() - t0
    t_fwd, t_bwd = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        out, lse = sparse_attention(q, k, v, mask, return_lse=True)
        t1 = time.perf_counter()
        dq, dk, dv = sparse_attention_backward(q, k, v, mask, g, out=out, lse=lse)
        t2 = time.perf_counter()
        t_fwd.append(t1 - t0)
        t_bwd.append(t2 - t1)
    ok = all(np.isfinite(x).all() for x in (out, dq, dk, dv))
    _, traced_peak = tracemalloc.get_traced_memory()
    try:  # VmHWM: this process's own peak (Linux's ru_maxrss keeps the parent's over exec)
        with open("/proc/self/status") as f:
            peak_rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except OSError:
        import resource
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # bytes on macOS
    print(json.dumps({"forward_s": float(np.median(t_fwd)),
                      "backward_s": float(np.median(t_bwd)),
                      "transpose_s": t_transpose, "finite": bool(ok),
                      "nnz": mask.nnz, "peak_rss_mb": peak_rss,
                      "traced_peak_mb": traced_peak / 2**20}))
""")


@pytest.fixture(scope="module")
def big_mask(tmp_path_factory):
    n = BIG_GRID * BIG_GRID
    weights = local_2d_gaussian_distribution(BIG_GRID, BIG_GRID, sigma=BIG_SIGMA,
                                             dtype=np.float32)
    nnz = int(round((1 - BIG_SPARSITY) * n * n))
    dense = random_pattern_from_probability_matrix(weights, nnz, seed=0)
    del weights
    mask = SparseCSR.from_dense(dense)
    del dense
    path = tmp_path_factory.mktemp("mask")
    np.save(path / "offsets.npy", mask.row_offsets)
    np.save(path / "cols.npy", mask.column_indices)
    return path, mask


def test_vit112_forward_backward_memory(big_mask):
    path, mask = big_mask
    n = BIG_GRID * BIG_GRID
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path / "offsets.npy"), str(path / "cols.npy"),
         str(n), str(BIG_HEADS), str(BIG_DIM)],
        capture_output=True, text=True, check=True, env=env, timeout=600)
    r = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n112x112 grid ({n} tokens), {1 - mask.density:.2%} sparse ({mask.nnz} nnz, "
          f"{mask.nnz / n:.0f} keys per query), {BIG_HEADS} heads, D={BIG_DIM}, float32, "
          f"{get_workers()} workers: forward {r['forward_s'] * 1e3:.0f} ms, backward "
          f"{r['backward_s'] * 1e3:.0f} ms (medians of 3; the mask's transpose, built once, "
          f"{r['transpose_s'] * 1e3:.0f} ms); peak RSS {r['peak_rss_mb']:.0f} MB, NumPy "
          f"allocations peak {r['traced_peak_mb']:.0f} MB")
    assert r["finite"]
    assert r["peak_rss_mb"] < MEMORY_LIMIT_MB
    assert r["traced_peak_mb"] < MEMORY_LIMIT_MB
