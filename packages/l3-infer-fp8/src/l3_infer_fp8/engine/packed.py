"""oneDNN pre-packed copies of the plain projection weights, for the engine's batched steps.

With several rows per step (a batch of decodes, prefill chunks) the CPU's ``F.linear`` repacks
tiles of each weight on every call; reordering each matrix once into oneDNN's blocked layout
(what ``torch.compile``'s weight freezing does, and l3-core's bfloat16 decode path) made the
projections of a 20M-parameter model's step 2.0-2.3x faster at 8 to 1024 rows on the project's
CPU, float32 included (results agree with ``F.linear`` to rounding: the sums run in another
order). One row is memory-bound and gains nothing, so it stays on ``F.linear``.

Only plain ``nn.Linear`` weights (or their stacked copies) are packed; replaced modules never
reach here. A packed copy is kept per named slot (``"3.qkv"``) with the weight's storage and
version counter, so an in-place update (``load_state_dict``, an optimizer step) repacks it;
writes through ``.data`` bypass version counters, as for l3-core's packed weights: call
:meth:`PackedLinears.release` after them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Packed copies double the projections' memory; beyond this, weights are read in place.
MAX_PACKED_BYTES = 4 * 2**30


def _supported(dtype: torch.dtype) -> bool:
    if not (
        torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    ):
        return False
    if dtype == torch.float32:
        return True
    return dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class PackedLinears:
    def __init__(self, max_bytes: int = MAX_PACKED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._slots: dict[str, tuple[tuple, torch.Tensor]] = {}
        self._bytes = 0

    def linear(self, slot: str, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``F.linear(x, weight)`` for 2-D ``x``, by ``slot``'s packed copy of ``weight`` where
        there is one (CPU, float32 or bfloat16, more than one row, within the budget)."""
        packed = self._packed(slot, weight) if x.dim() == 2 and x.shape[0] > 1 else None
        if packed is None or x.dtype != weight.dtype:
            return F.linear(x, weight)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, None, "none", [], "")

    def _packed(self, slot: str, weight: torch.Tensor) -> torch.Tensor | None:
        key = (weight.data_ptr(), weight._version, weight.dtype, tuple(weight.shape))
        entry = self._slots.get(slot)
        if entry is not None and entry[0] == key:
            return entry[1]
        if weight.device.type != "cpu" or weight.dim() != 2 or not _supported(weight.dtype):
            return None
        size = weight.numel() * weight.element_size()
        if entry is None and self._bytes + size > self.max_bytes:
            return None
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach())
        if entry is None:
            self._bytes += size
        self._slots[slot] = (key, packed)
        return packed

    def release(self) -> None:
        """Drop every packed copy (rebuilt on the next step)."""
        self._slots.clear()
        self._bytes = 0
