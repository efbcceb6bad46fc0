"""Cross-entropy of the output head without materialising the logits of the whole batch.

The head's logits are the largest activation of a training step (``tokens x vocab``, float32 for
the loss). Here they are computed a chunk of rows at a time; each chunk's log-softmax becomes its
gradient in place (``softmax - one_hot``), which is multiplied straight into the gradients of the
hidden states and of the head weight, so the forward pass leaves only those two behind and the
backward pass just scales them. The approach of Liger-Kernel's fused linear cross-entropy, in
plain PyTorch GEMMs.
"""

from __future__ import annotations

import torch

# Rows per chunk = this / vocab (at least 64): float32 logits of 16 MiB on a CPU (they stay in its
# cache between the softmax and the two products), 512 MiB on a GPU (large GEMMs).
_CHUNK_ELEMENTS = {"cpu": 1 << 22}
_DEFAULT_CHUNK_ELEMENTS = 1 << 27


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Mean over non-ignored rows of ``cross_entropy(hidden @ weight.T, targets)``.

    ``hidden`` [n, dim], ``weight`` [vocab, dim], ``targets`` [n] (``ignore_index`` rows add
    nothing). Under autocast the products run in the autocast dtype and the softmax in float32,
    as ``F.cross_entropy(logits.float(), ...)`` on autocast logits does.
    """
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
    with torch.autocast(device, enabled=False):
        return _LinearCrossEntropy.apply(hidden, weight, targets, ignore_index)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int
    ) -> torch.Tensor:
        n = hidden.shape[0]
        vocab = weight.shape[0]
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        valid = targets != ignore_index
        safe = torch.where(valid, targets, 0)
        has_ignored = bool((~valid).any())
        count = valid.sum().clamp(min=1)
        acc = torch.promote_types(hidden.dtype, torch.float32)
        loss = torch.zeros((), dtype=acc, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_grad else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_grad else None
        )
        rows = max(64, _CHUNK_ELEMENTS.get(hidden.device.type, _DEFAULT_CHUNK_ELEMENTS) // vocab)
        for start in range(0, n, rows):
            end = min(n, start + rows)
            h = hidden[start:end]
            logp = torch.log_softmax(torch.mm(h, weight.t()).to(acc), dim=-1)
            t = safe[start:end, None]
            picked = logp.gather(1, t).squeeze(1)
            loss -= torch.where(valid[start:end], picked, 0).sum()
            if grad_hidden is None or grad_weight is None:  # no gradient needed
                continue
            grad = logp.exp_()
            grad.scatter_add_(1, t, torch.full_like(picked, -1.0)[:, None])
            if has_ignored:
                grad.mul_(valid[start:end, None])
            grad = grad.to(hidden.dtype)
            torch.mm(grad, weight, out=grad_hidden[start:end])
            if grad_weight.dtype == h.dtype:
                grad_weight.addmm_(grad.t(), h)
            else:  # low-precision products, summed over chunks in float32
                grad_weight += torch.mm(grad.t(), h)
        if need_grad:
            ctx.save_for_backward(grad_hidden, grad_weight, count)
            ctx.weight_dtype = weight.dtype
        return loss / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight, count = ctx.saved_tensors
        scale = grad_loss / count
        return grad_hidden * scale, (grad_weight * scale).to(ctx.weight_dtype), None, None
