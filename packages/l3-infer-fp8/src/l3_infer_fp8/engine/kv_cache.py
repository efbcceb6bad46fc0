"""The paged KV cache: keys and values of every layer in fixed-size blocks.

Layout [layers, blocks, block_size, kv_heads, head_dim]; a token's slot is
``block * block_size + offset``, so writing a step's keys is one indexed copy per layer and
reading the keys of a batch of sequences is one gather of their flat slots.
"""

from __future__ import annotations

import torch

from l3_core.args import ModelArgs


class PagedKVCache:
    """``n_layers``: how many layers this cache holds (a pipeline stage holds only its own)."""

    def __init__(
        self,
        args: ModelArgs,
        num_blocks: int,
        block_size: int,
        dtype: torch.dtype,
        device: torch.device,
        n_layers: int | None = None,
    ) -> None:
        layers = args.n_layers if n_layers is None else n_layers
        shape = (layers, num_blocks, block_size, args.kv_heads, args.head_dim)
        self.block_size = block_size
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        # [layers, slots, kv_heads, head_dim] views of the same memory
        self.k_slots = self.k.flatten(1, 2)
        self.v_slots = self.v.flatten(1, 2)

    @staticmethod
    def bytes_per_block(args: ModelArgs, block_size: int, dtype: torch.dtype) -> int:
        itemsize = torch.empty((), dtype=dtype).element_size()
        return 2 * args.n_layers * block_size * args.kv_heads * args.head_dim * itemsize

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``, ``v`` [tokens, kv_heads, head_dim] at flat ``slots`` [tokens]."""
        self.k_slots[layer].index_copy_(0, slots, k)
        self.v_slots[layer].index_copy_(0, slots, v)

    def gather_slots(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [*slots.shape, kv_heads, head_dim] at flat ``slots``."""
        shape = (*slots.shape, *self.k.shape[-2:])
        flat = slots.flatten()
        k = self.k_slots[layer].index_select(0, flat).view(shape)
        v = self.v_slots[layer].index_select(0, flat).view(shape)
        return k, v
