"""The PII and URL block-list steps from a pipeline file: exclusions with reasons, redacted
output, and a rerun (resume) that gives the same output."""

from __future__ import annotations

import gzip
import json

import pytest

from l3_data.cli import main
from l3_data.errors import PipelineConfigError
from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline

pytest.importorskip("phonenumbers", reason="the 'pii' extra (phonenumbers) is not installed")

CLEAN = "The council met on 2024-01-15 to discuss version 1.2.3.4 of the budget plan."
CONTACT = "Write to the editor at editor@example.org with your letters about the budget."
DUMP = "jane@example.org 123-45-6789 4111111111111111 10.0.0.1 bob@example.com"

PIPELINE = """
[pipeline]
workdir = "work"
chunk_size = 2
[input]
paths = ["in.jsonl"]
[[steps]]
type = "url_blocklist"
block_lists = ["block.txt"]
[[steps]]
type = "pii_filter"
max_pii_char_ratio = 0.3
[[steps]]
type = "pii_redact"
[[steps]]
type = "write_jsonl"
output = "out"
compression = "none"
"""


def _rows():
    return [
        {"id": "clean", "text": CLEAN, "url": "https://news.example.net/a"},
        {"id": "contact", "text": CONTACT, "url": "https://paper.example.net/b"},
        {"id": "dump", "text": DUMP, "url": "https://paste.example.net/c"},
        {"id": "blocked", "text": CLEAN, "url": "https://www.spam.biz/x"},
        {"id": "no-url", "text": CLEAN},
    ]


def _run(tmp_path, restart=False):
    report = run_pipeline(Pipeline.from_toml(tmp_path / "p.toml"), restart=restart, progress=False)
    out = {}
    for p in sorted((tmp_path / "out").glob("*.jsonl")):
        for line in p.read_text().splitlines():
            row = json.loads(line)
            out[row["id"]] = row
    return report, out


def test_pipeline_blocks_urls_drops_pii_dense_documents_and_redacts_the_rest(tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    (tmp_path / "block.txt").write_text("# spam\nspam.biz\n")
    (tmp_path / "p.toml").write_text(PIPELINE)
    report, out = _run(tmp_path)
    assert sorted(out) == ["clean", "contact", "no-url"]
    assert out["clean"]["text"] == CLEAN
    assert out["contact"]["text"] == CONTACT.replace("editor@example.org", "[EMAIL]")
    assert out["contact"]["pii_counts"] == {"email": 1}
    excluded = []
    for p in (tmp_path / "work" / "excluded").rglob("*.jsonl.gz"):
        excluded += [json.loads(x) for x in gzip.decompress(p.read_bytes()).decode().splitlines()]
    got = {e["id"]: e["reason"] for e in excluded}
    assert got == {"blocked": "url_blocklist:blocked_domain", "dump": "pii_filter:pii_density"}
    assert next(e for e in excluded if e["id"] == "blocked")["blocked_by"] == "block.txt:2 spam.biz"
    assert report["steps"]["03.pii_redact"]["redacted:email"] == 1
    # A rerun resumes from the markers and an explicit restart recomputes: same output.
    assert _run(tmp_path)[1] == out
    assert _run(tmp_path, restart=True)[1] == out


def test_unknown_pii_types_and_ratios_out_of_range_are_refused_at_load(tmp_path):
    base = {"pipeline": {"workdir": str(tmp_path / "w")}, "input": {"paths": ["x.jsonl"]}}
    step = {"type": "pii_filter", "types": ["email", "passport"], "max_pii_char_ratio": 2}
    with pytest.raises(PipelineConfigError, match="passport") as e:
        Pipeline.from_dict({**base, "steps": [step]})
    assert "max_pii_char_ratio = 2" in str(e.value)
    with pytest.raises(PipelineConfigError, match="phone_regions = \\['XX'\\]"):
        Pipeline.from_dict({**base, "steps": [{"type": "pii_redact", "phone_regions": ["XX"]}]})


def test_pii_command_lists_hits_with_offsets_and_redacts(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    text = "Call +1 415-555-2671 or mail a@example.org; IBAN GB82WEST12345698765432."
    src.write_text(json.dumps({"id": 1, "text": text}) + "\n" + '{"id": 2, "text": 5}\n')
    out = tmp_path / "out.jsonl"
    assert main(["pii", str(src), str(out)]) == 0
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(h["type"], text[h["start"] : h["end"]]) for h in row["pii"]] == [
        ("phone", "+1 415-555-2671"),
        ("email", "a@example.org"),
        ("iban", "GB82WEST12345698765432"),
    ]
    assert row["text"] == text
    assert "1 unreadable rows" in capsys.readouterr().out
    assert main(["pii", str(src), str(out), "--redact"]) == 0
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["text"] == "Call [PHONE] or mail [EMAIL]; IBAN [IBAN]."
    assert row["pii"][0] == {"type": "phone", "start": 5, "end": 20}


def test_pii_command_names_a_missing_input(tmp_path, capsys):
    assert main(["pii", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl")]) == 4
    assert "nope.jsonl: input file not found" in capsys.readouterr().err
