"""One contamination analysis: index the corpus (or reuse its index), score a benchmark, and
optionally compare a model's scores on its clean and contaminated examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l3_core.jsonl import write_jsonl
from l3_data.contamination.corpus import Corpus
from l3_data.contamination.gain import (
    CURVE_THRESHOLDS,
    DEFAULT_BOOTSTRAP,
    gain_curve,
    pair_scores,
    performance_gain,
    read_scores,
)
from l3_data.contamination.index import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PARTITIONS,
    IndexSpec,
    NgramIndex,
    build_index,
)
from l3_data.contamination.query import check_threshold, read_bench, score_examples
from l3_data.errors import InputFormatError, OptionError
from l3_data.steps.tokenize import load_tokenizer

#: the paper's n (section 5.1.4)
DEFAULT_N = 8
DEFAULT_THRESHOLD = 0.5


@dataclass(kw_only=True)
class ContaminationJob:
    corpus: Path
    bench: Path
    out: Path
    n: int = DEFAULT_N
    threshold: float = DEFAULT_THRESHOLD
    index: Path | None = None
    tokenizer: str = "llama3"
    partitions: int = DEFAULT_PARTITIONS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    workers: int = 1
    rebuild: bool = False
    text_key: str = "text"

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        for name, low in (("n", 1), ("partitions", 1), ("chunk_size", 1), ("workers", 1)):
            if getattr(self, name) < low:
                raise OptionError(
                    f"--{name.replace('_', '-')} {getattr(self, name)}: expected >= {low}"
                )

    @property
    def index_dir(self) -> Path:
        """``--index``, or ``OUT.index`` beside the output (so a rerun reuses it)."""
        return self.index or self.out.with_name(self.out.name + ".index")


def open_or_build_index(job: ContaminationJob, tokenizer: Any) -> NgramIndex:
    corpus = Corpus(job.corpus, tokenizer, text_key=job.text_key)
    spec = IndexSpec(
        n=job.n,
        partitions=job.partitions,
        tokenizer=tokenizer.fingerprint(),
        corpus=corpus.fingerprint(),
    )

    def stats() -> dict[str, Any]:
        excluded = job.index_dir / "excluded.jsonl"
        if corpus.excluded:
            corpus.excluded.write(excluded)
        return {"excluded_rows": len(corpus.excluded)}

    return build_index(
        job.index_dir,
        corpus.documents(),
        spec,
        chunk_size=job.chunk_size,
        workers=job.workers,
        rebuild=job.rebuild,
        stats=stats,
    )


def run_contamination(job: ContaminationJob) -> tuple[NgramIndex, list[dict[str, Any]]]:
    """Build or reuse the index, write one ``{"id", "contamination", "contaminated"}`` row per
    benchmark example to ``job.out``, and return the index and the rows."""
    tokenizer = load_tokenizer(job.tokenizer)
    examples = list(read_bench(job.bench, tokenizer))  # a bad row stops us before the build
    index = open_or_build_index(job, tokenizer)
    rows = list(score_examples(index, examples, job.threshold))
    write_jsonl(job.out, rows)
    return index, rows


def gain_report(
    rows: list[dict[str, Any]],
    scores_path: Path,
    threshold: float,
    *,
    rounds: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """The clean-vs-contaminated comparison of the model scores in ``scores_path``."""
    scores = read_scores(scores_path)
    contamination, values, missing = pair_scores(rows, scores)
    if not values:
        raise InputFormatError(f"{scores_path}: no score for any benchmark example id")
    if rounds < 1:
        raise OptionError(f"--bootstrap {rounds}: expected >= 1")
    return {
        "scores": str(scores_path),
        "unscored_examples": missing,
        "unknown_ids": len(set(scores) - {r["id"] for r in rows}),
        "gain": performance_gain(contamination, values, threshold, rounds=rounds, seed=seed),
        "curve": gain_curve(contamination, values, CURVE_THRESHOLDS),
    }
