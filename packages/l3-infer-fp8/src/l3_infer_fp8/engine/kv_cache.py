"""The paged KV cache: keys and values of every layer in fixed-size blocks.

Layout [layers, kv_heads, blocks * block_size, head_dim]; a token's slot is
``block * block_size + offset``, so writing a step's keys is one indexed copy per layer, and
reading the keys of a batch of sequences is one gather of their flat slots that lands in the
[kv_heads * seqs, keys, head_dim] layout the attention GEMMs read (no copy after it).
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
        shape = (layers, args.kv_heads, num_blocks * block_size, args.head_dim)
        self.block_size = block_size
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @staticmethod
    def bytes_per_block(args: ModelArgs, block_size: int, dtype: torch.dtype) -> int:
        itemsize = torch.empty((), dtype=dtype).element_size()
        return 2 * args.n_layers * block_size * args.kv_heads * args.head_dim * itemsize

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``, ``v`` [tokens, kv_heads, head_dim] at flat ``slots`` [tokens]."""
        self.k[layer].index_copy_(1, slots, k.transpose(0, 1))
        self.v[layer].index_copy_(1, slots, v.transpose(0, 1))

    def gather_slots(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [kv_heads * seqs, keys, head_dim] at flat ``slots`` [seqs, keys]
        (kv-head-major: row ``h * seqs + i`` holds head ``h`` of sequence ``i``)."""
        rows = self.k.shape[1] * slots.shape[0]
        flat = slots.flatten()
        k = self.k[layer].index_select(1, flat).view(rows, slots.shape[1], -1)
        v = self.v[layer].index_select(1, flat).view(rows, slots.shape[1], -1)
        return k, v
