from __future__ import annotations

from pathlib import Path

import numpy as np

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.line_dedup import LineDedup


def _run(step: LineDedup, chunks: list[list[Document]], tmp_path: Path) -> list[list[Document]]:
    units = [f"u{i}" for i in range(len(chunks))]
    arrays = {u: step.collect(c) for u, c in zip(units, chunks)}
    step.reduce(units, arrays.__getitem__, tmp_path)
    out = []
    for u, c in zip(units, chunks):
        out.append(list(step.apply(c, ChunkContext(unit=u, workdir=tmp_path), tmp_path)))
    return out


def test_line_in_more_than_six_documents_is_removed_six_is_kept(tmp_path):
    docs = [
        Document(
            f"unique line {i}\nmenu: home | about\n" + ("cookie banner" if i < 6 else "x"), f"d{i}"
        )
        for i in range(7)
    ]
    (out,) = _run(LineDedup(), [docs], tmp_path)
    assert all("menu:" not in d.text for d in out)
    assert sum("cookie banner" in d.text for d in out) == 6
    assert [d.text.split("\n")[0] for d in out] == [f"unique line {i}" for i in range(7)]


def test_counts_are_per_bucket_across_chunks(tmp_path):
    # 8 documents in chunks of 3, 3, 2; buckets of 4: the shared line is in 4 documents of
    # each bucket, so with max_count 3 it goes everywhere, with max_count 4 nowhere.
    def docs(n, start):
        return [Document(f"shared line\nown {start + i}", f"d{start + i}") for i in range(n)]

    def chunks():
        return [docs(3, 0), docs(3, 3), docs(2, 6)]

    out = _run(LineDedup(bucket_size=4, max_count=3), chunks(), tmp_path / "a")
    assert all("shared" not in d.text for c in out for d in c)
    out = _run(LineDedup(bucket_size=4, max_count=4), chunks(), tmp_path / "b")
    assert all("shared" in d.text for c in out for d in c)
    assert len(np.load(tmp_path / "a" / "bucket1.npy")) == 1


def test_document_emptied_by_line_dedup_is_excluded_with_reason(tmp_path):
    docs = [Document("boilerplate", f"d{i}") for i in range(8)]
    step = LineDedup()
    units = ["u0"]
    step.reduce(units, {"u0": step.collect(docs)}.__getitem__, tmp_path)
    ctx = ChunkContext(unit="u0", workdir=tmp_path)
    assert list(step.apply(docs, ctx, tmp_path)) == []
    assert {e["reason"] for e in ctx.excluded} == {"line_dedup:empty_after_line_dedup"}
