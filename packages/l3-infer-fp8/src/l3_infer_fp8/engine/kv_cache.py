"""The paged KV cache: keys and values of every layer in fixed-size blocks.

Layout [layers, blocks, block_size, kv_heads, head_dim]; a token's slot is
``block * block_size + offset``, so writing a step's keys is one indexed copy per layer and
reading a sequence's keys is a gather over its block table.
"""

from __future__ import annotations

import torch

from l3_core.args import ModelArgs


class PagedKVCache:
    def __init__(
        self,
        args: ModelArgs,
        num_blocks: int,
        block_size: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (args.n_layers, num_blocks, block_size, args.kv_heads, args.head_dim)
        self.block_size = block_size
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @staticmethod
    def bytes_per_block(args: ModelArgs, block_size: int, dtype: torch.dtype) -> int:
        itemsize = torch.empty((), dtype=dtype).element_size()
        return 2 * args.n_layers * block_size * args.kv_heads * args.head_dim * itemsize

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``, ``v`` [tokens, kv_heads, head_dim] at flat ``slots`` [tokens]."""
        self.k[layer].flatten(0, 1).index_copy_(0, slots, k)
        self.v[layer].flatten(0, 1).index_copy_(0, slots, v)

    def gather(
        self, layer: int, tables: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [seqs, kv_heads, length, head_dim] of the sequences whose padded
        block tables are ``tables`` [seqs, blocks]."""
        k = self.k[layer][tables].flatten(1, 2)[:, :length]
        v = self.v[layer][tables].flatten(1, 2)[:, :length]
        return k.transpose(1, 2), v.transpose(1, 2)
