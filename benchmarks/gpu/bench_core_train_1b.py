"""Train a ~1B Llama 3 (``llama3.2-1b``, 1.24B parameters) on one GPU: tokens/s and MFU.

Ours: the Megatron-core trainer in one process (bf16, distributed optimizer with fp32 main
weights, no pipeline). Peer, in the same run: a plain PyTorch loop of the plain model (bf16
autocast over fp32 weights, fused AdamW, SDPA). MFU = model FLOPs (6N + attention, the PaLM
convention of ``ModelArgs.flops_per_token``) over the GPU's dense BF16 peak (989 TFLOP/s for
H100/H200). Data: a synthetic token-shard corpus written at start (throughput does not depend
on the text). Prints one JSON line per path and the ratio.

    python benchmarks/gpu/bench_core_train_1b.py [--seq 4096 --micro 2 --batch 16 --steps 10]

On a CPU it runs as a smoke test: ``--preset llama3-tiny --seq 128 --micro 2 --batch 4``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from l3_core.config import from_dict
from l3_core.model import Transformer
from l3_core.parallel.groups import shutdown
from l3_core.run_config import RunConfig
from l3_core.train import schedule
from l3_core.train.loop import Trainer
from l3_core.train.peak import device_peak_flops
from l3_core.train.testing import make_shards


def ours(cfg: RunConfig, steps: int, warmup: int) -> tuple[float, float]:
    trainer = Trainer(cfg)
    times, losses = [], []
    for step in range(warmup + steps):
        rec = trainer.train_step(step)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(rec["step_time_s"])
        losses.append(rec["loss"])
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    del trainer
    shutdown()
    return statistics.median(times), mem


def peer(cfg: RunConfig, steps: int, warmup: int) -> tuple[float, float]:
    from l3_core.shards import ShardDataset
    from l3_core.train.data import PackedStream

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args = cfg.model.args()
    torch.manual_seed(0)
    model = Transformer.build(args, device=dev, seed=0)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    fused = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.optimizer.lr,
        betas=(0.9, 0.95),
        **fused,
    )
    stream = PackedStream(ShardDataset(cfg.data.path), 0, {}, 0.02)
    gbs, mbs, seq = cfg.train.global_batch_size, cfg.train.micro_batch_size, cfg.data.seq_len
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = stream.next_rows(gbs, seq)
        for g in opt.param_groups:
            g["lr"] = schedule.learning_rate(step, cfg)
        opt.zero_grad(set_to_none=True)
        for i in range(0, gbs, mbs):
            tok = torch.from_numpy(batch.tokens[i : i + mbs]).to(dev)
            lab = torch.from_numpy(batch.labels[i : i + mbs]).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                logits = model(tok)
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), lab.flatten())
            (loss * (mbs / gbs)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0.0
    return statistics.median(times), mem


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="llama3.2-1b")
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--micro", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--document-mask", action="store_true")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--fused-swiglu", action="store_true")
    p.add_argument("--fused-cross-entropy", action="store_true")
    opts = p.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        data = make_shards(Path(tmp) / "data", n_docs=400, max_len=max(opts.seq, 300))
        cfg = from_dict(
            RunConfig,
            {
                "run_dir": str(Path(tmp) / "run"),
                "model": {"preset": opts.preset, "init": "megatron"},
                "data": {
                    "path": str(data),
                    "seq_len": opts.seq,
                    "document_mask": opts.document_mask,
                },
                "train": {
                    "max_steps": opts.warmup + opts.steps,
                    "global_batch_size": opts.batch,
                    "micro_batch_size": opts.micro,
                    "eval_every": 0,
                    "precision": "bf16",
                    "fused_swiglu": opts.fused_swiglu,
                    "fused_cross_entropy": opts.fused_cross_entropy,
                },
                "optimizer": {"lr": 3e-4},
                "schedule": {"warmup_steps": 2},
                "logging": {"tensorboard": False, "progress": False, "plot": False},
            },
        )
        args = cfg.model.args()
        tokens = opts.batch * opts.seq
        flops = args.flops_per_token(opts.seq) * tokens
        peak = device_peak_flops(True)
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        print(
            json.dumps(
                {
                    "device": name,
                    "preset": opts.preset,
                    "params": args.num_params(),
                    "seq": opts.seq,
                    "global_batch": opts.batch,
                    "micro_batch": opts.micro,
                    "document_mask": opts.document_mask,
                    "fused_swiglu": opts.fused_swiglu,
                    "fused_cross_entropy": opts.fused_cross_entropy,
                    "peak_tflops": peak / 1e12,
                }
            ),
            flush=True,
        )
        results = {}
        t, mem = ours(cfg, opts.steps, opts.warmup)
        results["ours"] = {"tokens_per_s": tokens / t, "mfu": flops / t / peak, "max_mem_gib": mem}
        print(
            json.dumps({"path": "ours (l3-core Megatron trainer)", **results["ours"]}), flush=True
        )
        if not opts.skip_peer:
            t, mem = peer(cfg, opts.steps, opts.warmup)
            results["peer"] = {
                "tokens_per_s": tokens / t,
                "mfu": flops / t / peak,
                "max_mem_gib": mem,
            }
            print(json.dumps({"path": "peer (plain PyTorch loop)", **results["peer"]}), flush=True)
            print(
                json.dumps(
                    {
                        "ratio_ours_over_peer": results["ours"]["tokens_per_s"]
                        / results["peer"]["tokens_per_s"]
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
