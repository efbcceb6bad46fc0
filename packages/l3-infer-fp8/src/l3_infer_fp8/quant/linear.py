"""``Fp8RowwiseLinear``: a bias-free linear with FP8 e4m3 weights (a scale per output row) and
dynamic FP8 activations (a scale per token, its amax clamped at ``bound``)."""

from __future__ import annotations

import torch
from torch import nn

from l3_infer_fp8.errors import InferModelError
from l3_infer_fp8.quant.backends import Backend, select_backend
from l3_infer_fp8.quant.rowwise import (
    DEFAULT_BOUND,
    FP8_DTYPE,
    check_bound,
    quantize_activation,
    quantize_weight,
)


class Fp8RowwiseLinear(nn.Module):
    """Computes ``x @ W.T`` as ``(q(x) @ q(W).T) * s_x * s_W.T`` in ``x``'s dtype.

    State: ``weight`` (float8_e4m3fn [out, in]) and ``weight_scale`` (float32 [out, 1]), so a
    quantised model's state dict is its pre-quantised checkpoint.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bound: float = DEFAULT_BOUND,
        backend: str = "auto",
        fast_accum: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bound = check_bound(bound)
        self.backend_name = backend
        self.fast_accum = fast_accum
        self.register_buffer(
            "weight", torch.zeros(out_features, in_features, dtype=FP8_DTYPE, device=device)
        )
        self.register_buffer(
            "weight_scale", torch.ones(out_features, 1, dtype=torch.float32, device=device)
        )
        self._backend: Backend | None = None
        self._backend_device: torch.device | None = None

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        bound: float = DEFAULT_BOUND,
        backend: str = "auto",
        fast_accum: bool = True,
        name: str = "weight",
    ) -> Fp8RowwiseLinear:
        """The quantised copy of a bias-free ``linear`` (its weight quantised row by row)."""
        if linear.bias is not None:
            raise InferModelError(f"{name}: has a bias; Fp8RowwiseLinear (the Llama FFN) has none")
        weight = linear.weight
        module = cls(
            linear.in_features,
            linear.out_features,
            bound,
            backend,
            fast_accum,
            device=weight.device,
        )
        codes, scale = quantize_weight(weight, name)
        module.weight.copy_(codes)
        module.weight_scale.copy_(scale)
        return module

    def backend(self) -> Backend:
        """The GEMM backend for the weight's current device (chosen again after a move)."""
        device = self.weight.device
        if self._backend is None or self._backend_device != device:
            self._backend = select_backend(
                device, self.out_features, self.in_features, self.backend_name
            )
            self._backend_device = device
        return self._backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        qx, sx = quantize_activation(rows, self.bound)
        out = self.backend().matmul(
            qx, sx, self.weight, self.weight_scale, x.dtype, self.fast_accum
        )
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bound={self.bound:g}, backend={self.backend_name}"
        )
