"""l3-core's Megatron-core trainer in one process vs a plain PyTorch loop, same run, same CPU.

Both train the same model (``llama3-20m`` by default, identical initial weights) with the same
optimizer (AdamW, no decay on vectors, clipping at 1.0) on the same packed rows of the built-in
corpus, one step of each in turn (alternating which goes first) so that load from other jobs
hits both alike. Prints the
tokens/s and MFU (model FLOPs over the measured matmul peak in the same dtype) of each, the
ratio, the same per CPU-second (less sensitive to other jobs on a shared machine), and the
largest loss difference between the two (they compute the same function).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import matmul_peak, report

from l3_core.config import from_dict
from l3_core.model import Transformer
from l3_core.parallel.groups import shutdown
from l3_core.run_config import RunConfig
from l3_core.train import schedule
from l3_core.train.data import PackedStream
from l3_core.train.loop import Trainer
from l3_core.train.reference import plain_optimizer, plain_step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="llama3-20m")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    opts = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(opts.threads)
    total = opts.steps + opts.warmup
    with tempfile.TemporaryDirectory() as tmp:
        cfg = from_dict(
            RunConfig,
            {
                "run_dir": tmp,
                "model": {"preset": opts.preset},
                "data": {"path": "builtin:stdlib", "seq_len": opts.seq},
                "train": {
                    "max_steps": total,
                    "global_batch_size": opts.batch,
                    "micro_batch_size": opts.batch,
                    "eval_every": 0,
                },
                "optimizer": {"lr": 1e-3},
                "schedule": {"warmup_steps": 2},
                "logging": {"tensorboard": False, "progress": False, "plot": False},
            },
        )
        trainer = Trainer(cfg)
        args = trainer.args
        plain = Transformer.build(args, seed=cfg.train.seed)
        opt = plain_optimizer(plain, cfg.optimizer.lr, cfg.optimizer.weight_decay)
        print(
            f"preset {opts.preset}: {args.num_params() / 1e6:.1f}M parameters, batch "
            f"{opts.batch} x {opts.seq}, fp32, {torch.get_num_threads()} threads, 1 process"
        )
        ours_t, peer_t, ours_c, peer_c, diffs = [], [], [], [], []
        peak = matmul_peak(torch.float32)
        # the peer's own copy of the stream reads the very same rows
        peer_stream = PackedStream(
            trainer.stream.dataset,
            cfg.train.seed,
            cfg.data.weights,
            cfg.data.val_fraction,
            trainer.stream.val_dataset,
        )
        for step in range(total):

            def run_ours(step=step):
                c0 = time.process_time()
                rec = trainer.train_step(step)  # times its data, forward/backward and step
                return rec, time.process_time() - c0

            def run_peer(step=step):
                t0, c0 = time.perf_counter(), time.process_time()
                batch = peer_stream.next_rows(opts.batch, opts.seq)
                loss, _ = plain_step(
                    plain, opt, batch, schedule.learning_rate(step, cfg), cfg.optimizer.clip_grad
                )
                return loss, time.perf_counter() - t0, time.process_time() - c0

            if step % 2:
                (loss, dt, dc), (rec, rc) = run_peer(), run_ours()
            else:
                (rec, rc), (loss, dt, dc) = run_ours(), run_peer()
            diffs.append(abs(loss - rec["loss"]))
            if step >= opts.warmup:
                ours_t.append(rec["step_time_s"])
                peer_t.append(dt)
                ours_c.append(rc)
                peer_c.append(dc)
        # the least loaded of two measurements, on a machine shared with other jobs
        peak = max(peak, matmul_peak(torch.float32))
        trainer.close()
        shutdown()
    tokens = opts.batch * opts.seq
    flops = args.flops_per_token(opts.seq) * tokens
    t_ours, t_peer = statistics.median(ours_t), statistics.median(peer_t)
    print(f"matmul peak fp32: {peak / 1e9:.0f} GFLOP/s; median of {opts.steps} steps")
    report("train step tokens/s (fp32)", tokens / t_ours, tokens / t_peer, "tok/s", "plain loop")
    report(
        "MFU % (fp32, of the matmul peak)",
        100 * flops / t_ours / peak,
        100 * flops / t_peer / peak,
        "%",
        "plain loop",
    )
    # CPU seconds per step: what each does, less sensitive to other jobs than wall time
    report(
        "tokens per CPU-second (fp32)",
        tokens / statistics.median(ours_c),
        tokens / statistics.median(peer_c),
        "tok/cpu-s",
        "plain loop",
    )
    print(f"largest |loss difference| over {total} steps: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
