"""The same pipeline on a real local Ray instance gives the local executor's output.

Runs in ``nox -s l3-data-ray`` (which installs ``l3-data[ray]``)."""

from __future__ import annotations

import gzip
import json

import pytest

from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline

ray = pytest.importorskip(
    "ray", reason="Ray is optional (l3-data[ray]); nox -s l3-data-ray runs this"
)


def _pipe(d, executor):
    return Pipeline.from_dict(
        {
            "pipeline": {
                "workdir": str(d / "work"),
                "chunk_size": 30,
                "workers": 2,
                "executor": executor,
            },
            "input": {"paths": [str(d.parent / "in*.jsonl")]},
            "steps": [
                {"type": "gopher_quality", "min_words": 10},
                # partitioned reduces: their parts are actor calls too
                {"type": "line_dedup", "bucket_size": 50, "partitions": 3},
                {"type": "minhash_dedup", "partitions": 5},
                {"type": "write_jsonl", "output": str(d / "out")},
            ],
        }
    )


def _rows(d):
    return [
        json.loads(x)
        for p in sorted((d / "out").glob("*.gz"))
        for x in gzip.decompress(p.read_bytes()).decode().splitlines()
    ]


def test_ray_executor_matches_local_executor(tmp_path, rng, prose, write_rows):
    for f in range(2):
        rows = [{"id": f"{f}-{i}", "text": prose(rng, 40) + "\nshare | print"} for i in range(70)]
        rows += [{"id": f"{f}-dup", "text": rows[0]["text"]}]
        write_rows(tmp_path / f"in{f}.jsonl", rows)
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = run_pipeline(_pipe(tmp_path / "local", "local"), progress=False)
    on_ray = run_pipeline(_pipe(tmp_path / "ray", "ray"), progress=False)
    assert not ray.is_initialized()  # the executor shut down the instance it started
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    assert on_ray["documents_out"] == local["documents_out"] == len(_rows(tmp_path / "ray")) > 100
    dups = [r["global"]["03.minhash_dedup"]["duplicates"] for r in (on_ray, local)]
    assert dups[0] == dups[1] >= 1
    assert not any("share | print" in r["text"] for r in _rows(tmp_path / "ray"))
    assert len(list((tmp_path / "ray" / "work" / "markers" / "reduce1").glob("p*.json"))) == 5
