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
