"""fastkern.attention.torch: the autograd function and the timm-style module.
Skipped where PyTorch is not installed."""
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastkern.attention import SparseCSR, axial_2d_pattern, global_token_pattern  # noqa: E402
from fastkern.attention import local_2d_pattern, sparse_attention as np_attention  # noqa: E402
from fastkern.attention.torch import Attention, sparse_attention  # noqa: E402


def _mask(n, m, density, seed):
    mask = np.random.default_rng(seed).random((n, m)) < density
    mask[1] = False  # a row with no allowed key
    return mask


def test_gradcheck():
    mask = SparseCSR.from_dense(_mask(7, 6, 0.5, 0))
    q = torch.randn(2, 7, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, k, v: sparse_attention(q, k, v, mask), (q, k, v))


def test_double_backward_is_refused():
    mask = SparseCSR.from_dense(np.ones((3, 3), dtype=bool))
    q = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(sparse_attention(q, q, q, mask).sum(), q, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_matches_sdpa_with_a_bool_mask():
    mask = np.random.default_rng(1).random((20, 20)) < 0.4
    np.fill_diagonal(mask, True)  # SDPA gives NaN for rows with no allowed key
    q, k, v = (torch.randn(2, 3, 20, 8, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    out = sparse_attention(q, k, v, SparseCSR.from_dense(mask))
    q2, k2, v2 = (x.detach().clone().requires_grad_() for x in (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(q2, k2, v2,
                                                           attn_mask=torch.from_numpy(mask))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    for a, b in ((q, q2), (k, k2), (v, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-12)


def test_float32_and_masks_of_every_kind():
    dense = _mask(10, 10, 0.5, 2)
    q, k, v = torch.randn(3, 4, 10, 8).unbind(0)
    want = torch.from_numpy(np_attention(q.numpy(), k.numpy(), v.numpy(), dense))
    for mask in (dense, torch.from_numpy(dense), SparseCSR.from_dense(dense)):
        out = sparse_attention(q, k, v, mask)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_timm_style_vit_block_trains():
    H = W = 4
    n = 1 + H * W  # class token first
    grid = axial_2d_pattern(H, W) | local_2d_pattern(H, W, 2)
    mask = np.zeros((n, n), dtype=bool)
    mask[1:, 1:] = grid
    mask |= global_token_pattern(np.arange(n) == 0)
    torch.manual_seed(0)
    attn = Attention(32, num_heads=4, qkv_bias=True, attn_mask=SparseCSR.from_dense(mask))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = torch.nn.LayerNorm(32)
            self.attn = attn
            self.mlp = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(),
                                           torch.nn.Linear(64, 32))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(x)

    block = Block()
    x = torch.randn(3, n, 32)
    y = block(x)
    assert y.shape == x.shape
    # the same block computed densely (timm's formula with a boolean mask)
    B, N, C = x.shape
    qkv = attn.qkv(block.norm1(x)).reshape(B, N, 3, 4, 8).permute(2, 0, 3, 1, 4)
    ref = torch.nn.functional.scaled_dot_product_attention(*qkv.unbind(0),
                                                           attn_mask=torch.from_numpy(mask))
    ref = attn.proj(ref.transpose(1, 2).reshape(B, N, C))
    torch.testing.assert_close(attn(block.norm1(x)), ref, rtol=1e-5, atol=1e-5)

    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    before = attn.qkv.weight.detach().clone()
    loss = block(x).square().mean()
    loss.backward()
    assert attn.qkv.weight.grad is not None and torch.all(torch.isfinite(attn.qkv.weight.grad))
    opt.step()
    assert not torch.equal(before, attn.qkv.weight)
    assert "num_heads=4" in repr(attn)


def test_module_is_picklable_and_validates():
    mask = SparseCSR.from_dense(axial_2d_pattern(2, 2))
    attn = Attention(8, num_heads=2, attn_mask=mask)
    back = pickle.loads(pickle.dumps(attn))
    assert back.attn_mask == mask
    x = torch.randn(1, 4, 8)
    torch.testing.assert_close(back(x), attn(x))
    with pytest.raises(ValueError, match="multiple of num_heads"):
        Attention(10, num_heads=4, attn_mask=mask)
    with pytest.raises(ValueError, match="attn_drop"):
        Attention(8, num_heads=2, attn_drop=0.1, attn_mask=mask)
    with pytest.raises(ValueError, match="attn_mask is required"):
        Attention(8, num_heads=2)
    with pytest.raises(ValueError, match="square"):
        Attention(8, num_heads=2, attn_mask=np.ones((4, 3), dtype=bool))


def test_bad_tensors():
    mask = np.ones((4, 4), dtype=bool)
    q = torch.randn(4, 8)
    with pytest.raises(NotImplementedError, match="CPU"):
        sparse_attention(q.to("meta"), q, q, mask)
    with pytest.raises(TypeError, match="float32 or float64"):
        sparse_attention(q.half(), q, q, mask)
    with pytest.raises(TypeError, match="torch.Tensor"):
        sparse_attention(q.numpy(), q, q, mask)
    with pytest.raises(TypeError, match="same dtype"):
        sparse_attention(q.double(), q, q, mask)
    with pytest.raises(TypeError, match="boolean"):
        sparse_attention(q, q, q, torch.ones(4, 4))
    with pytest.raises(ValueError, match="mask must have shape"):
        sparse_attention(q, q, q, torch.ones(3, 4, dtype=torch.bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_and_cpu_tensors_mixed_raise_clearly():
    q = torch.randn(4, 8, device="cuda")
    with pytest.raises(TypeError, match="host array"):
        sparse_attention(q, q.cpu(), q, np.ones((4, 4), dtype=bool))
