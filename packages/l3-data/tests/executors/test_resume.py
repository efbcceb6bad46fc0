"""A run killed with SIGKILL mid-way, then rerun, gives exactly the uninterrupted output."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

from l3_core.shards import ShardDataset

PIPELINE = """
[pipeline]
workdir = "work"
chunk_size = 40
workers = 1

[input]
paths = ["in.jsonl"]

[[steps]]
type = "gopher_repetition"

[[steps]]
type = "minhash_dedup"

[[steps]]
type = "line_dedup"

[[steps]]
type = "write_jsonl"
output = "out"

[[steps]]
type = "tokenize"
output = "shards"
"""


def _setup(d, rows):
    d.mkdir()
    (d / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "p.toml").write_text(PIPELINE)


def _cmd(d):
    return [sys.executable, "-m", "l3_data.cli", "run", str(d / "p.toml"), "--no-progress"]


def _outputs(d):
    rows = []
    for p in sorted((d / "out").glob("*.jsonl.gz")):
        rows += [json.loads(x) for x in gzip.decompress(p.read_bytes()).decode().splitlines()]
    ds = ShardDataset(d / "shards")
    docs = [(ids.tolist(), src) for ids, src in ds.documents()]
    return rows, docs, ds.manifest


def test_killed_run_resumes_without_losing_or_duplicating_documents(tmp_path, rng, prose):
    rows = []
    for i in range(2400):
        text = prose(rng, 60)
        rows.append(
            {
                "id": f"d{i}",
                "text": text if i % 7 else rows[-1]["text"] + " again" if rows else text,
            }
        )
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _setup(clean, rows)
    _setup(killed, rows)
    subprocess.run(_cmd(clean), check=True, capture_output=True)

    proc = subprocess.Popen(_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = killed / "work" / "markers" / "s0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if markers.is_dir() and len(list(markers.glob("t*c*.json"))) >= 5:
            break
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(markers.glob("t*c*.json")))
    assert 5 <= done < 60, f"kill landed after {done} of 60 chunks"
    assert not (killed / "work" / "report.json").exists()

    result = subprocess.run(_cmd(killed), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    got_rows, got_docs, got_manifest = _outputs(killed)
    want_rows, want_docs, want_manifest = _outputs(clean)
    ids = [r["id"] for r in got_rows]
    assert len(ids) == len(set(ids))
    assert got_rows == want_rows
    assert got_docs == want_docs
    assert got_manifest["n_tokens"] == want_manifest["n_tokens"]
    report = json.loads((killed / "work" / "report.json").read_text())
    assert report["documents_out"] == len(want_rows)
    assert report["documents_in"] == 2400
