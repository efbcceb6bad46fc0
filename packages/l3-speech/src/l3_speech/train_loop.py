"""A small seeded, resumable training loop for any objective of this package.

An objective is a function ``step(step, generator) -> (loss, metrics)`` that draws its own
batch from ``generator`` (seeded from the run seed and the step, so a resumed run sees the
same batches). The loop owns the optimiser (AdamW, linear warmup then cosine), gradient
clipping, ``metrics.jsonl``, an atomic checkpoint of the trained module and optimiser state
(safetensors + JSON, no pickle) and a loss PNG. l3-core's trainer is getting an objective seam;
this loop is the stand-in until it lands.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from l3_core.io import atomic_path, atomic_write, remove_stale_temporaries

log = logging.getLogger(__name__)

Step = Callable[[int, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class LoopConfig:
    steps: int = 600
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200


def lr_at(step: int, cfg: LoopConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def run_loop(module: nn.Module, step_fn: Step, cfg: LoopConfig, run_dir: Path) -> list[dict]:
    """Train the parameters of ``module`` that require gradients; resume from ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = _resume(module, opt, run_dir / "state")
    metrics_path = run_dir / "metrics.jsonl"
    rows = _read_metrics(metrics_path, start)
    module.train()
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        loss, metrics = step_fn(step, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        row = {
            "step": step,
            **metrics,
            "lr": lr_at(step, cfg),
            "grad_norm": float(grad_norm),
            "seconds": round(time.perf_counter() - t0, 4),
        }
        rows.append(row)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            log.info("step %d loss %.4f", step, metrics["loss"])
        if (step + 1) % cfg.checkpoint_every == 0 or step == cfg.steps - 1:
            _write_metrics(metrics_path, rows)
            _save(module, opt, step + 1, run_dir / "state")
    module.eval()
    plot_loss(rows, run_dir / "loss.png")
    return rows


def _optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for i, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def _save(module: nn.Module, opt: torch.optim.Optimizer, step: int, path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        tmp.mkdir()
        save_file(
            {k: v.contiguous() for k, v in module.state_dict().items()},
            str(tmp / "module.safetensors"),
        )
        save_file(_optimizer_tensors(opt), str(tmp / "optimizer.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")


def _resume(module: nn.Module, opt: torch.optim.Optimizer, path: Path) -> int:
    if not (path / "state.json").is_file():
        return 0
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path / "module.safetensors")))
    flat = load_file(str(path / "optimizer.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    step = int(json.loads((path / "state.json").read_text())["step"])
    log.info("resumed from %s at step %d", path, step)
    return step


def _read_metrics(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] < upto]


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_write(path, encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def plot_loss(rows: list[dict], path: Path) -> Path | None:
    """The loss curve as a PNG; skipped (with a warning) without matplotlib (``l3-speech[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib missing (pip install 'l3-speech[plot]'): no %s", path)
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
