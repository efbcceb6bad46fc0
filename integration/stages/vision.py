"""Main-job stage: adapter pre-training on synthetic captioned shapes (l3-vision).

Draws coloured shapes (count, colour, shape, place) with PIL, pre-trains a tiny text model on
the captions, freezes it, trains the image encoder and cross-attention adapters on the pairs,
and prints held-out caption exact match before and after (chance 1/54), the steps and
the seconds. l3-vision needs torch 2.14.1, so in
the all-package environment (torch 2.13.0) the stage reports itself skipped; `nox -s
main-torch214` runs it.
"""

from __future__ import annotations

import time
from pathlib import Path


def run(workdir: Path) -> dict:
    try:
        from l3_vision.config import DataConfig, ModelConfig, OptimConfig, RunConfig
        from l3_vision.training.loop import train
        from l3_vision.training.synthetic import write_dataset
    except ImportError as e:
        return {"skipped": f"l3-vision is not importable here ({e}); run `nox -s main-torch214`"}

    start = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    train_pairs = write_dataset(workdir / "train", 1000, 32, seed=0)
    eval_pairs = write_dataset(workdir / "eval", 200, 32, seed=1)
    cfg = RunConfig(
        model=ModelConfig(text_pretrain_steps=100),
        data=DataConfig(train=str(train_pairs), eval=str(eval_pairs)),
        train=OptimConfig(steps=900, batch_size=16, lr=3e-3, eval_every=300, warmup_steps=10),
    )
    figures = train(cfg, workdir / "run")
    return {
        "language_model": f"frozen (after {cfg.model.text_pretrain_steps} text-only steps)",
        "caption_classes": 54,
        "chance_exact_match": round(1 / 54, 3),
        "steps": cfg.train.steps,
        "seconds": round(time.perf_counter() - start, 1),
        **figures,
    }
