from __future__ import annotations

import gzip
import json

import pytest

from l3_data.errors import WorkdirMismatchError
from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline


def _corpus(tmp_path, rng, prose, write_rows, n_files=2, n=120):
    paths = []
    for f in range(n_files):
        rows = []
        for i in range(n):
            text = prose(rng, 80)
            rows.append({"id": f"f{f}-{i}", "text": text, "url": f"http://site.org/{f}/{i % 100}"})
        # an exact copy of a document of the first file in every file (cross-shard dedup)
        rows.append(
            {
                "id": f"f{f}-copy",
                "text": "  " + rows[0]["text"].upper() if f else rows[0]["text"] + " ",
            }
        )
        paths.append(write_rows(tmp_path / f"in{f}.jsonl", rows))
    with open(paths[0], "a") as fh:
        fh.write("{broken\n")
    return paths


def _pipeline(tmp_path, workers=1, chunk_size=50, extra=None):
    return Pipeline.from_dict(
        {
            "pipeline": {
                "workdir": str(tmp_path / "work"),
                "chunk_size": chunk_size,
                "workers": workers,
            },
            "input": {"paths": [str(tmp_path / "in*.jsonl")]},
            "steps": [
                {"type": "url_dedup"},
                {"type": "gopher_quality", "min_words": 10},
                {"type": "exact_dedup"},
                {"type": "minhash_dedup"},
                {"type": "write_jsonl", "output": str(tmp_path / "out")},
                *(extra or []),
            ],
        }
    )


def _read_out(tmp_path):
    rows = []
    for p in sorted((tmp_path / "out").glob("*.jsonl.gz")):
        rows += [json.loads(x) for x in gzip.decompress(p.read_bytes()).decode().splitlines()]
    return rows


def test_every_input_row_is_either_output_or_excluded_with_a_reason(
    tmp_path, rng, prose, write_rows
):
    _corpus(tmp_path, rng, prose, write_rows)
    report = run_pipeline(_pipeline(tmp_path, workers=2), progress=False)
    out = _read_out(tmp_path)
    excluded = []
    for p in (tmp_path / "work" / "excluded").rglob("*.jsonl.gz"):
        excluded += [json.loads(x) for x in gzip.decompress(p.read_bytes()).decode().splitlines()]
    assert report["documents_in"] == 2 * 121 + 1 == len(out) + len(excluded)
    assert report["documents_out"] == len(out)
    reasons = {e["reason"] for e in excluded}
    # 20 repeated URLs per file, one copy per file, the broken line
    assert sum(e["reason"] == "url_dedup:duplicate_url" for e in excluded) == 40
    assert sum(e["reason"] == "exact_dedup:duplicate_text" for e in excluded) == 2
    assert "read:malformed_json" in reasons
    ids = [r["id"] for r in out]
    assert len(ids) == len(set(ids)) and "f0-0" in ids and "f1-copy" not in ids
    steps = report["steps"]
    assert steps["01.url_dedup"]["docs_in"] - steps["01.url_dedup"]["docs_out"] == 40
    assert steps["05.write_jsonl"]["docs_out"] == len(out)


def test_rerun_of_a_finished_run_does_no_work_and_reports_the_same(
    tmp_path, rng, prose, write_rows
):
    _corpus(tmp_path, rng, prose, write_rows)
    first = run_pipeline(_pipeline(tmp_path), progress=False)
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    second = run_pipeline(_pipeline(tmp_path), progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == mtimes
    assert first["steps"] == second["steps"]


def test_workdir_of_a_different_pipeline_is_refused(tmp_path, rng, prose, write_rows):
    _corpus(tmp_path, rng, prose, write_rows)
    run_pipeline(_pipeline(tmp_path), progress=False)
    with pytest.raises(WorkdirMismatchError, match="different pipeline"):
        run_pipeline(_pipeline(tmp_path, chunk_size=7), progress=False)
    report = run_pipeline(_pipeline(tmp_path, chunk_size=7), restart=True, progress=False)
    assert report["documents_out"] == len(_read_out(tmp_path))


def test_results_do_not_depend_on_worker_count_or_chunk_size(tmp_path, rng, prose, write_rows):
    _corpus(tmp_path, rng, prose, write_rows)
    run_pipeline(_pipeline(tmp_path, workers=1, chunk_size=1000), progress=False)
    one = sorted(r["id"] for r in _read_out(tmp_path))
    for p in (tmp_path / "out").iterdir():
        p.unlink()
    run_pipeline(_pipeline(tmp_path, workers=2, chunk_size=13), restart=True, progress=False)
    assert sorted(r["id"] for r in _read_out(tmp_path)) == one


def test_task_resumed_after_its_last_chunk_adds_no_empty_chunk(tmp_path, rng, prose, write_rows):
    write_rows(tmp_path / "in0.jsonl", [{"id": str(i), "text": prose(rng, 60)} for i in range(100)])
    run_pipeline(_pipeline(tmp_path, chunk_size=40), progress=False)
    work = tmp_path / "work"
    assert json.loads((work / "markers" / "s0" / "task0000.done.json").read_text())["chunks"] == 3
    # as if killed after the last chunk's marker but before the task's
    (work / "markers" / "s0" / "task0000.done.json").unlink()
    (work / "report.json").unlink()
    report = run_pipeline(_pipeline(tmp_path, chunk_size=40), progress=False)
    assert json.loads((work / "markers" / "s0" / "task0000.done.json").read_text())["chunks"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"t0000c0000{i}.jsonl.gz" for i in range(3)
    ]
    assert report["documents_in"] == 100


def test_missing_model_fails_before_any_work(tmp_path, rng, prose, write_rows):
    from l3_data.errors import ModelFileError

    write_rows(tmp_path / "in0.jsonl", [{"text": prose(rng, 60)}])
    pipe = _pipeline(
        tmp_path, workers=2, extra=[{"type": "classify", "model": str(tmp_path / "q.bin")}]
    )
    with pytest.raises(ModelFileError, match=r"q\.bin: classifier model not found"):
        run_pipeline(pipe, progress=False)
    assert not (tmp_path / "work" / "markers").exists()


def test_error_in_a_forked_worker_reaches_the_caller_as_its_class(tmp_path, rng, prose, write_rows):
    from l3_core.errors import InputError

    write_rows(tmp_path / "in0.jsonl", [{"text": prose(rng, 30)} for _ in range(20)])
    data = gzip.compress((tmp_path / "in0.jsonl").read_bytes())
    (tmp_path / "in1.jsonl").write_bytes(data[: len(data) // 2])  # truncated gzip, misnamed
    with pytest.raises(InputError, match=r"in1\.jsonl: truncated gzip"):
        run_pipeline(_pipeline(tmp_path, workers=2), progress=False)


def test_executors_are_chosen_by_name_from_the_registry(tmp_path, rng, prose, write_rows):
    from l3_data.executors import EXECUTORS, Executor, register_executor

    ran: list[tuple[int, object]] = []

    @register_executor("recording")
    class Recording(Executor):
        @classmethod
        def from_settings(cls, settings):
            return cls()

        def run_items(self, seg, items):
            for item in items:
                ran.append((seg, item))
                yield self.engine.run_item(seg, item)

    write_rows(tmp_path / "in0.jsonl", [{"id": str(i), "text": prose(rng, 30)} for i in range(10)])
    try:
        pipe = Pipeline.from_dict(
            {
                "pipeline": {
                    "workdir": str(tmp_path / "work"),
                    "chunk_size": 4,
                    "executor": "recording",
                },
                "input": {"paths": [str(tmp_path / "in0.jsonl")]},
                "steps": [{"type": "exact_dedup"}],
            }
        )
        report = run_pipeline(pipe, progress=False)
    finally:
        del EXECUTORS["recording"]
    assert ran == [(0, 0), (1, "t0000c00000"), (1, "t0000c00001"), (1, "t0000c00002")]
    assert report["documents_out"] == 10


def test_status_reports_progress_without_running(tmp_path, rng, prose, write_rows):
    from l3_data.executors import Engine

    _corpus(tmp_path, rng, prose, write_rows)
    pipe = _pipeline(tmp_path)
    before = Engine(pipe).status()
    assert before["tasks_done"] == 0 and before["segments"][0]["units_total"] is None
    assert not before["finished"]
    run_pipeline(pipe, progress=False)
    after = Engine(pipe).status()
    assert after["finished"] and after["tasks_done"] == after["tasks"] == 2
    assert [s["units_done"] for s in after["segments"]] == [6, 6, 6, 6]
    assert [s["reduced"] for s in after["segments"]] == [True, True, True, False]
