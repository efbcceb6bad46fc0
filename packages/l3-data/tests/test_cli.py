from __future__ import annotations

import json

from l3_data.cli import main


def test_langid_command_adds_lang_and_score_and_excludes_unreadable_rows(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        json.dumps(
            {
                "id": 1,
                "text": "Bonjour, je voudrais réserver une table pour deux personnes ce soir.",
            }
        ).encode()
        + b"\n"
        + json.dumps(
            {"id": 2, "text": "Good morning, I would like to book a table for two tonight."}
        ).encode()
        + b"\n"
        + b'{"id": 3, "text": broken}\n'
        + json.dumps({"id": 4, "text": ""}).encode()
        + b"\n"
    )
    out = tmp_path / "out.jsonl"
    assert main(["langid", str(src), str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["lang"]) for r in rows] == [(1, "fr"), (2, "en"), (4, "und")]
    assert 0.5 < rows[0]["lang_score"] <= 1.0 and rows[2]["lang_score"] == 0.0
    assert "1 unreadable rows" in capsys.readouterr().out
    assert (tmp_path / "out.jsonl.excluded.jsonl").exists()


def test_dedup_command_writes_kept_rows_and_clusters_of_ids(tmp_path, rng, prose):
    rows = []
    for i in range(30):
        rows.append({"id": f"a{i}", "text": prose(rng, 120), "extra": i})
    rows.insert(
        10, {"id": "dup-of-a3", "text": rows[3]["text"].replace("the", "teh", 1), "extra": -1}
    )
    rows.append({"id": "dup-of-a20", "text": rows[21]["text"] + " the end"})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(["dedup", str(src), str(tmp_path / "out"), "--method", "minhash", "--workers", "1"])
        == 0
    )
    kept = [json.loads(x) for x in (tmp_path / "out" / "kept.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == [r["id"] for r in rows if not r["id"].startswith("dup")]
    assert kept[5]["extra"] == 5
    clusters = [
        json.loads(x) for x in (tmp_path / "out" / "clusters.jsonl").read_text().splitlines()
    ]
    assert sorted(map(sorted, clusters)) == [["a20", "dup-of-a20"], ["a3", "dup-of-a3"]]


def test_exact_dedup_command(tmp_path):
    rows = [
        {"id": "x", "text": "same text"},
        {"id": "y", "text": "Same  text"},
        {"id": "z", "text": "other"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["dedup", str(src), str(tmp_path / "out"), "--method", "exact"]) == 0
    assert (tmp_path / "out" / "clusters.jsonl").read_text().strip() == '["x", "y"]'


def test_run_command_reports_and_bad_pipeline_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": "A short document that stays."}) + "\n")
    p = tmp_path / "p.toml"
    p.write_text(
        '[input]\npaths = ["in.jsonl"]\n[[steps]]\ntype = "length_filter"\n'
        'min_chars = 5\n[[steps]]\ntype = "write_jsonl"\noutput = "out"\n'
    )
    assert main(["run", str(p), "--no-progress", "--set", "pipeline.workers=1"]) == 0
    assert "1 documents in, 1 out" in capsys.readouterr().out
    report = json.loads((tmp_path / "l3-data-work" / "report.json").read_text())
    assert report["steps"]["01.length_filter"]["docs_out"] == 1
    p.write_text('[input]\npaths = ["in.jsonl"]\n[[steps]]\ntype = "length_filter"\nmin_char = 5\n')
    assert main(["run", str(p)]) == 3  # ExitCode.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "min_char" in err and str(p) in err


def test_train_classifier_command_prints_held_out_report(tmp_path, rng, prose, capsys):
    ex = tmp_path / "ex.jsonl"
    rows = [
        {"text": prose(rng, 40), "label": "hq"}
        if i % 2
        else {"text": " ".join(["buy now cheap deals click"] * 8), "label": "lq"}
        for i in range(60)
    ]
    ex.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            [
                "train-classifier",
                str(ex),
                str(tmp_path / "q.npz"),
                "--report",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    assert "held-out accuracy 1.000" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["kind"] == "sklearn"


def _one_step_pipeline(tmp_path, step: str) -> object:
    p = tmp_path / "p.toml"
    p.write_text(f'[pipeline]\nworkers = 1\n[input]\npaths = ["in.jsonl*"]\n{step}')
    return p


def test_exit_codes_follow_the_error_class(tmp_path, capsys):
    import gzip

    from l3_core.exit_codes import ExitCode

    data = gzip.compress(
        b"".join(json.dumps({"text": f"row {i}"}).encode() + b"\n" for i in range(3000))
    )
    (tmp_path / "in.jsonl.gz").write_bytes(data[: len(data) // 2])
    p = _one_step_pipeline(tmp_path, '[[steps]]\ntype = "length_filter"\n')
    assert main(["run", str(p), "--no-progress"]) == ExitCode.INPUT
    assert "truncated gzip" in capsys.readouterr().err
    (tmp_path / "q.joblib").write_bytes(b"not read")
    p = _one_step_pipeline(tmp_path, '[[steps]]\ntype = "classify"\nmodel = "q.joblib"\n')
    assert main(["run", "--config", str(p), "--set", "pipeline.workdir=w2"]) == ExitCode.MODEL
    assert "pickles, which run code" in capsys.readouterr().err


def test_status_command_reads_the_engines_progress(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5))
    )
    p = _one_step_pipeline(tmp_path, '[[steps]]\ntype = "exact_dedup"\n')
    assert main(["status", str(p)]) == 0
    assert "not finished; 0 of 1 input tasks read" in capsys.readouterr().out
    assert main(["run", str(p), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(p)]) == 0
    out = capsys.readouterr().out
    assert ": finished; 1 of 1" in out
    assert "segment 0: 1 of 1 chunks done, then 01.exact_dedup (reduced)" in out


def test_version_comes_from_the_package_metadata(capsys):
    import pytest

    from l3_core.versions import package_version

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"l3-data {package_version('l3-data')}"


def test_scurve_command_draws_a_png_and_names_the_half_probability_similarity(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["scurve", str(out), "--bands", "20", "--rows", "5", "--compare", "14x8"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    # (1 - 0.5 ** (1/20)) ** (1/5) = 0.509; (1 - 0.5 ** (1/14)) ** (1/8) = 0.685
    assert "Jaccard 0.509" in text and "Jaccard 0.685" in text
    assert main(["scurve", str(out), "--compare", "14-8"]) == 3


def test_outputs_get_the_permissions_of_the_umask(tmp_path):
    import os
    import stat

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "some words to keep here"}) + "\n")
    old = os.umask(0o022)
    try:
        assert main(["dedup", str(src), str(tmp_path / "d"), "--workers", "1"]) == 0
        assert main(["langid", str(src), str(tmp_path / "l.jsonl")]) == 0
    finally:
        os.umask(old)
    for p in (
        tmp_path / "d" / "kept.jsonl",
        tmp_path / "d" / "clusters.jsonl",
        tmp_path / "l.jsonl",
    ):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "d").rglob("*") if p.is_file()}
    assert modes == {0o644}
