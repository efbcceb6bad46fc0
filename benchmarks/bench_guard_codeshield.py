"""Code Shield: l3-guard against PyPI ``codeshield`` 1.0.1 (+ semgrep 1.69.0), same run, same rows.

Reads ``<repo>/../shared/eval/codeshield_dev.jsonl`` (or ``--data``); prints precision, recall
and p50/p99 latency per scan for both, and the ratios. The peer needs the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from l3_guard.code_shield import CodeShield

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "codeshield_dev.jsonl"


def _prf(pred: list[bool], gold: list[bool]) -> dict[str, float]:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}


def _latency(ts: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(ts, 50) * 1e3),
        "p99_ms": float(np.percentile(ts, 99) * 1e3),
    }


def run_ours(rows: list[dict], verbose: bool) -> tuple[list[bool], list[float]]:
    shield = CodeShield()
    for r in rows[:5]:  # warm the regex cache the way a long-lived service would be
        shield.scan_safe(r["code"], r["language"])
    pred, lat = [], []
    for r in rows:
        t = time.perf_counter()
        res = shield.scan_safe(r["code"], r["language"])
        lat.append(time.perf_counter() - t)
        pred.append(res.is_insecure)
        if verbose and res.is_insecure != r["expected_insecure"]:
            print(
                "  ours",
                "FP" if res.is_insecure else "FN",
                r["language"],
                r["rule_ids"],
                [i.rule_id for i in res.issues],
                repr(r["code"][:160]),
            )
    return pred, lat


def run_peer(rows: list[dict]) -> tuple[list[bool], list[float]] | str:
    try:
        from codeshield.cs import CodeShield as PeerShield
        from codeshield.insecure_code_detector.languages import Language
    except ImportError as e:
        return f"peer not installed ({e}); pip install 'l3-guard[bench]'"
    pred, lat = [], []
    for r in rows:
        t = time.perf_counter()
        res = asyncio.run(PeerShield.scan_code(r["code"], Language(r["language"])))
        lat.append(time.perf_counter() - t)
        pred.append(bool(res.is_insecure))
    return pred, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print our misclassified rows")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    gold = [bool(r["expected_insecure"]) for r in rows]
    pred, lat = run_ours(rows, args.verbose)
    ours = {**_prf(pred, gold), **_latency(lat)}
    print(f"rows: {len(rows)} ({sum(gold)} insecure)")
    print(
        f"l3-guard   precision {ours['precision']:.3f} recall {ours['recall']:.3f} "
        f"p50 {ours['p50_ms']:.3f} ms p99 {ours['p99_ms']:.3f} ms"
    )
    if args.no_peer:
        return
    peer_out = run_peer(rows)
    if isinstance(peer_out, str):
        print("peer:", peer_out)
        return
    ppred, plat = peer_out
    peer = {**_prf(ppred, gold), **_latency(plat)}
    print(
        f"codeshield precision {peer['precision']:.3f} recall {peer['recall']:.3f} "
        f"p50 {peer['p50_ms']:.1f} ms p99 {peer['p99_ms']:.1f} ms"
    )
    ratio = lambda a, b: a / b if b else float("inf")  # noqa: E731
    print(
        f"ratio (ours/peer): precision {ratio(ours['precision'], peer['precision']):.2f} "
        f"recall {ratio(ours['recall'], peer['recall']):.2f} "
        f"p99 latency {ratio(ours['p99_ms'], peer['p99_ms']):.4f} "
        f"(peer is {ratio(peer['p99_ms'], ours['p99_ms']):.0f}x slower at p99)"
    )


if __name__ == "__main__":
    main()
