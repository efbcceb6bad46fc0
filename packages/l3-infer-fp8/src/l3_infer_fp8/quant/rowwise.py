"""Row-wise FP8 (e4m3) quantisation, as section 6.2 of the Llama 3 paper serves it.

Weights get one scale per output row (``amax(row) / 448``); activations get one dynamic scale
per token (row) whose amax is clamped at an upper bound (1200 by default, as fbgemm's
``scale_ub`` and vLLM's ``activation_scale_ub``), so one outlier token cannot push its scale
out of range. Scales are float32 and satisfy ``x ~= q * scale`` row by row.

Edge cases, on purpose:

- A zero row has ``amax == 0``: its amax is floored at :data:`AMAX_FLOOR` (fbgemm's epsilon),
  so the scale is tiny and positive, the codes are 0 and the product is exactly 0, never NaN.
- Values beyond ``448 * scale`` (an activation above the bound, or ``inf``) saturate at
  +-448 before the cast: e4m3fn has no infinity, and a plain cast of an overflow would give NaN.
- A NaN in an activation row stays NaN (its scale is NaN): the bf16 product of that row would
  be NaN too, and hiding it would be silent corruption.
- Non-finite weights are refused (:func:`quantize_weight` raises), since no scale represents
  them.
"""

from __future__ import annotations

import torch

from l3_infer_fp8.errors import InferConfigError, InferModelError

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
AMAX_FLOOR = 1e-12
DEFAULT_BOUND = 1200.0


def check_bound(bound: float) -> float:
    """``bound`` as a float, or an error if it is not a positive finite number."""
    bound = float(bound)
    if not (bound > 0 and bound != float("inf")):
        raise InferConfigError(f"activation bound must be a positive finite number, got {bound}")
    return bound


def _codes(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)


def quantize_weight(
    weight: torch.Tensor, name: str = "weight"
) -> tuple[torch.Tensor, torch.Tensor]:
    """FP8 codes [out, in] and float32 scales [out, 1] of a linear weight, one per output row."""
    if weight.dim() != 2:
        raise InferModelError(f"{name}: expected a 2-D weight, got shape {tuple(weight.shape)}")
    w = weight.detach().float()
    if not bool(torch.isfinite(w).all()):
        rows = torch.nonzero(~torch.isfinite(w).all(dim=1)).flatten()[:5].tolist()
        raise InferModelError(f"{name}: non-finite values in rows {rows}; cannot quantise")
    amax = w.abs().amax(dim=1, keepdim=True).clamp(min=AMAX_FLOOR)
    scale = amax / FP8_MAX
    return _codes(w, scale), scale


def quantize_activation(
    x: torch.Tensor, bound: float = DEFAULT_BOUND
) -> tuple[torch.Tensor, torch.Tensor]:
    """FP8 codes [m, k] and float32 scales [m, 1] of activations [m, k], one per token.

    The amax of each row is clamped to ``[AMAX_FLOOR, bound]``; values past the bound saturate.
    """
    x = x.float()
    amax = x.abs().amax(dim=1, keepdim=True).clamp(min=AMAX_FLOOR, max=bound)
    scale = amax / FP8_MAX
    return _codes(x, scale), scale


def dequantize(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 values ``codes * scale`` (row-wise scales [rows, 1])."""
    return codes.float() * scale
