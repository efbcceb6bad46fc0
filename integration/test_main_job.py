"""The main job runs its stages and writes a summary (few steps, so it stays quick)."""

import json

import main_job
import pytest


def test_stage_order_follows_the_llama3_flow():
    stages = main_job.available_stages()
    assert stages[: stages.index("core") + 1][-1] == "core"
    assert stages == [s for s in main_job.ORDER if s in stages]


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
