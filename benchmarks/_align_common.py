"""What the l3-align benchmarks against trl share: the tiny model, its rows, the child processes.

Each trainer runs in a child process of its own (``--child NAME``), so that its peak memory
is its own: ``ru_maxrss`` at the end, and the same above the process's RSS once its libraries
are imported (what training adds). The children run in turn, round after round, so load from
other jobs falls on all of them alike; each prints one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from common import machine_peak

from l3_align.synthetic import preference_rows, train_task_tokenizer
from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.jsonl import read_jsonl, write_jsonl
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


def add_arguments(p: argparse.ArgumentParser, trainers: Sequence[str]) -> None:
    """The options both benchmarks take (the model's shape, the rows, steps, rounds)."""
    p.add_argument("--child", choices=trainers)
    p.add_argument("--work", type=Path)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--pairs", type=int, default=32, help="preference rows (all in every step)")
    p.add_argument("--rows", type=int, default=0, help="our packed rows per step (set by main)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--trainers", default=",".join(trainers), help="which of them to run")


def timed_ours(train: Callable[[Path], object], work: Path) -> dict[str, Any]:
    """Our run: ``train(run_dir)``, then its losses and step times from ``metrics.jsonl``."""
    with tempfile.TemporaryDirectory(dir=work) as run_dir:
        t0 = time.perf_counter()
        train(Path(run_dir))
        total = time.perf_counter() - t0
        records = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return {
        "losses": [r["loss"] for r in records],
        "step_times": [r["step_time_s"] for r in records],
        "run_s": total,
    }


def timed_trl(make_trainer: Callable[[str], Any], work: Path) -> dict[str, Any]:
    """trl's run: ``make_trainer(output_dir)``, trained with a callback timing each step."""
    from transformers import TrainerCallback

    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            ends.append(time.perf_counter())

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory(dir=work) as out:
        t0 = time.perf_counter()
        trainer = make_trainer(out)
        trainer.add_callback(StepClock())
        trainer.train()
        total = time.perf_counter() - t0
    return {
        "losses": trainer.losses,
        "step_times": [b - a for a, b in itertools.pairwise(ends)],
        "run_s": total,
    }


def run_benchmark(
    script: Path,
    opts: argparse.Namespace,
    bodies: dict[str, Callable[[], dict[str, Any]]],
    imports: dict[str, Callable[[], object]],
    prepare: Callable[[Path], int],
) -> None:
    """As a child (``--child NAME``): run that trainer's body. Else build the work directory,
    ``prepare(work)`` (returns our packed rows per step), run every trainer in turn over the
    rounds, and print the summary with the matmul peak of this run."""
    if opts.child:
        child(imports[opts.child], lambda: {**bodies[opts.child](), "warmup": opts.warmup},
              opts.threads)  # fmt: skip
        return
    torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        opts.work = work
        build_workdir(work, opts)
        rows = prepare(work)
        print(f"{opts.pairs} pairs per step: ours {rows} packed rows of {opts.seq}, trl one batch; "
              f"{opts.steps} steps ({opts.warmup} warm-up), {opts.threads} threads, fp32")  # fmt: skip
        argv = [f"--{k.replace('_', '-')}={v}" for k, v in vars(opts).items()
                if k not in ("child", "rounds", "rows", "trainers")] + [f"--rows={rows}"]  # fmt: skip
        peak = machine_peak(torch.float32)
        results = interleaved(script, opts.trainers.split(","), argv, opts.rounds)
        peak = max(peak, machine_peak(torch.float32))
    print(f"matmul peak fp32 in this run: {peak / 1e9:.0f} GFLOP/s")
    summarise(results, opts.pairs)
    print(json.dumps({n: [r["run_s"] for r in rs] for n, rs in results.items()}))
