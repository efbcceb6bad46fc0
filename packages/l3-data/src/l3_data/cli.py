"""``l3-data``: run a pipeline, identify languages, deduplicate, train a classifier."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l3_core.config import parse_override
from l3_core.errors import L3Error
from l3_data.document import BadRecord
from l3_data.errors import InputFormatError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="l3-data", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run (or resume) a pipeline file")
    p.add_argument("pipeline", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a [pipeline] setting, e.g. --set workers=4")
    p.add_argument("--restart", action="store_true", help="discard the work already done")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("langid", help="add lang and lang_score to JSONL rows")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--model", default="", help="fastText model (default: lid.176.ftz)")
    p.add_argument("--text-key", default="text")

    p = sub.add_parser("dedup", help="near-duplicate removal of a JSONL file")
    p.add_argument("input", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--method", choices=["minhash", "exact"], default="minhash")
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--bands", type=int, default=14)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--threshold", type=float, default=0.5,
                   help="minimum signature agreement (estimated Jaccard) of a joined pair")
    p.add_argument("--workers", type=int, default=0)

    p = sub.add_parser("train-classifier", help="train a fastText or scikit-learn classifier")
    p.add_argument("examples", type=Path, help="JSONL with text and label fields")
    p.add_argument("model", type=Path, help="output model (.bin for fastText, .joblib for sklearn)")
    p.add_argument("--kind", choices=["fasttext", "sklearn"], default="")
    p.add_argument("--label-key", default="label")
    p.add_argument("--text-key", default="text")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, help="also write the evaluation report here (JSON)")

    sub.add_parser("steps", help="list the step types and their options")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except L3Error as e:
        print(f"l3-data: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from l3_data.executors import run_pipeline
    from l3_data.pipeline import Pipeline

    overrides = {}
    for item in args.set:
        keys, value = parse_override(item)
        overrides[".".join(keys).removeprefix("pipeline.")] = value
    report = run_pipeline(Pipeline.from_toml(args.pipeline, overrides), restart=args.restart,
                          progress=not args.no_progress)
    _print_report(report)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    print(f"{report['pipeline']}: {report['documents_in']} documents in, "
          f"{report['documents_out']} out, {report['rejected_total']} rejected")
    table = Table()
    for col in ("step", "docs in", "docs out", "chars out", "time s", "rejected / notes"):
        table.add_column(col, justify="left" if col in ("step", "rejected / notes") else "right")
    for label, s in report["steps"].items():
        notes = {k: v for k, v in s.items() if not k.startswith(("docs_", "chars_", "time"))
                 and not k.startswith("lang:")}
        langs = {k[5:]: v for k, v in s.items() if k.startswith("lang:")}
        if langs:
            top = sorted(langs.items(), key=lambda kv: -kv[1])[:5]
            notes["languages"] = ", ".join(f"{k} {v}" for k, v in top)
        table.add_row(label, str(s.get("docs_in", "")), str(s.get("docs_out", "")),
                      str(s.get("chars_out", "")), f"{s['time_s']:.2f}" if "time_s" in s else "",
                      json.dumps(notes, ensure_ascii=False)[:160] if notes else "")
    console = Console()
    console.print(table)
    for label, summary in {**report["global"], **report["outputs"]}.items():
        console.print(f"{label}: {json.dumps(summary, ensure_ascii=False)[:300]}")
    console.print(f"report: {report['workdir']}/report.json; exclusions: {report['excluded']}")


def _langid(args: argparse.Namespace) -> int:
    from l3_core.io import atomic_write
    from l3_data.steps.langid import LanguageIdentifier
    from l3_data.steps.readers import open_binary
    from l3_data.steps.writers import write_jsonl

    if not args.input.is_file():
        raise InputFormatError(f"{args.input}: input file not found")
    lid = LanguageIdentifier(args.model or None)
    bad: list[dict[str, Any]] = []
    n = 0
    with atomic_write(args.output, encoding="utf-8") as out, open_binary(args.input) as f:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            texts = [r[args.text_key] for r in batch]
            for row, (lang, score) in zip(batch, lid.predict(texts)):
                if not row[args.text_key].strip():
                    lang, score = "und", 0.0  # an empty text has no language
                row["lang"], row["lang_score"] = lang, round(score, 4)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            batch.clear()

        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            rec = parse_row(raw, str(args.input), line_no, args.text_key)
            if isinstance(rec, BadRecord):
                bad.append(rec.to_json())
                continue
            batch.append(rec)
            n += 1
            if len(batch) >= 1024:
                flush()
        flush()
    if bad:
        write_jsonl(args.output.with_name(args.output.name + ".excluded.jsonl"), bad)
    print(f"{n} rows labelled -> {args.output}" + (f"; {len(bad)} unreadable rows -> "
          f"{args.output.name}.excluded.jsonl" if bad else ""))
    return 0


def parse_row(raw: bytes, path: str, line: int, text_key: str) -> dict[str, Any] | BadRecord:
    """One JSONL row with a string ``text_key``, or the reason it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return BadRecord(path, line, "invalid_utf8", str(e), raw.decode("utf-8", "replace"))
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        return BadRecord(path, line, "malformed_json", f"{e.msg} at column {e.colno}", text)
    if not isinstance(row, dict):
        return BadRecord(path, line, "not_an_object", f"row is a {type(row).__name__}", text)
    if not isinstance(row.get(text_key), str):
        return BadRecord(path, line, "missing_text", f"no string {text_key!r} field", text)
    return row


def _dedup(args: argparse.Namespace) -> int:
    import shutil

    from l3_data.executors import run_pipeline
    from l3_data.pipeline import Pipeline

    work = args.out_dir / ".work"
    step: dict[str, Any] = {"type": "minhash_dedup", "ngram": args.ngram, "bands": args.bands,
                            "rows": args.rows, "threshold": args.threshold}
    if args.method == "exact":
        step = {"type": "exact_dedup"}
    pipe = Pipeline.from_dict({
        "pipeline": {"workdir": str(work), "workers": args.workers, "chunk_size": 50_000},
        "input": {"format": "jsonl", "paths": [str(args.input.resolve())], "max_chars": 2**62},
        "steps": [step, {"type": "write_jsonl", "output": str(work / "kept"),
                         "compression": "none"}],
    }, origin=str(args.input))
    report = run_pipeline(pipe, restart=True, progress=False)
    from l3_core.io import atomic_write

    with atomic_write(args.out_dir / "kept.jsonl", "wb") as out:
        for part in sorted((work / "kept").glob("*.jsonl")):
            out.write(part.read_bytes())
    clusters = work / "state" / "s0" / "clusters.jsonl"
    if clusters.exists():
        shutil.copyfile(clusters, args.out_dir / "clusters.jsonl")
    else:
        _exact_clusters(args.out_dir / "clusters.jsonl", work)
    g = next(iter(report["global"].values()))
    print(f"{report['documents_in']} rows, {report['documents_out']} kept, "
          f"{g.get('duplicates', 0)} duplicates -> {args.out_dir}/kept.jsonl, clusters.jsonl")
    return 0


def _exact_clusters(path: Path, work: Path) -> None:
    """Clusters for ``--method exact``: documents sharing a content hash."""
    import numpy as np

    from l3_core.io import atomic_write
    from l3_data.steps.readers import open_binary

    groups: dict[tuple[int, int], list[str]] = {}
    for f in sorted((work / "data" / "s0").glob("*.npz")):
        data = np.load(f)
        with open_binary(f.with_suffix("").with_suffix(".jsonl.zst")) as lines:
            ids = [json.loads(x)["id"] for x in lines]
        for h, i in zip(data["hash"], ids):
            groups.setdefault((int(h[0]), int(h[1])), []).append(i)
    with atomic_write(path, encoding="utf-8") as out:
        for g in groups.values():
            if len(g) > 1:
                out.write(json.dumps(g, ensure_ascii=False) + "\n")


def _train(args: argparse.Namespace) -> int:
    from l3_core.io import write_json
    from l3_data.classifier import read_labelled, train_classifier

    kind = args.kind or ("sklearn" if args.model.suffix == ".joblib" else "fasttext")
    texts, labels = read_labelled(args.examples, args.text_key, args.label_key)
    report = train_classifier(texts, labels, args.model, kind=kind,
                              test_fraction=args.test_fraction, seed=args.seed)
    if args.report:
        write_json(args.report, report)
    print(f"{kind} classifier -> {args.model}; held-out accuracy {report['accuracy']:.3f} "
          f"on {report['n_test']} examples")
    for label, m in report["per_label"].items():
        if isinstance(m, dict) and label not in ("macro avg", "weighted avg"):
            print(f"  {label:>20}: precision {m['precision']:.3f} recall {m['recall']:.3f} "
                  f"f1 {m['f1-score']:.3f} (n={int(m['support'])})")
    return 0


def _steps(args: argparse.Namespace) -> int:
    from l3_data.steps import STEPS

    for name, cls in sorted(STEPS.items()):
        import dataclasses

        opts = ", ".join(f"{f.name}" for f in dataclasses.fields(cls) if f.init)
        print(f"{name}: {opts}")
    return 0


COMMANDS = {"run": _run, "langid": _langid, "dedup": _dedup, "train-classifier": _train,
            "steps": _steps}

if __name__ == "__main__":
    sys.exit(main())
