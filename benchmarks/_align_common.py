"""What the l3-align benchmarks against trl share: the tiny model, its rows, the child processes.

Each trainer runs in a child process of its own (``--child NAME``), so that its peak memory
is its own: ``ru_maxrss`` at the end, and the same above the process's RSS once its libraries
are imported (what training adds). The children run in turn, round after round, so load from
other jobs falls on all of them alike; each prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from l3_align.synthetic import preference_rows, train_task_tokenizer
from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.jsonl import write_jsonl
from l3_core.model import Transformer

RESULT = "RESULT "


def rss_mb() -> float:
    """This process's resident memory now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build_workdir(work: Path, opts: Any) -> None:
    """The task tokenizer, a policy and a different reference model (l3 and HF format), and
    ``pairs.jsonl`` of the sorting task."""
    work.mkdir(parents=True, exist_ok=True)
    tok = train_task_tokenizer(work / "tokenizer.model")
    args = ModelArgs(
        dim=opts.dim,
        n_layers=opts.layers,
        n_heads=opts.heads,
        n_kv_heads=opts.kv_heads,
        vocab_size=tok.n_words,
        multiple_of=32,
        max_seq_len=opts.seq,
    )
    for name, seed in (("policy", 1), ("reference", 2)):
        model = Transformer.build(args, seed=seed)
        save_checkpoint(model, work / name)
        shutil.copyfile(tok.path, work / name / "tokenizer.model")
        save_checkpoint(model, work / f"hf_{name}", "hf")
    write_jsonl(work / "pairs.jsonl", preference_rows(opts.pairs, seed=7))
    print(f"model: {args.num_params() / 1e6:.2f}M parameters, vocabulary {tok.n_words}", flush=True)


def child(imports: Callable[[], object], body: Callable[[], dict[str, Any]], threads: int) -> None:
    """Run ``imports``, then ``body``; print its result with this process's memory (its peak,
    and the peak above the RSS after ``imports``: what training adds)."""
    torch.set_num_threads(threads)
    imports()
    base = rss_mb()
    out = body()
    peak = peak_rss_mb()
    out.update(
        peak_rss_mb=peak, imports_rss_mb=base, peak_above_imports_mb=peak - base, threads=threads
    )
    print(RESULT + json.dumps(out), flush=True)


def run_child(script: Path, name: str, argv: list[str]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(script), "--child", name, *argv],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"child {name} failed (exit {proc.returncode})")
    return json.loads(lines[-1].removeprefix(RESULT))


def steps_per_s(times: list[float], warmup: int) -> float:
    """From per-step wall times, the first ``warmup`` left out: 1 / the median."""
    return 1.0 / statistics.median(times[warmup:])


def interleaved(
    script: Path, names: list[str], argv: list[str], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Each child once per round, the order rotating, so load from other jobs is shared."""
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            res = run_child(script, name, argv)
            out[name].append(res)
            print(
                f"  round {r + 1} {name:<16} step0 loss {res['losses'][0]:.7f}  "
                f"{steps_per_s(res['step_times'], res['warmup']):7.4f} steps/s  "
                f"peak {res['peak_rss_mb']:7.1f} MiB (+{res['peak_above_imports_mb']:.1f})",
                flush=True,
            )
    return out


def summarise(results: dict[str, list[dict[str, Any]]], unit_rows: int) -> None:
    """Best steps/s of each over the rounds (the least loaded), peak memory, step-0 losses;
    ratios to the first of ours that ran."""
    ours = next(n for n in results if n.startswith("ours"))
    best = {
        n: max(steps_per_s(r["step_times"], r["warmup"]) for r in rs) for n, rs in results.items()
    }
    peak = {n: min(r["peak_rss_mb"] for r in rs) for n, rs in results.items()}
    above = {n: min(r["peak_above_imports_mb"] for r in rs) for n, rs in results.items()}
    loss0 = {n: rs[0]["losses"][0] for n, rs in results.items()}
    print(f"\n{unit_rows} preference rows per step in every trainer; best round of each")
    for n in results:
        print(
            f"{n:<16} {best[n]:7.4f} steps/s ({best[n] * unit_rows:8.1f} rows/s)  "
            f"ratio ours/this {best[ours] / best[n]:5.2f}x  peak RSS {peak[n]:7.1f} MiB, "
            f"above imports {above[n]:7.1f} MiB  step-0 loss {loss0[n]:.8f} "
            f"(|diff| to ours {abs(loss0[n] - loss0[ours]):.1e})"
        )
    for n in results:
        assert abs(loss0[n] - loss0[ours]) < 1e-5, f"step-0 loss of {n} differs from ours"
