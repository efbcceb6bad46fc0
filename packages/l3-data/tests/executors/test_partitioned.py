"""Partitioned reduces through the local executor: the same kept and removed documents for any
number of partitions and workers, the parts spread over the workers, and a run stopped between
parts resumes to the same result."""

from __future__ import annotations

import gzip
import json

import pytest

from l3_data.executors import Engine, LocalExecutor, run_engine, run_pipeline
from l3_data.pipeline import Pipeline


def _corpus(tmp_path, rng, prose, write_rows):
    for f in range(2):
        rows = []
        for i in range(90):
            if rows and i % 4 == 0:
                text = rows[rng.randrange(len(rows))]["text"].replace("the", "a", 1)
            else:
                text = prose(rng, 40) + "\nshare this article | cookie settings"
            rows.append({"id": f"{f}-{i}", "text": text})
        write_rows(tmp_path / f"in{f}.jsonl", rows)


def _pipe(tmp_path, name, workers, partitions):
    return Pipeline.from_dict(
        {
            "pipeline": {"workdir": str(tmp_path / name), "chunk_size": 25, "workers": workers},
            "input": {"paths": [str(tmp_path / "in*.jsonl")]},
            "steps": [
                {"type": "line_dedup", "bucket_size": 70, "partitions": partitions},
                {"type": "minhash_dedup", "partitions": partitions},
                {"type": "write_jsonl", "output": str(tmp_path / name / "out")},
            ],
        }
    )


def _result(tmp_path, name):
    def rows(folder):
        return sorted(
            (r["id"], r["text"], r.get("reason", ""))
            for p in (tmp_path / name / folder).rglob("*.gz")
            for r in map(json.loads, gzip.decompress(p.read_bytes()).decode().splitlines())
        )

    return rows("out"), rows("excluded")


@pytest.fixture
def reference(tmp_path, rng, prose, write_rows):
    _corpus(tmp_path, rng, prose, write_rows)
    run_pipeline(_pipe(tmp_path, "ref", 1, 1), progress=False)
    return _result(tmp_path, "ref")


@pytest.mark.parametrize(("workers", "partitions"), [(1, 5), (2, 1), (2, 7)])
def test_kept_and_removed_do_not_depend_on_partitions_or_workers(
    tmp_path, reference, workers, partitions
):
    name = f"w{workers}p{partitions}"
    report = run_pipeline(_pipe(tmp_path, name, workers, partitions), progress=False)
    assert _result(tmp_path, name) == reference
    kept, excluded = reference
    assert len(kept) > 100 and any("near_duplicate" in r for *_, r in excluded)
    assert not any("cookie settings" in t for _, t, _ in kept)  # the shared line went
    assert report["global"]["02.minhash_dedup"]["partitions"] == partitions
    markers = list((tmp_path / name / "markers" / "reduce1").glob("p*.json"))
    assert len(markers) == partitions
    figures = json.loads(markers[0].read_text())
    assert figures["rss_peak_mib"] > 0 and figures["rows"] >= 0


def test_a_run_stopped_between_parts_resumes_to_the_same_result(tmp_path, reference):
    pipe = _pipe(tmp_path, "stopped", 1, 6)
    engine = Engine(pipe)
    engine.prepare()
    engine.setup()
    for task in engine.pending(0):
        engine.run_item(0, task)
    done = engine.pending_partitions(0)[:2]
    for item in done:
        engine.run_item(0, item)
    assert len(engine.pending_partitions(0)) == 4  # stopped here, as by a kill
    stamps = [engine.partition_marker(0, i.part).stat().st_mtime_ns for i in done]
    report = run_engine(Engine(pipe), LocalExecutor(1), progress=False)
    assert [engine.partition_marker(0, i.part).stat().st_mtime_ns for i in done] == stamps
    assert _result(tmp_path, "stopped") == reference
    assert report["global"]["01.line_dedup"]["frequent_lines"] >= 1
