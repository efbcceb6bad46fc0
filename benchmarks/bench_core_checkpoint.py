"""Checkpoint seconds on this CPU: per-rank distributed checkpoints (``checkpoint.format =
"dcp"``, synchronous and asynchronous) against the plain format gathered to rank 0.

An 88M-parameter model (``llama3-20m`` widened: dim 768, 12 layers; ``--dim 512``: 46M) trains
one step at DP = N (gloo, Megatron's distributed optimizer); then each format saves and loads
in turn, rounds interleaved so that the machine's load falls on all alike. Per format: the seconds training
is blocked by a save (what the trainer logs as ``checkpoint_blocked_s``), the seconds until the
checkpoint is complete on disk, and the seconds to load it back into the running job (the
resume path, ``read_newest_intact`` + restore). Best of ``--repeats`` rounds.

    python benchmarks/bench_core_checkpoint.py --ranks 2 4 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: (name, checkpoint.format, checkpoint.async_save)
FORMATS = [("plain (rank 0)", "plain", False), ("dcp", "dcp", False), ("dcp async", "dcp", True)]
MODEL = {"preset": "llama3-20m", "dim": 768, "n_layers": 12, "n_heads": 12, "n_kv_heads": 4}


def _rank_main(root: str, repeats: int, out: str, model: dict) -> None:
    import logging
    import os
    import warnings

    import torch.distributed as dist

    from l3_core.run_config import CheckpointConfig
    from l3_core.train import checkpoint as ckpt
    from l3_core.train.loop import Trainer
    from l3_core.train.testing import config

    warnings.filterwarnings("ignore")
    logging.getLogger("megatron").setLevel(logging.ERROR)
    base = Path(root)
    world = int(os.environ["WORLD_SIZE"])
    cfg = config(
        base / "corpus",
        base / "run",
        model=model,
        train={"max_steps": 1, "global_batch_size": world, "micro_batch_size": 1},
        data={"seq_len": 64},
    )
    best: dict[str, dict[str, float]] = {
        n: {"blocked_s": float("inf"), "complete_s": float("inf"), "load_s": float("inf")}
        for n, _, _ in FORMATS
    }
    with Trainer(cfg) as trainer:
        trainer.train_step(0)
        step = 0
        for _ in range(repeats):
            for name, fmt, asynchronous in FORMATS:
                step += 1
                trainer.saver = ckpt.saver_for(
                    CheckpointConfig(format=fmt, async_save=asynchronous)
                )
                trainer.run_dir = base / fmt / ("async" if asynchronous else "sync")
                dist.barrier()
                t0 = time.perf_counter()
                blocked = trainer.save(step)
                trainer.saver.wait()
                dist.barrier()
                complete = time.perf_counter() - t0
                t0 = time.perf_counter()
                found = ckpt.read_newest_intact(trainer.run_dir, trainer.args)
                assert found is not None
                _, restore, _ = found
                restore(trainer.checkpoints)
                dist.barrier()
                load = time.perf_counter() - t0
                b = best[name]
                b["blocked_s"] = min(b["blocked_s"], blocked)
                b["complete_s"] = min(b["complete_s"], complete)
                b["load_s"] = min(b["load_s"], load)
        params = sum(p.numel() for c in trainer.model for p in c.parameters())
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps({"params_rank0": params, "best": best}))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dim", type=int, default=MODEL["dim"], help="smaller fits more ranks")
    ns = parser.parse_args()
    model = {**MODEL, "dim": ns.dim, "n_heads": ns.dim // 64}
    from l3_core.args import ModelArgs
    from l3_core.parallel.launch import spawn
    from l3_core.train.testing import make_shards

    args = ModelArgs.from_preset(
        model["preset"], **{k: v for k, v in model.items() if k != "preset"}
    )
    print(
        f"model: {args.num_params() / 1e6:.1f}M parameters; checkpoint = weights + 2 Adam moments"
    )
    for ranks in ns.ranks:
        with tempfile.TemporaryDirectory() as root:
            make_shards(Path(root) / "corpus", n_docs=60)
            out = str(Path(root) / "out.json")
            spawn(ranks, _rank_main, root, ns.repeats, out, model)
            result = json.loads(Path(out).read_text())
        print(f"\nDP = {ranks} (gloo, one thread per rank), best of {ns.repeats}:")
        print(f"{'format':<16}{'blocked s':>11}{'complete s':>12}{'load s':>9}")
        plain = result["best"]["plain (rank 0)"]
        for name, b in result["best"].items():
            print(f"{name:<16}{b['blocked_s']:>11.2f}{b['complete_s']:>12.2f}{b['load_s']:>9.2f}")
        for name, b in result["best"].items():
            if name != "plain (rank 0)":
                print(
                    f"  {name} vs plain: blocked {plain['blocked_s'] / b['blocked_s']:.1f}x less, "
                    f"complete {plain['complete_s'] / b['complete_s']:.2f}x, "
                    f"load {plain['load_s'] / b['load_s']:.2f}x"
                )


if __name__ == "__main__":
    main()
