"""PyTorch front end of :mod:`fastkern.attention` (needs ``torch``).

``sparse_attention(q, k, v, mask)`` is a differentiable op on CPU tensors; the
``Attention`` module is a timm-style multi-head self-attention block (q, k and v
from one linear layer) that computes its attention with it, so a ViT's blocks
can swap their attention for a sparse one::

    from fastkern.attention.torch import Attention
    block.attn = Attention(dim, num_heads, qkv_bias=True, attn_mask=mask)

Tensors stay where they are: the CPU kernels read and write their memory
through NumPy views, and CUDA tensors go to the CUDA kernels (where fastkern
was built with them) on the tensors' device and PyTorch's current stream.
"""
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .csr import SparseCSR
from .ops import sparse_attention as _np_sparse_attention
from .ops import sparse_attention_backward as _np_sparse_attention_backward

__all__ = ["Attention", "SparseAttentionFunction", "sparse_attention"]

_DTYPES = (torch.float32, torch.float64)


def _check_tensor(x, name):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.device.type == "cuda":
        return  # dtypes and the build are checked on the CUDA path
    if x.device.type != "cpu":
        raise NotImplementedError(
            f"{name} is on {x.device}; fastkern.attention runs on CPU and CUDA tensors")
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")


def _numpy(x):
    """What the ops take: a NumPy view of a CPU tensor; a CUDA tensor as it is."""
    if x.device.type == "cuda":
        return x.detach()
    return x.detach().contiguous().numpy()


def _tensor(a):
    """A tensor of what the ops return: NumPy arrays (CPU) or tensors (CUDA)."""
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(a)


def _as_mask(mask):
    if isinstance(mask, SparseCSR):
        return mask
    if isinstance(mask, torch.Tensor):
        _check_tensor_mask(mask)
        mask = mask.detach().cpu().numpy()
    return SparseCSR.from_dense(mask)


def _check_tensor_mask(mask):
    if mask.device.type not in ("cpu", "cuda"):
        raise NotImplementedError(f"mask is on {mask.device}; pass a SparseCSR, or a CPU "
                                  f"or CUDA tensor")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a SparseCSR or a boolean tensor, got {mask.dtype}")


class SparseAttentionFunction(torch.autograd.Function):
    """Autograd function behind :func:`sparse_attention`.

    ``apply(q, k, v, mask, scale, workers)`` with ``mask`` a :class:`SparseCSR`.
    The forward keeps the output and the row log-sum-exp for the backward, which
    recomputes the probabilities from them: saved memory is O(N x Dv), not O(nnz).
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, scale, workers):
        out, lse = _np_sparse_attention(_numpy(q), _numpy(k), _numpy(v), mask, scale=scale,
                                        workers=workers, return_lse=True)
        out = _tensor(out)
        ctx.save_for_backward(q, k, v, out, _tensor(lse))
        ctx.mask = mask
        ctx.scale = scale
        ctx.workers = workers
        return out

    @staticmethod
    @once_differentiable  # the kernels' gradients are not themselves differentiable
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _np_sparse_attention_backward(
            _numpy(q), _numpy(k), _numpy(v), ctx.mask, _numpy(grad_out), scale=ctx.scale,
            workers=ctx.workers, out=_numpy(out), lse=_numpy(lse))
        return _tensor(dq), _tensor(dk), _tensor(dv), None, None, None


def sparse_attention(q, k, v, mask, *, scale=None, workers=None):
    """Differentiable CSR-sparse attention on CPU or CUDA tensors.

    Same computation as :func:`fastkern.attention.sparse_attention`:
    ``softmax(q k^T * scale)`` over the positions ``mask`` allows, times ``v``;
    rows with no allowed position give zeros.  Gradients flow to q, k and v.

    Parameters
    ----------
    q : torch.Tensor, shape (..., N, D)
    k : torch.Tensor, shape (..., M, D)
    v : torch.Tensor, shape (..., M, Dv)
        CPU tensors, float32 or float64, or CUDA tensors, also float16 or
        bfloat16 (see :func:`fastkern.attention.sparse_attention`); one dtype,
        one device, the same leading axes.
    mask : SparseCSR, or bool ndarray or tensor, shape (N, M)
        Allowed positions; a SparseCSR built once is the fast way.
    scale : float, optional
        Default ``D ** -0.5``.
    workers : int, optional
        Threads, as for every fastkern kernel.

    Returns
    -------
    out : torch.Tensor, shape (..., N, Dv)

    Raises
    ------
    NotImplementedError
        For tensors on devices other than the CPU and CUDA, and for CUDA
        tensors in a build without the CUDA kernels.
    TypeError, ValueError
        As for :func:`fastkern.attention.sparse_attention`.

    Examples
    --------
    >>> import torch
    >>> from fastkern.attention import SparseCSR, causal_1d_pattern
    >>> from fastkern.attention.torch import sparse_attention
    >>> q, k, v = (torch.randn(2, 4, 16, 8, requires_grad=True) for _ in range(3))
    >>> mask = SparseCSR.from_dense(causal_1d_pattern(16))
    >>> out = sparse_attention(q, k, v, mask)
    >>> out.sum().backward()
    >>> out.shape, q.grad.shape
    (torch.Size([2, 4, 16, 8]), torch.Size([2, 4, 16, 8]))
    """
    for x, name in ((q, "q"), (k, "k"), (v, "v")):
        _check_tensor(x, name)
    return SparseAttentionFunction.apply(q, k, v, _as_mask(mask), scale, workers)


class Attention(nn.Module):
    """Multi-head self-attention with a sparse mask, shaped like timm's ``Attention``.

    ``x (B, N, C) -> qkv = Linear(C, 3C)(x) -> heads -> sparse attention -> Linear(C, C)``,
    the parameters named as timm's (``qkv``, ``proj``), so a ViT's pretrained
    weights load into it.

    Parameters
    ----------
    dim : int
        Embedding size C, a multiple of ``num_heads``.
    num_heads : int, optional
        Heads; each has ``dim // num_heads`` channels.
    qkv_bias : bool, optional
        Bias in the qkv projection.
    attn_drop : float, optional
        Must be 0: dropout on attention probabilities is not supported (the
        probabilities are never stored).
    proj_drop : float, optional
        Dropout after the output projection.
    attn_mask : SparseCSR or bool array_like, shape (N, N)
        Which tokens attend to which, N the sequence length of the input
        (class token included, if the model has one).
    scale : float, optional
        Default ``(dim // num_heads) ** -0.5``.
    workers : int, optional
        Threads for the attention kernels.

    Examples
    --------
    >>> import torch
    >>> from fastkern.attention import SparseCSR, axial_2d_pattern
    >>> from fastkern.attention.torch import Attention
    >>> attn = Attention(32, num_heads=4, attn_mask=SparseCSR.from_dense(axial_2d_pattern(4, 4)))
    >>> attn(torch.randn(2, 16, 32)).shape
    torch.Size([2, 16, 32])
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0,
                 attn_mask=None, scale=None, workers=None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim must be a multiple of num_heads, got dim={dim}, "
                             f"num_heads={num_heads}")
        if attn_drop:
            raise ValueError(f"attn_drop must be 0 (the attention probabilities are never "
                             f"stored, so they cannot be dropped), got {attn_drop}")
        if attn_mask is None:
            raise ValueError("attn_mask is required: a SparseCSR or a boolean (N, N) mask")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5 if scale is None else scale
        self.workers = workers
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_mask = _as_mask(attn_mask)
        if self.attn_mask.shape[0] != self.attn_mask.shape[1]:
            raise ValueError(f"attn_mask must be square for self-attention, got shape "
                             f"{self.attn_mask.shape}")

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = sparse_attention(q, k, v, self.attn_mask, scale=self.scale, workers=self.workers)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))

    def extra_repr(self):
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, attn_mask={self.attn_mask!r}"
