"""Causal grouped-query attention as blocked GEMMs, for CPUs.

PyTorch's CPU flash-attention kernel spends most of its time outside matrix units; at the
sequence lengths a CPU trains on, it is faster to compute the probabilities of each block of
queries with batched GEMMs against only the keys it can see (the causal upper triangle is
skipped block by block) and to keep them for the backward pass, the way the math backend does
but without its full square of scores. The query heads that share a key/value head are stacked
into one GEMM (no repeated K/V). The GEMMs run in the input dtype; the softmax accumulates and
the backward's ``dP - rowsum(dO * O)`` is formed in at least float32.

Memory: the kept probabilities take about ``batch * heads * seq**2 / 2`` elements per layer,
so :func:`fits` bounds them and longer sequences go to SDPA.
"""

from __future__ import annotations

import torch

BLOCK = 64
_MAX_SAVED_BYTES = 128 * 2**20


def fits(q: torch.Tensor, needs_grad: bool) -> bool:
    """Whether blocked attention suits ``q`` [b, heads, s, head_dim] (CPU, within memory)."""
    if q.device.type != "cpu":
        return False
    b, h, s, _ = q.shape
    return not needs_grad or b * h * s * (s + BLOCK) // 2 * q.element_size() <= _MAX_SAVED_BYTES


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal) v for q [b, h, s, d] and k, v [b, kv, s, d]."""
    with torch.autocast(q.device.type, enabled=False):  # dtypes are chosen here, not by autocast
        return _BlockedCausalAttention.apply(q, k, v, torch.is_grad_enabled())


def _diagonal_bias(n: int, device: torch.device) -> torch.Tensor:
    return torch.full((n, n), float("-inf"), device=device).triu_(1)


def _accumulate(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc += a @ b (batched), in place where the dtypes allow."""
    if a.dtype == acc.dtype:
        acc.baddbmm_(a, b)
    else:
        acc += torch.bmm(a, b)


class _BlockedCausalAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: bool) -> torch.Tensor:
        b, h, s, d = q.shape
        kv = k.shape[1]
        g = h // kv
        # Queries of one K/V head stacked: rows [g * n] per block, one batched GEMM per block.
        qs = (q * d**-0.5).view(b, kv, g, s, d)
        kf = k.reshape(b * kv, s, d)
        vf = v.reshape(b * kv, s, d)
        # Written sequence-major, so that the caller's [b, s, h * d] view of it is free.
        out = torch.empty(b, s, kv, g, d, dtype=q.dtype, device=q.device)
        bias = _diagonal_bias(BLOCK, q.device)
        probs = []
        for start in range(0, s, BLOCK):
            end = min(s, start + BLOCK)
            n = end - start
            qb = qs[:, :, :, start:end].reshape(b * kv, g * n, d)
            scores = torch.bmm(qb, kf[:, :end].transpose(1, 2))
            scores.view(b * kv, g, n, end)[..., start:end] += bias[:n, :n]
            p = torch.softmax(scores, dim=-1)  # accumulates in float32 for low-precision inputs
            block = torch.bmm(p, vf[:, :end]).view(b, kv, g, n, d)
            out[:, start:end] = block.permute(0, 3, 1, 2, 4)
            if keep:
                probs.append(p)
        ctx.save_for_backward(qs, kf, vf, out, *probs)
        return out.view(b, s, h, d).transpose(1, 2)

    @staticmethod
    def backward(
        ctx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        with torch.autocast(grad_out.device.type, enabled=False):
            return _BlockedCausalAttention._backward(ctx, grad_out)

    @staticmethod
    def _backward(
        ctx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        qs, kf, vf, out, *probs = ctx.saved_tensors
        b, kv, g, s, d = qs.shape
        acc = torch.promote_types(qs.dtype, torch.float32)
        go = grad_out.transpose(1, 2).reshape(b, s, kv, g, d)  # a view when it came as we gave it
        # softmax backward: dS = P * (dP - rowsum(dO * O)), rows in [b, s, kv, g] order
        delta = (go.to(acc) * out.to(acc)).sum(-1)
        dq = torch.empty_like(qs)
        dk = torch.zeros(b * kv, s, d, dtype=acc, device=qs.device)
        dv = torch.zeros(b * kv, s, d, dtype=acc, device=qs.device)
        for p, start in zip(probs, range(0, s, BLOCK)):
            end = min(s, start + BLOCK)
            n = end - start
            gob = go[:, start:end].permute(0, 2, 3, 1, 4).reshape(b * kv, g * n, d)
            _accumulate(dv[:, :end], p.transpose(1, 2), gob)
            dp = torch.bmm(gob, vf[:, :end].transpose(1, 2))
            row_delta = delta[:, start:end].permute(0, 2, 3, 1).reshape(b * kv, g, n, 1)
            dp4 = dp.view(b * kv, g, n, end)
            if dp.dtype == acc:
                ds = dp4.sub_(row_delta).view_as(dp).mul_(p)
            else:  # the difference in float32, rounded once into the GEMM dtype
                ds = torch.empty_like(dp)
                torch.mul(torch.sub(dp4, row_delta).view_as(dp), p, out=ds)
            dq[:, :, :, start:end] = torch.bmm(ds, kf[:, :end]).view(b, kv, g, n, d)
            qb = qs[:, :, :, start:end].reshape(b * kv, g * n, d)
            _accumulate(dk[:, :end], ds.transpose(1, 2), qb)
        dq = (dq * d**-0.5).view(b, kv * g, s, d)
        return dq, dk.view(b, kv, s, d).to(qs.dtype), dv.view(b, kv, s, d).to(qs.dtype), None
