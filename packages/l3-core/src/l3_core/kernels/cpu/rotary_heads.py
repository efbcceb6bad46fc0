"""The stacked QKV projection's output as RoPE-rotated heads, in one autograd node.

Splitting the output of wq/wk/wv stacked into q, k, v, rotating q and k (rotate-half layout) and moving the
head axis forward is, written as tensor expressions, a dozen elementwise kernels forward and
more backward (slicing backward fills zero tensors and copies into them). Here the forward
writes q, k, v once into ``[b, heads, s, head_dim]`` buffers, and the backward writes the
gradient of the projection's output once: rotation by the transposed matrix for q and k,
a copy for v. The same products as :func:`l3_core.model.rope.apply_rotary`; each pair of them
is summed by one ``addcmul`` (so low-precision results may differ from it in the last bit).
"""

from __future__ import annotations

import torch


def rotary_heads(
    qkv: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor, n_heads: int, n_kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q [b, n_heads, s, d], k and v [b, n_kv_heads, s, d] from ``qkv`` [b, s, (n_heads + 2 *
    n_kv_heads) * d], q and k rotated by tables [b, s, d] from :class:`RotaryTable`."""
    d = cos.shape[-1]
    half = d // 2
    c = cos[..., :half].to(qkv.dtype).unsqueeze(2)
    s = signed_sin[..., half:].to(qkv.dtype).unsqueeze(2)
    return _RotaryHeads.apply(qkv, c, s, n_heads, n_kv_heads)


def rotate(
    dst: torch.Tensor, x: torch.Tensor, c: torch.Tensor, s: torch.Tensor, sign: float
) -> None:
    """dst = x rotated by +angle (sign 1) or -angle (sign -1), halves [x0, x1] of the last dim."""
    half = x.shape[-1] // 2
    x0, x1 = x[..., :half], x[..., half:]
    d0, d1 = dst[..., :half], dst[..., half:]
    torch.mul(x0, c, out=d0)
    d0.addcmul_(x1, s, value=-sign)
    torch.mul(x1, c, out=d1)
    d1.addcmul_(x0, s, value=sign)


class _RotaryHeads(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, qkv: torch.Tensor, c: torch.Tensor, s: torch.Tensor, n_heads: int, n_kv_heads: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, seq, width = qkv.shape
        heads = n_heads + 2 * n_kv_heads
        d = width // heads
        x = qkv.view(b, seq, heads, d)
        # Outputs are allocated head-major and filled through a seq-major view of them.
        out = torch.empty(b, heads, seq, d, dtype=qkv.dtype, device=qkv.device)
        dst = out.transpose(1, 2)
        rot = n_heads + n_kv_heads
        rotate(dst[:, :, :rot], x[:, :, :rot], c, s, 1.0)
        dst[:, :, rot:] = x[:, :, rot:]
        ctx.save_for_backward(c, s)
        ctx.sizes = (n_heads, n_kv_heads)
        return tuple(out.split([n_heads, n_kv_heads, n_kv_heads], dim=1))

    @staticmethod
    def backward(ctx, gq: torch.Tensor, gk: torch.Tensor, gv: torch.Tensor):
        c, s = ctx.saved_tensors
        n_heads, n_kv_heads = ctx.sizes
        b, _, seq, d = gq.shape
        heads = n_heads + 2 * n_kv_heads
        grad = torch.empty(b, seq, heads, d, dtype=gq.dtype, device=gq.device)
        rotate(grad[:, :, :n_heads], gq.transpose(1, 2), c, s, -1.0)
        rotate(grad[:, :, n_heads : n_heads + n_kv_heads], gk.transpose(1, 2), c, s, -1.0)
        grad[:, :, n_heads + n_kv_heads :] = gv.transpose(1, 2)
        return grad.view(b, seq, heads * d), None, None, None, None
