"""Allocator invariants under random operation sequences: no block leaked or double-freed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.blocks import BlockAllocator, BlockError, block_hash

OPS = st.lists(
    st.tuples(st.sampled_from(["alloc", "free", "lookup", "register"]), st.integers(0, 1000)),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_reference_counts_match_a_model_of_the_owners(ops):
    a = BlockAllocator(num_blocks=8, block_size=4)
    held: list[int] = []  # one entry per reference we own
    for op, x in ops:
        if op == "alloc":
            b = a.allocate()
            assert (b is None) == (len(set(held)) == 8)
            if b is not None:
                assert b not in held  # a fresh block is never one somebody holds
                held.append(b)
        elif op == "free" and held:
            a.free(held.pop(x % len(held)))
        elif op == "register" and held:
            a.register(held[x % len(held)], x % 5)
        elif op == "lookup":
            b = a.lookup(x % 5)
            if b is not None:
                held.append(b)
        for block in range(8):
            assert a.ref_counts[block] == held.count(block)
        assert a.num_used == len(set(held)) and a.num_free == 8 - len(set(held))
    for b in list(held):
        a.free(b)
    assert a.num_free == 8


def test_double_free_is_an_error():
    a = BlockAllocator(2, 4)
    b = a.allocate()
    a.free(b)
    with pytest.raises(BlockError, match="reference count 0"):
        a.free(b)


def test_a_freed_full_block_is_found_until_it_is_reused():
    a = BlockAllocator(2, 4)
    b = a.allocate()
    h = block_hash(None, [1, 2, 3, 4])
    a.register(b, h)
    a.free(b)
    assert a.lookup(h) == b and a.ref_counts[b] == 1
    a.free(b)
    a.allocate()
    a.allocate()  # the oldest free block was handed out again: its prefix is gone
    assert a.lookup(h) is None


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31))
def test_engine_returns_every_block_after_random_work_with_aborts(model, seed):
    rng = random.Random(seed)
    engine = Engine(model, EngineConfig(block_size=4, num_blocks=20, max_batched_tokens=12))
    prefix = [rng.randrange(512) for _ in range(9)]
    for _ in range(6):
        prompt = prefix[: rng.randint(0, 9)] + [
            rng.randrange(512) for _ in range(rng.randint(1, 12))
        ]
        engine.add_request(prompt, SamplingParams(max_tokens=rng.randint(1, 6)))
    for _ in range(200):
        if not engine.has_unfinished():
            break
        engine.step()
        if rng.random() < 0.2 and engine.requests:
            engine.abort(rng.choice(list(engine.requests)))
        used = {b for r in engine.requests.values() for b in r.block_table}
        assert engine.allocator.num_used == len(used)
    assert not engine.has_unfinished()
    assert engine.allocator.num_used == 0 and engine.allocator.num_free == 20
