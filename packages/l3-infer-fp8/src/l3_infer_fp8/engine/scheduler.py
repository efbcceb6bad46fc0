"""Continuous batching: which requests run this step, and with how many tokens.

Every step, running requests go first in arrival order (one token each when decoding, a
chunk when still prefilling), then waiting ones are admitted while the token budget, the
running limit and the block pool allow. When a running request needs a block and none is
free, the latest-arrived running request is preempted: its blocks are freed and it waits at
the front of the queue to be recomputed (its generated tokens are kept, and prefix caching
usually finds its full blocks again).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from l3_infer_fp8.engine.blocks import BlockAllocator, block_hash
from l3_infer_fp8.engine.config import EngineConfig
from l3_infer_fp8.engine.request import Request, Status
from l3_infer_fp8.errors import QueueFullError


@dataclass
class Scheduled:
    request: Request
    num_tokens: int


class Scheduler:
    def __init__(self, config: EngineConfig, allocator: BlockAllocator) -> None:
        self.config = config
        self.allocator = allocator
        self.bs = allocator.block_size
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.preemptions = 0

    def add(self, request: Request) -> None:
        if len(self.waiting) >= self.config.max_waiting:
            raise QueueFullError(
                f"the waiting queue is full ({self.config.max_waiting} requests): retry later"
            )
        self.waiting.append(request)

    def schedule(self) -> list[Scheduled]:
        budget = self.config.max_batched_tokens
        out: list[Scheduled] = []
        for req in sorted(self.running, key=lambda r: r.arrival):
            if budget == 0:
                break
            if req.status is not Status.RUNNING:
                continue  # preempted earlier in this loop
            n = min(req.num_tokens - req.num_computed, budget)
            if not self._make_room(req, req.num_computed + n):
                continue  # req itself was preempted
            out.append(Scheduled(req, n))
            budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.config.max_running:
            req = self.waiting[0]
            if req.num_computed == 0 and self.config.prefix_caching:
                self._reuse_prefix(req)
                if self._prefix_in_flight(req):
                    self._release(req)  # wait for the running request to fill the block
                    break
            n = min(req.num_tokens - req.num_computed, budget)
            if not self._grow(req, req.num_computed + n):
                self._release(req)
                break
            self.waiting.popleft()
            req.status = Status.RUNNING
            self.running.append(req)
            out.append(Scheduled(req, n))
            budget -= n
        return out

    def after_step(self, req: Request) -> None:
        """Register the request's newly filled blocks in the prefix table."""
        if not self.config.prefix_caching:
            return
        ids = None
        while (req.num_hashed_blocks + 1) * self.bs <= req.num_computed:
            ids = ids if ids is not None else req.all_ids
            i = req.num_hashed_blocks
            req.last_hash = block_hash(req.last_hash, ids[i * self.bs : (i + 1) * self.bs])
            self.allocator.register(req.block_table[i], req.last_hash)
            req.num_hashed_blocks += 1

    def finish(self, req: Request) -> None:
        """Remove a finished or aborted request from whichever queue holds it."""
        if req in self.running:
            self.running.remove(req)
        elif req in self.waiting:
            self.waiting.remove(req)
        self._release(req)
        req.status = Status.FINISHED

    # -- blocks ----------------------------------------------------------------------------------

    def _make_room(self, req: Request, tokens: int) -> bool:
        """Give ``req`` blocks for ``tokens``, preempting later requests (or ``req`` itself)."""
        while not self._grow(req, tokens):
            victim = max(self.running, key=lambda r: r.arrival)
            self._preempt(victim)
            if victim is req:
                return False
        return True

    def _grow(self, req: Request, tokens: int) -> bool:
        while len(req.block_table) * self.bs < tokens:
            block = self.allocator.allocate()
            if block is None:
                return False
            req.block_table.append(block)
        return True

    def _reuse_prefix(self, req: Request) -> None:
        # Leave at least one token to compute: its logits give the next token.
        ids = req.all_ids
        for i in range((len(ids) - 1) // self.bs):
            h = block_hash(req.last_hash, ids[i * self.bs : (i + 1) * self.bs])
            block = self.allocator.lookup(h)
            if block is None:
                break
            req.block_table.append(block)
            req.last_hash = h
            req.num_hashed_blocks += 1
        req.num_computed = len(req.block_table) * self.bs

    def _prefix_in_flight(self, req: Request) -> bool:
        """Whether a running request is computing the next full block of ``req``'s prefix
        right now (so that K samples of one prompt share its blocks instead of racing)."""
        j, ids = req.num_hashed_blocks, req.all_ids
        if (j + 1) * self.bs > len(ids) - 1:
            return False
        block = ids[j * self.bs : (j + 1) * self.bs]
        return any(
            r.num_computed < r.num_tokens
            and r.num_hashed_blocks == j
            and r.last_hash == req.last_hash
            and r.all_ids[j * self.bs : (j + 1) * self.bs] == block
            for r in self.running
        )

    def _preempt(self, req: Request) -> None:
        self.running.remove(req)
        self._release(req)
        req.status = Status.WAITING
        req.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(req)

    def _release(self, req: Request) -> None:
        self.allocator.free_all(req.block_table)
        req.block_table = []
        req.num_computed = 0
        req.num_hashed_blocks = 0
        req.last_hash = None
