"""``l3-data``: run a pipeline, show its progress, identify languages, find PII, deduplicate,
train a classifier."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_data.errors import InputFormatError, PipelineConfigError


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("l3-data", COMMANDS, argv, description=__doc__, distribution="l3-data")


def _pipeline_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", type=Path, nargs="?", help="pipeline file (TOML), or --config")
    add_config_arguments(p)


def _load_pipeline(args: argparse.Namespace) -> Any:
    from l3_data.pipeline import Pipeline

    if (args.pipeline is None) == (args.config is None):
        raise PipelineConfigError("name the pipeline file once: as the argument or as --config")
    return Pipeline.from_toml(args.pipeline or args.config, args.overrides)


def _configure_run(p: argparse.ArgumentParser) -> None:
    _pipeline_arguments(p)
    p.add_argument(
        "--restart",
        "--force",
        dest="restart",
        action="store_true",
        help="discard the work already done (needed when the pipeline or its inputs changed)",
    )
    p.add_argument("--no-progress", action="store_true")


def _run(args: argparse.Namespace) -> int:
    from l3_data.executors import run_pipeline

    report = run_pipeline(_load_pipeline(args), restart=args.restart, progress=not args.no_progress)
    _print_report(report)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    print(
        f"{report['pipeline']}: {report['documents_in']} documents in, "
        f"{report['documents_out']} out, {report['rejected_total']} rejected"
    )
    table = Table()
    for col in ("step", "docs in", "docs out", "chars out", "time s", "rejected / notes"):
        table.add_column(col, justify="left" if col in ("step", "rejected / notes") else "right")
    for label, s in report["steps"].items():
        notes = {
            k: v
            for k, v in s.items()
            if not k.startswith(("docs_", "chars_", "time")) and not k.startswith("lang:")
        }
        langs = {k[5:]: v for k, v in s.items() if k.startswith("lang:")}
        if langs:
            top = sorted(langs.items(), key=lambda kv: -kv[1])[:5]
            notes["languages"] = ", ".join(f"{k} {v}" for k, v in top)
        table.add_row(
            label,
            str(s.get("docs_in", "")),
            str(s.get("docs_out", "")),
            str(s.get("chars_out", "")),
            f"{s['time_s']:.2f}" if "time_s" in s else "",
            json.dumps(notes, ensure_ascii=False)[:160] if notes else "",
        )
    console = Console()
    console.print(table)
    for label, summary in {**report["global"], **report["outputs"]}.items():
        console.print(f"{label}: {json.dumps(summary, ensure_ascii=False)[:300]}")
    console.print(f"report: {report['workdir']}/report.json; exclusions: {report['excluded']}")


def _status(args: argparse.Namespace) -> int:
    from l3_data.executors import Engine

    status = Engine(_load_pipeline(args)).status()
    state = "finished" if status["finished"] else "not finished"
    print(
        f"{status['workdir']}: {state}; {status['tasks_done']} of {status['tasks']} input "
        "tasks read"
    )
    for s in status["segments"]:
        total = "?" if s["units_total"] is None else s["units_total"]
        barrier = (
            f", then {s['barrier']} ({'reduced' if s['reduced'] else 'not reduced'})"
            if s["barrier"]
            else ""
        )
        print(f"  segment {s['segment']}: {s['units_done']} of {total} chunks done{barrier}")
    return 0


def _configure_langid(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--model", default="", help="fastText model (default: lid.176.ftz)")
    p.add_argument("--text-key", default="text")


def _langid(args: argparse.Namespace) -> int:
    from l3_core.io import atomic_write
    from l3_core.jsonl import Exclusions, iter_jsonl
    from l3_data.extras import require_extra
    from l3_data.steps.langid import LanguageIdentifier

    require_extra("langid", "l3-data langid")
    if not args.input.is_file():
        raise InputFormatError(f"{args.input}: input file not found")
    lid = LanguageIdentifier(args.model or None)
    bad = Exclusions()
    n = 0
    with atomic_write(args.output, encoding="utf-8") as out:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            texts = [r[args.text_key] for r in batch]
            for row, (lang, score) in zip(batch, lid.predict(texts)):
                if not row[args.text_key].strip():
                    lang, score = "und", 0.0  # an empty text has no language
                row["lang"], row["lang_score"] = lang, round(score, 4)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            batch.clear()

        for line, row in iter_jsonl(args.input, on_bad_row=bad.add):
            if not isinstance(row.get(args.text_key), str):
                bad.reject(args.input, line, f"no string {args.text_key!r} field")
                continue
            batch.append(row)
            n += 1
            if len(batch) >= 1024:
                flush()
        flush()
    excluded = args.output.with_name(args.output.name + ".excluded.jsonl")
    if bad:
        bad.write(excluded)
    print(
        f"{n} rows labelled -> {args.output}"
        + (f"; {len(bad)} unreadable rows -> {excluded.name}" if bad else "")
    )
    return 0


def _configure_pii(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--redact", action="store_true", help="replace each hit with [TYPE]")
    p.add_argument("--text-key", default="text")
    p.add_argument(
        "--phone-region",
        action="append",
        default=None,
        metavar="CC",
        help="region whose national phone numbers are detected (repeatable; default US)",
    )


def _pii(args: argparse.Namespace) -> int:
    from l3_core.io import atomic_write
    from l3_core.jsonl import Exclusions, iter_jsonl
    from l3_data.extras import require_extra
    from l3_data.pii import find_pii, redact

    require_extra("pii", "l3-data pii")
    if not args.input.is_file():
        raise InputFormatError(f"{args.input}: input file not found")
    regions = args.phone_region or ["US"]
    bad = Exclusions()
    n = hits_total = 0
    with atomic_write(args.output, encoding="utf-8") as out:
        for line, row in iter_jsonl(args.input, on_bad_row=bad.add):
            text = row.get(args.text_key)
            if not isinstance(text, str):
                bad.reject(args.input, line, f"no string {args.text_key!r} field")
                continue
            hits = find_pii(text, regions=regions)
            row["pii"] = [h.to_json() for h in hits]
            if args.redact:
                row[args.text_key] = redact(text, hits)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
            hits_total += len(hits)
    excluded = args.output.with_name(args.output.name + ".excluded.jsonl")
    if bad:
        bad.write(excluded)
    print(
        f"{n} rows, {hits_total} PII hits{' redacted' if args.redact else ''} -> {args.output}"
        + (f"; {len(bad)} unreadable rows -> {excluded.name}" if bad else "")
    )
    return 0


def _configure_contamination(p: argparse.ArgumentParser) -> None:
    from l3_data.contamination.index import DEFAULT_CHUNK_SIZE, DEFAULT_PARTITIONS
    from l3_data.contamination.run import DEFAULT_N, DEFAULT_THRESHOLD

    p.add_argument(
        "--corpus", type=Path, required=True, help="JSONL of documents, or a token-shard directory"
    )
    p.add_argument("--bench", type=Path, required=True, help="JSONL of {id, text} examples")
    p.add_argument(
        "--out", type=Path, required=True, help="JSONL of {id, contamination, contaminated}"
    )
    p.add_argument("--n", type=int, default=DEFAULT_N, help="n-gram length in tokens")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="an example is contaminated when its contamination is above this share",
    )
    p.add_argument(
        "--index", type=Path, help="index directory to build or reuse (default OUT.index)"
    )
    p.add_argument("--rebuild", action="store_true", help="replace an index of another corpus")
    p.add_argument("--tokenizer", default="llama3", help="'llama3' or a tokenizer file")
    p.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    p.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="hashes held while streaming"
    )
    p.add_argument("--workers", type=int, default=1, help="processes merging partitions")
    p.add_argument("--text-key", default="text", help="text field of the corpus's JSONL rows")
    p.add_argument(
        "--scores", type=Path, help="JSONL of {id, score}: compare clean and contaminated"
    )
    p.add_argument("--report", type=Path, help="gain report (JSON; default OUT.gain.json)")
    p.add_argument("--plot", type=Path, help="gain figure (PNG; default OUT.gain.png)")
    p.add_argument("--no-plot", action="store_true", help="no figure (no 'plot' extra needed)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds of the intervals")
    p.add_argument("--seed", type=int, default=0)


def _contamination(args: argparse.Namespace) -> int:
    from l3_core.io import write_json
    from l3_data.contamination.gain import plot_gain
    from l3_data.contamination.run import ContaminationJob, gain_report, run_contamination
    from l3_data.extras import require_extra

    require_extra("tokenize", "l3-data contamination")
    if args.scores and not args.no_plot:
        require_extra("plot", "l3-data contamination --scores (or pass --no-plot)")
    job = ContaminationJob(
        corpus=args.corpus,
        bench=args.bench,
        out=args.out,
        n=args.n,
        threshold=args.threshold,
        index=args.index,
        tokenizer=args.tokenizer,
        partitions=args.partitions,
        chunk_size=args.chunk_size,
        workers=args.workers,
        rebuild=args.rebuild,
        text_key=args.text_key,
    )
    index, rows = run_contamination(job)
    dirty = sum(r["contaminated"] for r in rows)
    print(
        f"{len(rows)} examples, {dirty} contaminated (above {args.threshold} of their tokens in "
        f"corpus {args.n}-grams) -> {args.out}; index {job.index_dir}: "
        f"{index.record['documents']} documents, {len(index)} distinct {args.n}-grams"
    )
    if not args.scores:
        return 0
    report = gain_report(rows, args.scores, args.threshold, rounds=args.bootstrap, seed=args.seed)
    report_path = args.report or args.out.with_name(args.out.name + ".gain.json")
    write_json(report_path, report)
    _print_gain(report)
    print(f"report -> {report_path}")
    if not args.no_plot:
        plot_path = args.plot or args.out.with_name(args.out.name + ".gain.png")
        plot_gain(report, plot_path)
        print(f"figure -> {plot_path}")
    return 0


def _print_gain(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    g = report["gain"]

    def fmt(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, list):
            return f"[{v[0]:+.4f}, {v[1]:+.4f}]"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    table = Table(title=f"clean vs contaminated at threshold {g['threshold']}")
    for col in ("subset", "examples", "mean score"):
        table.add_column(col, justify="left" if col == "subset" else "right")
    table.add_row("clean", str(g["clean"]), fmt(g["mean_clean"]))
    table.add_row("contaminated", str(g["contaminated"]), fmt(g["mean_contaminated"]))
    table.add_row("all", str(g["examples"]), fmt(g["mean_all"]))
    console = Console()
    console.print(table)
    pct = round(g["confidence"] * 100)
    print(
        f"difference (contaminated - clean): {fmt(g['difference'])} {pct}% CI "
        f"{fmt(g['difference_interval'])}; estimated gain (all - clean): "
        f"{fmt(g['estimated_gain'])} {pct}% CI {fmt(g['estimated_gain_interval'])}"
    )
    if report["unscored_examples"] or report["unknown_ids"]:
        print(
            f"{report['unscored_examples']} examples without a score (left out); "
            f"{report['unknown_ids']} scored ids not in the benchmark"
        )


def _configure_memorisation(p: argparse.ArgumentParser) -> None:
    from l3_data.memorisation import (
        DEFAULT_PROMPT_LENGTHS,
        DEFAULT_SAMPLES,
        DEFAULT_TARGET_LENGTH,
    )

    p.add_argument(
        "--shards", type=Path, required=True, help="token-shard directory (training data)"
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="l3 or HF checkpoint directory")
    p.add_argument(
        "--prompt-lengths",
        type=int,
        nargs="+",
        default=list(DEFAULT_PROMPT_LENGTHS),
        metavar="N",
        help="prompt lengths in tokens, one scenario each",
    )
    p.add_argument(
        "--target-length", type=int, default=DEFAULT_TARGET_LENGTH, help="tokens decoded"
    )
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="documents drawn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="report (JSON)")


def _memorisation(args: argparse.Namespace) -> int:
    from l3_data.extras import require_extra

    require_extra("memorisation", "l3-data memorisation")
    from l3_core.checkpoint import load_checkpoint
    from l3_core.io import write_json
    from l3_data.memorisation import measure_memorisation, open_shards

    model = load_checkpoint(args.checkpoint, device=args.device)
    dataset = open_shards(args.shards, vocab_size=model.args.vocab_size)
    report = measure_memorisation(
        model,
        dataset,
        prompt_lengths=args.prompt_lengths,
        target_length=args.target_length,
        samples=args.samples,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    report["checkpoint"] = str(args.checkpoint)
    if args.out:
        write_json(args.out, report)
    _print_memorisation(report)
    if args.out:
        print(f"report -> {args.out}")
    return 0


def _print_memorisation(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="verbatim memorisation: greedy continuation == ground truth")
    for col in ("prompt", "target", "source", "evaluated", "too short", "exact", "rate"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for s in report["scenarios"]:
        rows = [*s["per_source"].items(), ("all", s)]
        for source, r in rows:
            rate = "n/a" if r["rate"] is None else f"{100 * r['rate']:.2f}%"
            table.add_row(
                str(s["prompt_length"]),
                str(s["target_length"]),
                source,
                str(r["evaluated"]),
                str(r["skipped_short"]),
                str(r["exact"]),
                rate,
            )
    Console().print(table)


def _configure_block_urls(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path, help="the rows whose URL is not blocked")
    p.add_argument(
        "--block-list",
        action="append",
        required=True,
        type=Path,
        help="file of domains (subdomains included) or URL patterns, one a line (repeatable)",
    )
    p.add_argument("--url-key", default="url")


def _block_urls(args: argparse.Namespace) -> int:
    from l3_core.io import atomic_write
    from l3_core.jsonl import Exclusions, iter_jsonl
    from l3_data.steps.url_filter import BlockList

    if not args.input.is_file():
        raise InputFormatError(f"{args.input}: input file not found")
    blocked = BlockList.from_files(args.block_list)
    removed_path = args.output.with_name(args.output.name + ".removed.jsonl")
    bad = Exclusions()
    kept = removed = 0
    with (
        atomic_write(args.output, encoding="utf-8") as out,
        atomic_write(removed_path, encoding="utf-8") as rem,
    ):
        for line, row in iter_jsonl(args.input, on_bad_row=bad.add):
            url = row.get(args.url_key)
            rule = blocked.match(url) if isinstance(url, str) else None
            if rule is None:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                kept += 1
                continue
            record = {"line": line, "url": url, "reason": f"{rule.origin} {rule.entry}"}
            rem.write(json.dumps(record, ensure_ascii=False) + "\n")
            removed += 1
    excluded = args.output.with_name(args.output.name + ".excluded.jsonl")
    if bad:
        bad.write(excluded)
    print(
        f"{kept} rows kept -> {args.output}; {removed} blocked -> {removed_path.name} "
        f"({len(blocked)} rules)"
        + (f"; {len(bad)} unreadable rows -> {excluded.name}" if bad else "")
    )
    return 0


def _configure_dedup(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--method", choices=["minhash", "exact"], default="minhash")
    p.add_argument("--ngram", type=int, default=3)
    p.add_argument("--bands", type=int, default=20)
    p.add_argument("--rows", type=int, default=5)
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="minimum similarity of a joined pair (Jaccard of the word n-gram sets)",
    )
    p.add_argument(
        "--verify",
        choices=["jaccard", "signature"],
        default="jaccard",
        help="similarity of candidate pairs: exact Jaccard, or the signatures' estimate",
    )
    p.add_argument("--workers", type=int, default=0)


def _dedup(args: argparse.Namespace) -> int:
    import shutil

    from l3_core.io import atomic_write
    from l3_data.executors import run_pipeline
    from l3_data.pipeline import Pipeline

    work = args.out_dir / ".work"
    kept = work / "kept"
    step: dict[str, Any] = {
        "type": "minhash_dedup",
        "ngram": args.ngram,
        "bands": args.bands,
        "rows": args.rows,
        "threshold": args.threshold,
        "verify": args.verify,
    }
    if args.method == "exact":
        step = {"type": "exact_dedup"}
    pipe = Pipeline.from_dict(
        {
            "pipeline": {"workdir": str(work), "workers": args.workers, "chunk_size": 50_000},
            "input": {"format": "jsonl", "paths": [str(args.input.resolve())], "max_chars": 2**62},
            "steps": [step, {"type": "write_jsonl", "output": str(kept), "compression": "none"}],
        },
        origin=str(args.input),
    )
    shutil.rmtree(kept, ignore_errors=True)  # a part left by an earlier run is not this one's
    report = run_pipeline(pipe, restart=True, progress=False)
    with atomic_write(args.out_dir / "kept.jsonl", "wb") as out:
        for part in sorted(kept.glob("*.jsonl")):
            out.write(part.read_bytes())
    summary = report["global"]["01." + step["type"]]
    with atomic_write(args.out_dir / "clusters.jsonl", "wb") as out:
        out.write(Path(summary["clusters_file"]).read_bytes())
    print(
        f"{report['documents_in']} rows, {report['documents_out']} kept, "
        f"{summary['duplicates']} duplicates -> {args.out_dir}/kept.jsonl, clusters.jsonl"
    )
    return 0


def _configure_scurve(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", type=Path, help="PNG to write")
    p.add_argument("--bands", type=int, default=20)
    p.add_argument("--rows", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.5, help="the verification threshold")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="BxR",
        help="another banding to draw for comparison, e.g. 14x8 (repeatable)",
    )


def _scurve(args: argparse.Namespace) -> int:
    from l3_data.extras import require_extra
    from l3_data.scurve import parse_banding, plot_scurve

    require_extra("plot", "l3-data scurve")
    settings = [(args.bands, args.rows), *(parse_banding(c) for c in args.compare)]
    summary = plot_scurve(settings, args.threshold, args.output)
    for (b, r), s50 in zip(settings, summary["similarity_at_half"]):
        print(
            f"{b} bands x {r} rows: a pair becomes a candidate with probability 0.5 at "
            f"Jaccard {s50:.3f}"
        )
    print(f"S-curve -> {args.output}")
    return 0


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("examples", type=Path, help="JSONL with text and label fields")
    p.add_argument(
        "model", type=Path, help="output model: .bin for fastText, .npz for scikit-learn"
    )
    p.add_argument(
        "--kind",
        choices=["fasttext", "sklearn"],
        default="",
        help="default: the kind the model's extension holds",
    )
    p.add_argument("--label-key", default="label")
    p.add_argument("--text-key", default="text")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, help="also write the evaluation report here (JSON)")


def _train(args: argparse.Namespace) -> int:
    from l3_core.io import write_json
    from l3_data.classifier import read_labelled, train_classifier
    from l3_data.extras import require_extra

    require_extra("classify", "l3-data train-classifier")
    texts, labels = read_labelled(args.examples, args.text_key, args.label_key)
    report = train_classifier(
        texts, labels, args.model, kind=args.kind, test_fraction=args.test_fraction, seed=args.seed
    )
    if args.report:
        write_json(args.report, report)
    print(
        f"{report['kind']} classifier -> {args.model}; held-out accuracy "
        f"{report['accuracy']:.3f} on {report['n_test']} examples"
    )
    for label, m in report["per_label"].items():
        if isinstance(m, dict) and label not in ("macro avg", "weighted avg"):
            print(
                f"  {label:>20}: precision {m['precision']:.3f} recall {m['recall']:.3f} "
                f"f1 {m['f1-score']:.3f} (n={int(m['support'])})"
            )
    return 0


def _steps(args: argparse.Namespace) -> int:
    import dataclasses

    from l3_data.steps import STEPS

    for name, cls in sorted(STEPS.items()):
        opts = ", ".join(f.name for f in dataclasses.fields(cls) if f.init)
        extra = f"  [needs l3-data[{cls.extra}]]" if cls.extra else ""
        print(f"{name}: {opts}{extra}")
    return 0


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


COMMANDS = [
    Command("run", "run (or resume) a pipeline file", _configure_run, _run),
    Command("status", "how far the run of a pipeline file got", _pipeline_arguments, _status),
    Command("langid", "add lang and lang_score to JSONL rows", _configure_langid, _langid),
    Command("pii", "find (and redact) PII in JSONL rows", _configure_pii, _pii),
    Command(
        "contamination",
        "share of each benchmark example's tokens in corpus n-grams",
        _configure_contamination,
        _contamination,
    ),
    Command(
        "memorisation",
        "how often a checkpoint reproduces its training documents verbatim",
        _configure_memorisation,
        _memorisation,
    ),
    Command(
        "block-urls",
        "drop JSONL rows whose URL is on a block list",
        _configure_block_urls,
        _block_urls,
    ),
    Command("dedup", "near-duplicate removal of a JSONL file", _configure_dedup, _dedup),
    Command(
        "train-classifier", "train a fastText or scikit-learn classifier", _configure_train, _train
    ),
    Command("scurve", "draw the MinHash LSH S-curve of a banding", _configure_scurve, _scurve),
    Command("steps", "list the step types and their options", _no_arguments, _steps),
]

if __name__ == "__main__":
    sys.exit(main())
