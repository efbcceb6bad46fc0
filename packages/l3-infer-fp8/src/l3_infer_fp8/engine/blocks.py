"""The KV block allocator: a free list, reference counts and a hash table of full blocks.

A block is either in use (reference count > 0) or free. A free block that was full keeps its
contents and its prefix hash until it is handed out again, so a later request with the same
prefix finds it (prefix caching); free blocks are reused oldest-freed first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from l3_infer_fp8.errors import InferError


class BlockError(InferError):
    """A block was freed more often than it was taken: an engine bug, never bad input."""


def block_hash(parent: int | None, tokens: Sequence[int]) -> int:
    """The identity of a full block: its tokens and everything before them (the parent chain)."""
    return hash((parent, tuple(tokens)))


class BlockAllocator:
    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise BlockError(f"num_blocks {num_blocks} and block_size {block_size} must be > 0")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.ref_counts = [0] * num_blocks
        # block id -> None, in the order blocks became free (oldest first).
        self._free: OrderedDict[int, None] = OrderedDict((b, None) for b in range(num_blocks))
        self._by_hash: dict[int, int] = {}
        self._hash_of: dict[int, int] = {}

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self._free)

    def allocate(self) -> int | None:
        """A fresh block with reference count 1, or None when every block is in use."""
        if not self._free:
            return None
        block, _ = self._free.popitem(last=False)
        self._forget_hash(block)
        self.ref_counts[block] = 1
        return block

    def lookup(self, h: int) -> int | None:
        """Take a reference to the cached full block with hash ``h``, if there is one."""
        block = self._by_hash.get(h)
        if block is None:
            return None
        if self.ref_counts[block] == 0:
            del self._free[block]
        self.ref_counts[block] += 1
        return block

    def register(self, block: int, h: int) -> None:
        """Record that ``block`` (in use, now full) holds the prefix with hash ``h``."""
        if h in self._by_hash or block in self._hash_of:
            return  # another block already caches this prefix: keep the first
        self._by_hash[h] = block
        self._hash_of[block] = h

    def free(self, block: int) -> None:
        """Drop one reference; at zero the block joins the free list (its cached prefix kept)."""
        if self.ref_counts[block] <= 0:
            raise BlockError(f"block {block} freed with reference count {self.ref_counts[block]}")
        self.ref_counts[block] -= 1
        if self.ref_counts[block] == 0:
            self._free[block] = None

    def free_all(self, blocks: Sequence[int]) -> None:
        # Last block first, so that a prefix's head outlives its tail in the free list.
        for block in reversed(blocks):
            self.free(block)

    def _forget_hash(self, block: int) -> None:
        h = self._hash_of.pop(block, None)
        if h is not None:
            del self._by_hash[h]
