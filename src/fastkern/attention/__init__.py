"""CSR-sparse scaled dot-product attention on CPUs and CUDA GPUs, forward and backward.

Masks
-----
Pattern builders return dense boolean (N, N) masks, with xformers' names and
meanings: ``axial_2d_pattern``, ``local_2d_pattern``, ``local_1d_pattern``,
``causal_1d_pattern``, ``random_pattern``, ``local_2d_gaussian_distribution``
(also as xformers' ``local_2d_gausian_distribution``),
``random_pattern_from_probability_matrix``, ``global_token_pattern``,
``swin_attention_pattern``, ``dilated_2d_pattern``.  Combine them with ``|``
and ``&``, then build a :class:`SparseCSR` once.

The op
------
``sparse_attention(q, k, v, mask)`` and ``sparse_attention_backward(q, k, v, mask,
grad_out)`` take q (..., N, D), k and v (..., M, D) in float32 or float64 and a
SparseCSR or boolean (N, M) mask.  ``fastkern.attention.torch`` wraps them as an
autograd function and a timm-style ``Attention`` module (needs PyTorch).  GPU
arrays (CuPy, Numba, PyTorch CUDA tensors) run on the CUDA kernels, where fastkern
was built with them, and may also be float16 or bfloat16.

Examples
--------
>>> import numpy as np
>>> from fastkern.attention import (SparseCSR, axial_2d_pattern, local_2d_pattern,
...                                 sparse_attention)
>>> mask = SparseCSR.from_dense(axial_2d_pattern(8, 8) | local_2d_pattern(8, 8, 2))
>>> q = k = v = np.ones((2, 4, 64, 16), dtype=np.float32)   # batch, heads, tokens, dim
>>> sparse_attention(q, k, v, mask).shape
(2, 4, 64, 16)
"""
from .csr import SparseCSR
from .ops import sparse_attention, sparse_attention_backward
from .patterns import (
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
    swin_attention_pattern,
)

__all__ = [
    "SparseCSR",
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
    "sparse_attention",
    "sparse_attention_backward",
    "swin_attention_pattern",
]
