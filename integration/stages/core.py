"""Main-job stage: pre-train a tiny Llama 3 on the built-in corpus, plot its loss, generate.

Runs ``l3-core train`` on ``packages/l3-core/examples/tiny-cpu.toml`` (the standard library's
code and docstrings, a 8,192-id BPE), then loads the last checkpoint with
``l3_core.load_checkpoint`` and continues a code prompt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "packages" / "l3-core" / "examples" / "tiny-cpu.toml"
STEPS = int(os.environ.get("L3_MAIN_STEPS", "300"))
PROMPT = "def read_lines(path):\n    "


def run(workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    # tiny-cpu.toml's shape, widened so that a few hundred steps learn visible structure.
    sets = {
        "run_dir": workdir,
        "train.max_steps": STEPS,
        "checkpoint.every": STEPS,
        "train.eval_every": max(STEPS // 6, 1),
        "model.dim": 192,
        "model.n_layers": 4,
        "model.n_heads": 6,
        "model.n_kv_heads": 2,
        "schedule.warmup_steps": max(STEPS // 20, 1),
        "schedule.anneal_steps": max(STEPS // 10, 1),
    }
    cmd = [sys.executable, "-m", "l3_core.train", "--config", str(CONFIG)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    subprocess.run(cmd, check=True)
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    table = loss_table(rows)
    (workdir / "loss_table.md").write_text(table)
    print(table)
    return {
        "steps": rows[-1]["step"],
        "first_loss": round(rows[0]["loss"], 3),
        "final_loss": round(rows[-1]["loss"], 3),
        "first_val_loss": round(next(r["val_loss"] for r in rows if "val_loss" in r), 3),
        "final_val_loss": round(next(r["val_loss"] for r in reversed(rows) if "val_loss" in r), 3),
        "tokens_per_s": round(sum(r["tokens_per_s"] for r in rows[-20:]) / len(rows[-20:])),
        "loss_curve_png": str(next(workdir.glob("*.png"), "missing")),
        "sample": sample(workdir),
    }


def loss_table(rows: list[dict]) -> str:
    """The first step and every evaluation step, with the mean train loss since the previous row
    (single steps of a small batch are noisy)."""
    lines = [
        "| step | train loss (mean since previous row) | val_loss | lr | tokens/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    chosen = sorted({0} | {i for i, r in enumerate(rows) if "val_loss" in r})
    for prev, i in zip([-1, *chosen], chosen):
        window = rows[prev + 1 : i + 1]
        r = dict(rows[i], loss=sum(w["loss"] for w in window) / len(window))
        val = f"{r['val_loss']:.3f}" if "val_loss" in r else ""
        lines.append(
            f"| {r['step']} | {r['loss']:.3f} | {val} | {r['lr']:.2e} | {r['tokens_per_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def sample(workdir: Path) -> str:
    from l3_core import Tokenizer, generate, load_checkpoint
    from l3_core.corpus import stdlib_shards

    checkpoints = sorted((workdir / "checkpoints").glob("step_*"))
    model = load_checkpoint(checkpoints[-1])
    tok = Tokenizer.from_file(stdlib_shards() / "tokenizer.model")
    ids = tok.encode(PROMPT, bos=True, eos=False)
    out = generate(
        model,
        [ids],
        max_new_tokens=48,
        temperature=0.7,
        top_p=0.9,
        seed=0,
        stop_tokens=tok.stop_tokens,
    )[0]
    text = PROMPT + tok.decode([t for t in out if t not in tok.stop_tokens])
    (workdir / "sample.txt").write_text(text)
    return text
