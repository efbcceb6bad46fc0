"""l3-infer-fp8's paged continuous-batching engine vs transformers' ``generate`` on the same
weights (CPU, fp32, same run).

Prints batch-1 greedy decode tokens/s, and total generated tokens/s at 8 and 32 concurrent
requests (ours: all submitted at once to the engine, which batches them continuously;
transformers: one static left-padded batch through ``generate``). Every request generates
exactly ``--new-tokens`` tokens (no stop ids), so both sides do the same work. The goal is at
least 3x transformers' tokens/s at 32 concurrent requests.

    python benchmarks/bench_infer_engine.py [--preset llama3-20m] [--new-tokens 64] [--small]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_peak, report

from l3_core import ModelArgs, Transformer, save_checkpoint
from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams


def prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(rng.randint(16, 64))] for _ in range(n)]


def ours(model: Transformer, batch: list[list[int]], new_tokens: int) -> float:
    engine = Engine(model, EngineConfig(block_size=16, max_running=64, max_batched_tokens=1024))
    t0 = time.perf_counter()
    out = engine.generate(batch, SamplingParams(max_tokens=new_tokens, ignore_eos=True))
    elapsed = time.perf_counter() - t0
    assert all(len(o) == new_tokens for o in out)
    return sum(map(len, out)) / elapsed


@torch.inference_mode()
def peer(hf: LlamaForCausalLM, batch: list[list[int]], new_tokens: int) -> float:
    width = max(map(len, batch))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    t0 = time.perf_counter()
    out = hf.generate(
        ids,
        attention_mask=mask,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    elapsed = time.perf_counter() - t0
    return (out.shape[1] - width) * len(batch) / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="llama3-20m")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--small", action="store_true", help="a quick correctness run (tiny model)")
    opts = p.parse_args(argv)
    preset = "llama3-tiny" if opts.small else opts.preset
    new_tokens = 8 if opts.small else opts.new_tokens
    args = ModelArgs.from_preset(preset)
    model = Transformer.build(args, dtype=torch.float32, seed=0).eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, Path(tmp) / "hf", format="hf")
        hf = LlamaForCausalLM.from_pretrained(Path(tmp) / "hf", torch_dtype=torch.float32).eval()
    print(
        f"{preset}, fp32, {torch.get_num_threads()} threads, "
        f"matmul peak {machine_peak(torch.float32) / 1e9:.0f} GFLOP/s, torch {torch.__version__}"
    )
    for n in (1, 8, 32):
        batch = prompts(n, args.vocab_size)
        ours(model, batch, 2), peer(hf, batch, 2)  # warm-up
        report(
            f"greedy decode, {n} concurrent (tokens/s)",
            ours(model, batch, new_tokens),
            peer(hf, batch, new_tokens),
            "tok/s",
            "transformers",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
