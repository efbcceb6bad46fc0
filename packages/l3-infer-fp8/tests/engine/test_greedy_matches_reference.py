"""Greedy decoding under any mix of concurrent requests equals batch-1 greedy decoding and
transformers' ``LlamaForCausalLM.generate`` on the same weights, token for token (fp32)."""

from __future__ import annotations

import random

import pytest
import torch

from l3_core import save_checkpoint
from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams

transformers = pytest.importorskip("transformers", reason="the reference needs transformers")


def _prompts(rng: random.Random, n: int, vocab: int, shared: list[int]) -> list[list[int]]:
    out = []
    for _ in range(n):
        own = [rng.randrange(vocab) for _ in range(rng.randint(1, 40))]
        out.append((shared if rng.random() < 0.5 else []) + own)
    return out


def _hf_greedy(model, tmp_path, prompt: list[int], n: int) -> list[int]:
    hf = _hf_model(model, tmp_path)
    ids = torch.tensor([prompt])
    out = hf.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    return out[0, len(prompt) :].tolist()


_HF_CACHE: dict[int, object] = {}


def _hf_model(model, tmp_path):
    if id(model) not in _HF_CACHE:
        save_checkpoint(model, tmp_path / "hf", format="hf")
        _HF_CACHE[id(model)] = transformers.LlamaForCausalLM.from_pretrained(
            tmp_path / "hf", torch_dtype=torch.float32, attn_implementation="eager"
        ).eval()
    return _HF_CACHE[id(model)]


def _run_with_random_arrivals(engine: Engine, prompts, params, rng: random.Random):
    pending = list(enumerate(prompts))
    ids: dict[str, int] = {}
    results: dict[int, list[int]] = {i: [] for i in range(len(prompts))}
    while pending or engine.has_unfinished():
        while pending and (not engine.has_unfinished() or rng.random() < 0.4):
            i, p = pending.pop(0)
            ids[engine.add_request(p, params[i])] = i
        for out in engine.step():
            results[ids[out.request_id]].extend(out.new_token_ids)
    return [results[i] for i in range(len(prompts))]


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(block_size=4, num_blocks=24, max_batched_tokens=16, max_running=8),
        EngineConfig(block_size=8, num_blocks=64, max_batched_tokens=64, prefix_caching=False),
        EngineConfig(block_size=16, num_blocks=200, max_batched_tokens=512),
    ],
    ids=["tiny-pool-preempts", "no-prefix-cache", "roomy"],
)
def test_concurrent_greedy_equals_batch1_and_transformers(model, tmp_path, config):
    rng = random.Random(config.block_size)
    shared = [rng.randrange(model.args.vocab_size) for _ in range(13)]
    prompts = _prompts(rng, 10, model.args.vocab_size, shared)
    params = [SamplingParams(max_tokens=rng.randint(1, 14)) for _ in prompts]
    engine = Engine(model, config)
    got = _run_with_random_arrivals(engine, prompts, params, rng)
    alone = [
        Engine(model, EngineConfig(num_blocks=32)).generate([p], sp)[0]
        for p, sp in zip(prompts, params)
    ]
    assert got == alone
    assert [len(g) for g in got] == [sp.max_tokens for sp in params]
    for p, sp, g in zip(prompts[:4], params, got):
        assert g == _hf_greedy(model, tmp_path, p, sp.max_tokens)
    assert engine.allocator.num_used == 0  # every block came back
    if config.num_blocks == 24:
        assert engine.scheduler.preemptions > 0  # the tiny pool really forced recompute


def test_prefix_cache_shares_blocks_of_k_samples(model):
    engine = Engine(model, EngineConfig(block_size=4, num_blocks=64))
    prompt = list(range(1, 30))
    rids = [
        engine.add_request(prompt, SamplingParams(max_tokens=4, temperature=1.0, seed=i))
        for i in range(4)
    ]
    engine.step()  # the first computes the prompt; the rest wait for its blocks
    assert len(engine.scheduler.running) == 1
    engine.step()
    assert len(engine.scheduler.running) == 4
    tables = [engine.requests[r].block_table for r in rids if r in engine.requests]
    full = (len(prompt) - 1) // 4
    assert len({tuple(t[:full]) for t in tables}) == 1
    assert all(engine.allocator.ref_counts[b] == 4 for b in tables[0][:full])
    while engine.has_unfinished():
        engine.step()
    assert engine.allocator.num_used == 0


def test_long_prompt_is_prefilled_in_chunks_while_others_decode(model):
    engine = Engine(model, EngineConfig(block_size=8, num_blocks=64, max_batched_tokens=24))
    short = engine.add_request([5, 6, 7], SamplingParams(max_tokens=20))
    engine.step()
    long_id = engine.add_request(list(range(100, 300)), SamplingParams(max_tokens=2))
    short_tokens = 0
    for _ in range(5):  # the 200-token prompt needs about 9 steps at 24 tokens a step
        short_tokens += sum(len(o.new_token_ids) for o in engine.step() if o.request_id == short)
    assert short_tokens == 5  # decoding never stalled behind the long prefill
    assert 0 < engine.requests[long_id].num_computed < 200
