"""Pipeline-parallel inference: two spawned gloo processes give the greedy outputs of one
process, with and without micro-batching (chunked prefill, preemption and random arrivals
included); the split and wire helpers are exact."""

from __future__ import annotations

import json
import random
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from infer_helpers import tiny_model

from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.pipeline import (
    PipelineRunner,
    decode_chunks,
    encode_chunks,
    serve_stage,
    split_layers,
    split_micro_batches,
)
from l3_infer_fp8.engine.step_batch import Chunk
from l3_infer_fp8.errors import InferConfigError

CONFIG = EngineConfig(block_size=4, num_blocks=16, max_batched_tokens=24, max_running=6)
MICRO_BATCHES = (1, 3)
TIMEOUT_S = 120


def _workload(vocab: int) -> tuple[list[list[int]], list[SamplingParams]]:
    rng = random.Random(7)
    prompts = [[rng.randrange(vocab) for _ in range(rng.randint(1, 30))] for _ in range(9)]
    return prompts, [SamplingParams(max_tokens=rng.randint(1, 12)) for _ in prompts]


def _run(engine: Engine, prompts, params) -> list[list[int]]:
    # Arrivals spread over the steps, so prefill chunks and decodes share micro-batches.
    pending = list(enumerate(prompts))
    ids: dict[str, int] = {}
    out: dict[int, list[int]] = {i: [] for i in range(len(prompts))}
    while pending or engine.has_unfinished():
        if pending:
            i, p = pending.pop(0)
            ids[engine.add_request(p, params[i])] = i
        for o in engine.step():
            out[ids[o.request_id]].extend(o.new_token_ids)
    return [out[i] for i in range(len(prompts))]


def _worker(rank: int, world: int, port: int, result_path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=TIMEOUT_S),
    )
    try:
        model = tiny_model()
        if rank != 0:
            for _ in MICRO_BATCHES:
                serve_stage(model)
            return
        prompts, params = _workload(model.args.vocab_size)
        results = {}
        for m in MICRO_BATCHES:
            engine = Engine(model, CONFIG, make_runner=PipelineRunner.factory(model, m))
            results[m] = _run(engine, prompts, params)
            results[f"{m}-preemptions"] = engine.scheduler.preemptions
            results[f"{m}-free"] = engine.allocator.num_used == 0
            engine.runner.close()
        with open(result_path, "w") as f:
            json.dump(results, f)
    finally:
        dist.barrier()  # no rank tears its connections down while another still uses them
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_stages_equal_one_process_with_and_without_micro_batches(tmp_path):
    path = tmp_path / "result.json"
    ctx = mp.start_processes(
        _worker, args=(2, _free_port(), str(path)), nprocs=2, join=False, start_method="spawn"
    )
    try:
        while not ctx.join(timeout=TIMEOUT_S):
            pass
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    results = json.loads(path.read_text())
    model = tiny_model()
    prompts, params = _workload(model.args.vocab_size)
    alone = _run(Engine(model, CONFIG), prompts, params)
    assert [len(a) for a in alone] == [p.max_tokens for p in params]
    for m in MICRO_BATCHES:
        assert results[str(m)] == alone, f"{m} micro-batches"
        assert results[f"{m}-preemptions"] > 0  # the small pool forced recompute
        assert results[f"{m}-free"]


def test_split_layers_covers_every_layer_once():
    assert split_layers(8, 3) == [range(0, 3), range(3, 6), range(6, 8)]
    assert split_layers(2, 2) == [range(0, 1), range(1, 2)]
    with pytest.raises(InferConfigError, match="stages must be in 1..2"):
        split_layers(2, 3)


def test_micro_batches_keep_order_and_balance_tokens():
    chunks = [Chunk([1] * n, 0, [0], True) for n in (1, 1, 6, 1, 1, 1, 1)]
    groups = split_micro_batches(chunks, 3)
    assert [c for g in groups for c in g] == chunks
    assert [sum(len(c.tokens) for c in g) for g in groups] == [2, 6, 4]
    assert split_micro_batches(chunks[:1], 4) == [chunks[:1]]


def test_chunks_round_trip_the_wire_format():
    chunks = [Chunk([5, 6, 7], 4, [3, 9], False), Chunk([8], 11, [1, 2, 4], True)]
    assert decode_chunks(encode_chunks(chunks)) == chunks


def test_pipeline_runner_needs_a_process_group():
    with pytest.raises(InferConfigError, match="torch.distributed initialised"):
        PipelineRunner(tiny_model(), 8, 4, 2, 512)
