"""The guard stage runs inside the main job and gives the decisions its inputs call for."""

import json

import main_job
import pytest


def test_guard_stage_decisions(tmp_path):
    pytest.importorskip("l3_guard", reason="the guard stage needs l3-guard installed")
    assert main_job.main(["--workdir", str(tmp_path), "--only", "guard"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["guard"]
    d = summary["decisions"]
    assert d["benign question"].startswith("ALLOW")
    assert d["prompt injection"].startswith("BLOCK") and "prompt_guard" in d["prompt injection"]
    assert d["jailbreak"].startswith("BLOCK")
    assert d["unsafe request"].startswith("BLOCK") and "S9" in d["unsafe request"]
    assert d["refusal"].startswith("ALLOW")
    assert (
        d["buffer overflow answer"].startswith("BLOCK")
        and "bugprone-gets" in d["buffer overflow answer"]
    )
    assert d["insecure code answer"].startswith("WARN")


def test_llm_backend_on_the_core_checkpoint_fails_closed(tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="the core stage trains with l3-core[train]")
    pytest.importorskip("l3_guard", reason="the guard stage needs l3-guard installed")
    import stages.core as core

    monkeypatch.setattr(core, "STEPS", 12)
    assert main_job.main(["--workdir", str(tmp_path), "--only", "core,guard"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["guard"]
    assert summary["llm_backend"].endswith("3/3 unsafe, 3 malformed, 0 errors"), summary[
        "llm_backend"
    ]
