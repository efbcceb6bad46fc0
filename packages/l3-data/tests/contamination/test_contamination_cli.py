"""``l3-data contamination``: the output fields, JSONL and token-shard corpora giving the same
answer, bad rows named in one line, and the clean-vs-contaminated gain report."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from l3_core.shards import write_manifest, write_shard
from l3_data.cli import main
from l3_data.contamination.gain import performance_gain, read_scores
from l3_data.errors import InputFormatError
from l3_data.steps.tokenize import load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("llama3")


def _words(rng: random.Random, k: int) -> str:
    return " ".join(f"w{rng.randrange(5000)}" for _ in range(k))


@pytest.fixture
def data(tmp_path):
    rng = random.Random(3)
    docs = [_words(rng, 80) for _ in range(30)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs) + "{oops\n")
    bench = [
        {"id": "copied", "text": docs[4]},
        {"id": "unrelated", "text": _words(rng, 40)},
        {"id": 7, "text": "short"},
        {"id": "half", "text": _words(rng, 30) + " " + " ".join(docs[9].split()[:30])},
    ]
    bench_path = tmp_path / "bench.jsonl"
    bench_path.write_text("".join(json.dumps(r) + "\n" for r in bench))
    return tmp_path, docs, corpus, bench_path


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_rows_have_the_acceptance_fields(data, capsys):
    tmp, _, corpus, bench = data
    out = tmp / "out.jsonl"
    argv = ["contamination", "--corpus", str(corpus), "--bench", str(bench), "--out", str(out)]
    assert main(argv) == 0
    rows = _rows(out)
    assert [set(r) for r in rows] == [{"id", "contamination", "contaminated"}] * 4
    by_id = {r["id"]: r for r in rows}
    assert by_id["copied"] == {"id": "copied", "contamination": 1.0, "contaminated": True}
    assert by_id["unrelated"]["contamination"] == 0.0
    assert by_id[7] == {"id": 7, "contamination": 0.0, "contaminated": False}  # < 8 tokens
    assert 0.3 < by_id["half"]["contamination"] < 0.7
    record = json.loads((tmp / "out.jsonl.index" / "index.json").read_text())
    assert record["documents"] == 30 and record["excluded_rows"] == 1
    assert "4 examples, 1 contaminated" in capsys.readouterr().out
    # --threshold moves the label, --index reuses the built index
    assert main([*argv, "--threshold", "0.2", "--index", str(tmp / "out.jsonl.index")]) == 0
    assert {r["id"]: r["contaminated"] for r in _rows(out)}["half"] is True


def test_token_shard_corpus_equals_the_jsonl_corpus(data, tok):
    tmp, docs, corpus, bench = data
    shards = tmp / "shards"
    ids = tok.encode_batch(docs, bos=False, eos=False)
    for k in range(3):  # three shards, ten documents each
        part = [(i, "web") for i in ids[10 * k : 10 * (k + 1)]]
        write_shard(shards, f"s{k}", part, vocab_size=tok.n_words, tokenizer=tok.fingerprint())
    write_manifest(shards)
    for name, path in (("a", corpus), ("b", shards)):
        argv = ["contamination", "--corpus", str(path), "--bench", str(bench)]
        assert main([*argv, "--out", str(tmp / f"{name}.jsonl"), "--partitions", "3"]) == 0
    assert _rows(tmp / "a.jsonl") == _rows(tmp / "b.jsonl")


def test_shards_of_another_tokenizer_are_refused(tmp_path, data, capsys):
    tmp, _, _, bench = data
    write_shard(tmp / "sh", "s0", [([1, 2, 3], "x")], vocab_size=10, tokenizer="other:10")
    write_manifest(tmp / "sh")
    argv = ["contamination", "--corpus", str(tmp / "sh"), "--bench", str(bench)]
    assert main([*argv, "--out", str(tmp / "o.jsonl")]) == 4
    assert "written with tokenizer 'other:10'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "row,message",
    [
        ({"text": "a b c"}, "bench.jsonl:2: field 'id' missing"),
        ({"id": 1.5, "text": "a"}, "bench.jsonl:2: field 'id' 1.5 is not a string or integer"),
        ({"id": "a", "text": "x"}, "bench.jsonl:2: field 'id' = 'a' repeats the id of line 1"),
        ({"id": "b", "text": 3}, "bench.jsonl:2: field 'text' is int, not a string"),
    ],
)
def test_bad_bench_rows_are_one_line_naming_file_line_and_field(tmp_path, row, message, capsys):
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "a b c"}) + "\n")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "a", "text": "q"}) + "\n" + json.dumps(row) + "\n")
    argv = ["contamination", "--corpus", str(tmp_path / "c.jsonl"), "--bench", str(bench)]
    assert main([*argv, "--out", str(tmp_path / "o.jsonl")]) == 4
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.jsonl.index").exists()  # refused before the corpus was indexed


def test_a_corpus_directory_without_a_manifest_is_named(tmp_path, capsys):
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": 1, "text": "q"}) + "\n")
    argv = ["contamination", "--corpus", str(tmp_path), "--bench", str(tmp_path / "b.jsonl")]
    assert main([*argv, "--out", str(tmp_path / "o.jsonl")]) == 4
    assert "a directory without manifest.json" in capsys.readouterr().err


def test_gain_report_compares_clean_and_contaminated_scores(data, capsys):
    tmp, _, corpus, bench = data
    scores = tmp / "scores.jsonl"
    rows = [("copied", 1.0), ("unrelated", 0.0), (7, 0.0), ("half", 1.0), ("nobody", 1.0)]
    scores.write_text("".join(json.dumps({"id": i, "score": s}) + "\n" for i, s in rows))
    out = tmp / "out.jsonl"
    argv = ["contamination", "--corpus", str(corpus), "--bench", str(bench), "--out", str(out)]
    assert main([*argv, "--scores", str(scores), "--threshold", "0.2"]) == 0
    report = json.loads((tmp / "out.jsonl.gain.json").read_text())
    g = report["gain"]
    assert (g["clean"], g["contaminated"], g["mean_clean"], g["mean_contaminated"]) == (2, 2, 0, 1)
    assert g["difference"] == 1.0 and g["difference_interval"] == [1.0, 1.0]
    assert g["estimated_gain"] == 0.5  # all (0.5) - clean (0)
    assert report["unknown_ids"] == 1 and report["unscored_examples"] == 0
    assert (tmp / "out.jsonl.gain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "estimated gain (all - clean): 0.5000" in printed


def test_bootstrap_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    k = 4000
    contamination = np.r_[np.zeros(k), np.ones(k)]
    scores = np.r_[rng.random(k) < 0.5, rng.random(k) < 0.7].astype(float)
    g = performance_gain(contamination, scores, 0.5, rounds=2000, seed=1)
    p0, p1 = scores[:k].mean(), scores[k:].mean()
    se = np.sqrt(p0 * (1 - p0) / k + p1 * (1 - p1) / k)
    lo, hi = g["difference_interval"]
    assert g["difference"] == pytest.approx(p1 - p0)
    assert (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.1)
    assert lo < g["difference"] < hi
    assert g["estimated_gain"] == pytest.approx(scores.mean() - p0)
    assert g["estimated_gain_interval"] == pytest.approx([0.5 * lo, 0.5 * hi], rel=1e-9)


def test_an_empty_subset_has_no_difference():
    g = performance_gain([0.0, 0.1], [1.0, 0.0], 0.5)
    assert g["contaminated"] == 0 and g["difference"] is None and g["mean_contaminated"] is None


@pytest.mark.parametrize(
    "line,message",
    [
        ({"id": "a"}, "s.jsonl:1: field 'score' = None: expected a finite number"),
        ({"id": "a", "score": "high"}, "field 'score' = 'high'"),
        ({"id": "a", "score": float("nan")}, "field 'score' = nan"),
        ({"score": 1}, "s.jsonl:1: field 'id' = None: expected an id"),
    ],
)
def test_bad_score_rows_are_named(tmp_path, line, message):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputFormatError, match=message.replace("(", r"\(")):
        read_scores(path)
