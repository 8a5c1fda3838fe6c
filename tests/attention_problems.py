"""Random sparse-attention problems, shared by the CPU and the CUDA tests."""
import numpy as np


def random_problem(rng, lead, n, m, d, dv, density, dtype=np.float64, empty_rows=()):
    """q (lead + (n, d)), k, v (m rows), the output gradient g, and a random (n, m)
    bool mask of the given density whose rows empty_rows are empty."""
    q = rng.standard_normal(lead + (n, d)).astype(dtype)
    k = rng.standard_normal(lead + (m, d)).astype(dtype)
    v = rng.standard_normal(lead + (m, dv)).astype(dtype)
    g = rng.standard_normal(lead + (n, dv)).astype(dtype)
    mask = rng.random((n, m)) < density
    for r in empty_rows:
        mask[r] = False
    return q, k, v, g, mask


def nonfinite_problem(dtype):
    """One head whose scores hold +-inf and NaN: q (12, 4), k (150, 4), v (150, 3),
    g (12, 3) of `dtype` and a (12, 150) mask.  Rows 1-3 score -inf then NaN
    (NaN rows), row 4 only -inf (zeros), row 5 -inf over its first 70 keys (more
    than a chunk of the CPU kernel, two of the CUDA one) then 0, rows 6 and 7 a
    NaN and a -inf among finite scores, row 8 no key."""
    rng = np.random.default_rng(18)
    n, m, d = 12, 150, 4
    q = rng.standard_normal((n, d))
    k = rng.standard_normal((m, d))
    v = rng.standard_normal((m, 3))
    g = rng.standard_normal((n, 3))
    big = 1e200 if dtype == np.float64 else 1e30    # big * big overflows to inf
    k[:, 0] = np.where(np.arange(m) < 70, -big, 0.0)
    q[1:4, 0] = np.inf           # -inf on the first 70 keys, NaN (inf * 0) after
    q[4, 0] = np.inf             # keys < 70 only: all -inf, a row of zeros
    q[5] = [big, 0, 0, 0]        # -inf on the first 70 keys (over a chunk), 0 after
    q[6, 1] = np.nan
    k[100, 2] = np.nan
    k[140, :] = -np.inf
    q[7] = [1.0, 0.0, 0.0, 0.0]  # with k[140] = -inf everywhere: a -inf score
    mask = rng.random((n, m)) < 0.7
    mask[4, 70:] = False
    mask[5, :70] = True
    mask[5, [100, 140]] = False
    mask[7, 140] = True
    mask[8] = False
    q, k, v, g = (x.astype(dtype) for x in (q, k, v, g))
    return q, k, v, g, mask
