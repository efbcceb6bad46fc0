"""l3-infer-fp8's paged continuous-batching engine vs transformers' ``generate`` on the same
weights (CPU, fp32, same run).

Prints batch-1 greedy decode tokens/s, and total generated tokens/s at 8 and 32 concurrent
requests (ours: all submitted at once to the engine, which batches them continuously;
transformers: one static left-padded batch through ``generate``). Every request generates
exactly ``--new-tokens`` tokens (no stop ids), so both sides do the same work. The goal is at
least 3x transformers' tokens/s at 32 concurrent requests. Each figure is the best of
``--repeats`` runs, ours and transformers' alternating (load from other processes falls on
both alike).

``--pp P`` adds pipeline-parallel inference: the same 32 requests through P spawned processes
(gloo, ``--threads`` each), the layers split over them, with one micro-batch per step (no
overlap) and with P and 2P micro-batches, against one process (wall time).

    python benchmarks/bench_infer_engine.py [--preset llama3-20m] [--new-tokens 64] [--small]
        [--threads N] [--repeats R] [--pp P] [--cpu-time]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_peak, report

from l3_core import ModelArgs, Transformer, save_checkpoint
from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.pipeline import PipelineRunner, serve_stage

CONFIG = EngineConfig(block_size=16, max_running=64, max_batched_tokens=1024)
# Wall time by default; --cpu-time: this process's CPU seconds, which other processes' load on
# a shared machine does not inflate (with one thread, the work itself; not for --pp, whose
# stages are other processes).
CLOCK = [time.perf_counter]


def prompts(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(rng.randint(16, 64))] for _ in range(n)]


def ours(model: Transformer, batch: list[list[int]], new_tokens: int, make_runner=None) -> float:
    engine = Engine(model, CONFIG, make_runner=make_runner)
    t0 = CLOCK[0]()
    out = engine.generate(batch, SamplingParams(max_tokens=new_tokens, ignore_eos=True))
    elapsed = CLOCK[0]() - t0
    assert all(len(o) == new_tokens for o in out)
    return sum(map(len, out)) / elapsed


@torch.inference_mode()
def peer(hf: LlamaForCausalLM, batch: list[list[int]], new_tokens: int) -> float:
    width = max(map(len, batch))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    t0 = CLOCK[0]()
    out = hf.generate(
        ids,
        attention_mask=mask,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    elapsed = CLOCK[0]() - t0
    return (out.shape[1] - width) * len(batch) / elapsed


def _stage(
    rank: int,
    world: int,
    port: int,
    preset: str,
    threads: int,
    n: int,
    new_tokens: int,
    micro: list[int],
    repeats: int,
    out: str,
) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=600),
    )
    try:
        model = Transformer.build(ModelArgs.from_preset(preset), dtype=torch.float32, seed=0).eval()
        runs = [m for m in micro for _ in range(repeats + 1)]  # + 1: a warm-up per setting
        if rank != 0:
            for _ in runs:
                serve_stage(model)
            return
        batch = prompts(n, model.args.vocab_size)
        best: dict[int, float] = {}
        for k, m in enumerate(runs):
            factory = PipelineRunner.factory(model, m)
            engine_runner: list[PipelineRunner] = []

            def make(*a, factory=factory, kept=engine_runner):
                kept.append(factory(*a))
                return kept[-1]

            tps = ours(model, batch, new_tokens if k % (repeats + 1) else 2, make)
            engine_runner[0].close()
            if k % (repeats + 1):
                best[m] = max(best.get(m, 0.0), tps)
        Path(out).write_text(json.dumps(best))
    finally:
        dist.barrier()  # no rank tears its connections down while another still uses them
        dist.destroy_process_group()


def pipeline_figures(
    preset: str, pp: int, threads: int, n: int, new_tokens: int, repeats: int
) -> dict[int, float]:
    """Best tokens/s of the ``n`` requests through ``pp`` stages, per micro-batch count."""
    micro = [1, pp, 2 * pp]
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = str(Path(tmp) / "pp.json")
        mp.start_processes(
            _stage,
            args=(pp, port, preset, threads, n, new_tokens, micro, repeats, out),
            nprocs=pp,
            start_method="spawn",
        )
        return {int(k): v for k, v in json.loads(Path(out).read_text()).items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="llama3-20m")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--small", action="store_true", help="a quick correctness run (tiny model)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pp", type=int, default=0, help="pipeline stages (0: no pipeline figures)")
    p.add_argument("--cpu-time", action="store_true", help="time by process CPU seconds")
    opts = p.parse_args(argv)
    if opts.cpu_time:
        CLOCK[0] = time.process_time
    if opts.threads:
        torch.set_num_threads(opts.threads)
    preset = "llama3-tiny" if opts.small else opts.preset
    new_tokens = 8 if opts.small else opts.new_tokens
    repeats = 1 if opts.small else opts.repeats
    args = ModelArgs.from_preset(preset)
    model = Transformer.build(args, dtype=torch.float32, seed=0).eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, Path(tmp) / "hf", format="hf")
        hf = LlamaForCausalLM.from_pretrained(Path(tmp) / "hf", dtype=torch.float32).eval()
    clock = "CPU time" if opts.cpu_time else "wall time"
    print(
        f"{preset}, fp32, {torch.get_num_threads()} threads, {clock}, "
        f"matmul peak {machine_peak(torch.float32) / 1e9:.0f} GFLOP/s, torch {torch.__version__}"
    )
    single = 0.0
    for n in (1, 8, 32):
        batch = prompts(n, args.vocab_size)
        ours(model, batch, 2), peer(hf, batch, 2)  # warm-up
        a = b = 0.0
        for _ in range(repeats):
            a = max(a, ours(model, batch, new_tokens))
            b = max(b, peer(hf, batch, new_tokens))
        report(f"greedy decode, {n} concurrent (tokens/s)", a, b, "tok/s", "transformers")
        single = a
    if opts.pp:
        CLOCK[0] = time.perf_counter  # the stages' work is in other processes
        batch = prompts(32, args.vocab_size)
        single = max(ours(model, batch, new_tokens) for _ in range(repeats))
        threads = torch.get_num_threads()
        for m, tps in pipeline_figures(preset, opts.pp, threads, 32, new_tokens, repeats).items():
            report(
                f"pp {opts.pp}, {m} micro-batches, 32 concurrent", tps, single, "tok/s", "1 process"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
