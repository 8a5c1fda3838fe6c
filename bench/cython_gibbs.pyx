# cython: language_level=3
"""The Cython Gibbs sampler as it is widely taught: C-typed state and loops, and
every draw a Python-level call into numpy.random.

bench_gibbs.py builds this file at benchmark time with pyximport, as a user
would.  The widely circulated version calls ``np.random.gamma(3, y*y + 4)``,
taking y*y + 4 as the *scale*; here it is the rate (scale 1 / (y*y + 4)), so
that every sampler in the benchmark has the same target.  The speed is the same.
"""
import numpy as np
from libc.math cimport sqrt


def gibbs(int N=20000, int thin=500):
    cdef double x = 0.0
    cdef double y = 0.0
    cdef int i, j
    samples = np.empty((N, 2))
    for i in range(N):
        for j in range(thin):
            x = np.random.gamma(3, 1.0 / (y * y + 4))
            y = np.random.normal(1.0 / (x + 1), 1.0 / sqrt(2 * x + 2))
        samples[i, 0] = x
        samples[i, 1] = y
    return samples
