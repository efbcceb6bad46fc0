"""The main job runs its stages and writes a summary (few steps, so it stays quick)."""

import json

import main_job
import pytest


def test_a_stage_runs_through_the_job_and_its_figures_reach_the_summary(tmp_path, capsys):
    assert main_job.main(["--workdir", str(tmp_path), "--only", "data"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ["data"]
    figures = summary["data"]
    assert figures["documents_out"] > 50 and figures["seconds"] > 0
    assert (tmp_path / "data" / "data_shards").is_dir()
    assert f"documents_out: {figures['documents_out']}" in capsys.readouterr().out


def test_unknown_stage_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main_job.main(["--workdir", str(tmp_path), "--only", "nonsense"])


def test_core_stage_trains_plots_and_samples(tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="the core stage trains with l3-core[train]")
    import stages.core as core

    monkeypatch.setattr(core, "STEPS", 12)
    assert main_job.main(["--workdir", str(tmp_path), "--only", "core"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["core"]
    assert summary["steps"] == 12
    assert summary["final_val_loss"] < summary["first_val_loss"]
    assert (tmp_path / "core" / "loss_table.md").read_text().startswith("| step |")
    assert summary["sample"].startswith(core.PROMPT)
