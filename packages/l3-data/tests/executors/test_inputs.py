"""A resumed run reads the inputs it started with, or refuses (exit 4) and says what to do."""

from __future__ import annotations

import json
import os

import pytest

from l3_core.exit_codes import ExitCode
from l3_data.cli import main
from l3_data.errors import InputChangedError
from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline


def _pipeline(tmp_path):
    return Pipeline.from_dict(
        {
            "pipeline": {"workdir": str(tmp_path / "work"), "chunk_size": 20, "workers": 1},
            "input": {"paths": [str(tmp_path / "in*.jsonl")]},
            "steps": [
                {"type": "exact_dedup"},
                {"type": "write_jsonl", "output": str(tmp_path / "out"), "compression": "none"},
            ],
        },
        origin=str(tmp_path / "p.toml"),
    )


def _rows(start, n):
    return [
        {"id": f"d{i}", "text": f"document number {i} with some words"} for i in range(start, n)
    ]


def _as_if_killed(tmp_path):
    """What a kill -9 in segment 1 leaves: report gone, the last chunks without a marker."""
    work = tmp_path / "work"
    (work / "report.json").unlink()
    for p in sorted((work / "markers" / "s1").glob("t*c*.json"))[-2:]:
        p.unlink()


def _out_ids(tmp_path):
    ids = []
    for p in sorted((tmp_path / "out").glob("*.jsonl")):
        ids += [json.loads(x)["id"] for x in p.read_text().splitlines()]
    return ids


def test_resume_after_the_input_grew_is_refused_naming_the_file_and_the_fix(tmp_path, write_rows):
    src = write_rows(tmp_path / "in0.jsonl", _rows(0, 100))
    run_pipeline(_pipeline(tmp_path), progress=False)
    _as_if_killed(tmp_path)
    write_rows(src, _rows(0, 200))  # 100 new documents
    with pytest.raises(
        InputChangedError, match=r"in0\.jsonl changed .*size \d+ -> \d+ bytes.*--force"
    ):
        run_pipeline(_pipeline(tmp_path), progress=False)


def test_same_size_edit_and_an_added_file_are_refused(tmp_path, write_rows):
    src = write_rows(tmp_path / "in0.jsonl", _rows(0, 50))
    run_pipeline(_pipeline(tmp_path), progress=False)
    _as_if_killed(tmp_path)
    data = src.read_bytes()
    src.write_bytes(data.replace(b"number 7 ", b"number X ", 1))
    assert len(src.read_bytes()) == len(data)
    with pytest.raises(InputChangedError, match="same size, different content hash"):
        run_pipeline(_pipeline(tmp_path), progress=False)
    src.write_bytes(data)
    write_rows(tmp_path / "in1.jsonl", _rows(50, 60))  # the glob now matches one more file
    with pytest.raises(InputChangedError, match=r"new input .*in1\.jsonl"):
        run_pipeline(_pipeline(tmp_path), progress=False)


def test_touched_but_identical_input_resumes_to_the_uninterrupted_output(tmp_path, write_rows):
    src = write_rows(tmp_path / "in0.jsonl", _rows(0, 100))
    run_pipeline(_pipeline(tmp_path), progress=False)
    want = _out_ids(tmp_path)
    _as_if_killed(tmp_path)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    report = run_pipeline(_pipeline(tmp_path), progress=False)
    assert _out_ids(tmp_path) == want and report["documents_in"] == 100


def test_cli_exits_4_on_changed_input_and_force_starts_over_with_the_new_rows(
    tmp_path, write_rows, capsys
):
    src = write_rows(tmp_path / "in0.jsonl", _rows(0, 100))
    p = tmp_path / "p.toml"
    p.write_text(
        '[pipeline]\nworkdir = "work"\nchunk_size = 20\nworkers = 1\n[input]\npaths = ["in0.jsonl"]\n'
        '[[steps]]\ntype = "exact_dedup"\n[[steps]]\ntype = "write_jsonl"\noutput = "out"\n'
        'compression = "none"\n'
    )
    assert main(["run", str(p), "--no-progress"]) == 0
    _as_if_killed(tmp_path)
    write_rows(src, _rows(0, 200))
    capsys.readouterr()
    assert main(["run", str(p), "--no-progress"]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in0.jsonl changed" in err and "--force" in err
    assert main(["run", str(p), "--no-progress", "--force"]) == 0
    assert sorted(_out_ids(tmp_path)) == sorted(f"d{i}" for i in range(200))


def test_stale_temporaries_of_killed_writes_are_removed_at_the_next_start(tmp_path, write_rows):
    write_rows(tmp_path / "in0.jsonl", _rows(0, 40))
    run_pipeline(_pipeline(tmp_path), progress=False)
    _as_if_killed(tmp_path)
    stale = [
        tmp_path / "work" / "data" / "s0" / ".t0000c00001.jsonl.zst.k3j_a.tmp",
        tmp_path / "work" / "state" / "s0" / ".t0000c00000.keep.npy.x1.tmp",
        tmp_path / "out" / ".t0000c00001.jsonl.q9.tmp",
    ]
    for s in stale:
        s.write_bytes(b"partial")
    keep = tmp_path / "out" / "t0000c00000.jsonl"
    assert keep.exists()
    run_pipeline(_pipeline(tmp_path), progress=False)
    assert not any(s.exists() for s in stale) and keep.exists()
