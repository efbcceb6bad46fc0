"""Moderation and Prompt Guard: l3-guard's embedded models on the dev sets, per class/category.

Reads ``<repo>/../shared/eval/llama_guard_labelled_examples_dev.jsonl`` and
``prompt_injection_jailbreak_dev.jsonl`` (or ``--moderation`` / ``--prompt-guard``). Prints
precision / recall / F1 / FPR per class and per category, VR/FRR, and latency per item.

Peer: the anchors are Llama Guard 3 8B and Prompt Guard 86M, whose weights are not reachable
from this machine (no model hub), so they cannot run in the same process here. Their
published figures are printed beside ours, labelled as published, for orientation only: they
were measured on Meta's own test sets, not on these rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from l3_guard.evaluate import moderation_report, prompt_guard_report
from l3_guard.moderation import EmbeddedModerator
from l3_guard.prompt_guard import PromptGuard

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
PUBLISHED = {
    "Llama Guard 3 8B (English responses, Meta's set)": {"f1": 0.939, "fpr": 0.040},
    "Prompt Guard 86M (its own injection set)": {"tpr": 0.995, "fpr": 0.008},
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _timed(fn, items):
    out, lat = [], []
    for it in items:
        t = time.perf_counter()
        out.append(fn(it))
        lat.append(time.perf_counter() - t)
    return out, lat


def _lat(lat: list[float]) -> str:
    return f"p50 {np.percentile(lat, 50) * 1e3:.2f} ms, p99 {np.percentile(lat, 99) * 1e3:.2f} ms, mean {np.mean(lat) * 1e3:.2f} ms"


def bench_moderation(path: Path, threshold: float) -> dict:
    rows = _rows(path)
    mod = EmbeddedModerator(threshold=threshold)

    def one(r: dict):
        if r.get("role") == "agent" and r.get("prompt"):
            return mod.moderate_safe(
                [{"role": "user", "content": r["prompt"]}, {"role": "agent", "content": r["text"]}],
                "agent",
            )
        return mod.moderate_safe(r["text"], r.get("role", "user"))

    one(rows[0])
    results, lat = _timed(one, rows)
    rep = moderation_report(rows, results)
    o = rep["overall"]
    print(f"\n== moderation ({len(rows)} rows, threshold {threshold}) ==")
    print(
        f"l3-guard embedded: P {o['precision']:.3f} R {o['recall']:.3f} F1 {o['f1']:.3f} FPR {o['fpr']:.3f} "
        f"(VR {o['violation_rate']:.3f}, FRR {o['false_refusal_rate']:.3f}); latency {_lat(lat)}"
    )
    for role, m in rep["per_role"].items():
        print(
            f"  role {role:5s}: P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} FPR {m['fpr']:.3f} (n+={m['support']})"
        )
    for code, m in rep["per_category"].items():
        print(
            f"  {code:4s}: category P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
            f"FPR {m['fpr']:.3f}  VR {m['violation_rate']:.3f}  (n={m['support']})"
        )
    curve = []
    scores = np.array([r.score for r in results])
    gold = np.array([r["label"] == "unsafe" for r in rows])
    for th in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        p = scores >= th
        curve.append((th, 1 - (p & gold).sum() / gold.sum(), (p & ~gold).sum() / (~gold).sum()))
    print(
        "  VR/FRR curve: " + ", ".join(f"t={t}: VR {vr:.2f} FRR {frr:.2f}" for t, vr, frr in curve)
    )
    peer = PUBLISHED["Llama Guard 3 8B (English responses, Meta's set)"]
    print(
        f"published anchor, not run here: Llama Guard 3 8B F1 {peer['f1']} FPR {peer['fpr']} "
        f"-> F1 ratio ours/anchor {o['f1'] / peer['f1']:.2f} (different test sets)"
    )
    return rep


def bench_prompt_guard(path: Path) -> dict:
    rows = _rows(path)
    pg = PromptGuard()
    pg.classify_safe(rows[0]["text"])
    results, lat = _timed(pg.classify_safe, [r["text"] for r in rows])
    rep = prompt_guard_report(rows, results)
    print(f"\n== prompt guard ({len(rows)} rows) ==")
    for c, m in rep["per_class"].items():
        print(
            f"  {c:9s}: P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} FPR {m['fpr']:.3f} (n={m['support']})"
        )
    a = rep["attack_detection"]
    print(
        f"l3-guard embedded: attack (injection or jailbreak) TPR {a['recall']:.3f} at FPR {a['fpr']:.3f}, "
        f"3-way accuracy {rep['accuracy']:.3f}; latency {_lat(lat)}"
    )
    peer = PUBLISHED["Prompt Guard 86M (its own injection set)"]
    print(
        f"published anchor, not run here: Prompt Guard TPR {peer['tpr']} at FPR {peer['fpr']} "
        f"-> TPR ratio ours/anchor {a['recall'] / peer['tpr']:.2f} (different test sets)"
    )
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--moderation", type=Path, default=EVAL / "llama_guard_labelled_examples_dev.jsonl"
    )
    ap.add_argument(
        "--prompt-guard", type=Path, default=EVAL / "prompt_injection_jailbreak_dev.jsonl"
    )
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()
    bench_moderation(args.moderation, args.threshold)
    bench_prompt_guard(args.prompt_guard)


if __name__ == "__main__":
    main()
