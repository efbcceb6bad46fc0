"""The staged sweep (centring pass, sweep, prediction, held-out runs) with a stand-in trainer
whose loss is a known law of N and D; the real runs are the benchmark's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from l3_core.metrics_schema import MetricsRecord
from l3_scaling.errors import SweepError
from l3_scaling.sweep import SweepConfig
from l3_scaling.sweep.centre import budget_vertex, centres_from_runs
from l3_scaling.sweep.heldout import read_prediction, record_measurement, write_prediction
from l3_scaling.sweep.pipeline import PipelineConfig, load_pipeline, run_pipeline, seed_means
from l3_scaling.sweep.plan import plan_sweep


def _stub_train(run, cfg):
    """In place of the trainer subprocess (the runner's process handling is tested in
    test_sweep.py): loss = E + A / N^a + B / D^b, Chinchilla's form with small constants, plus
    +-2e-4 by seed; each call logs the run and whether results.json held a prediction."""
    loss = 1.5 + 40.0 / run.params**0.35 + 60.0 / run.tokens**0.3 + 2e-4 * (1 if run.seed else -1)
    out = Path(cfg.out_dir)
    predicted = (out / "results.json").is_file()
    with (out / "calls.txt").open("a") as f:
        f.write(f"{run.name} {int(predicted)}\n")
    record = MetricsRecord(
        step=run.steps,
        loss=loss,
        lr=1e-3,
        grad_norm=1.0,
        tokens_per_s=1.0,
        mfu=0.1,
        seq_len=128,
        batch_size=16,
        tokens=run.tokens,
        step_time_s=0.1,
        val_loss=loss,
    )
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / "metrics.jsonl").write_text(json.dumps(record.to_json()) + "\n")


def _scorer(run):
    # a downstream score that falls with the run's loss, through a known sigmoid
    nll = 0.5 + 1.0 / run.params**0.2 + 3.0 / run.tokens**0.2
    return {"nll": nll, "accuracy": 0.25 + 0.75 / (1 + np.exp(8 * (nll - 0.62)))}


def _configs(tmp_path):
    cfg = SweepConfig(
        budgets=[1e13, 4e13, 1.6e14],
        out_dir=tmp_path / "sw",
        data_path="builtin:stdlib-small",
        head_dim=8,
        max_layers=8,
        max_heads=32,
        sizes_per_budget=5,
        decades=1.0,
        tokens_per_param=5.0,
        global_batch_size=16,
        micro_batch_size=16,
        seeds=[0],
        parallel=2,
    )
    return cfg, PipelineConfig(n_bootstrap=50, heldout_factor=4.0, cloze_items=10)


@pytest.fixture(autouse=True)
def _stand_in_trainer(monkeypatch):
    # the stand-in never reads data: the configs only need a path
    monkeypatch.setattr(
        "l3_scaling.sweep.files.data_table", lambda path: {"path": "/none", "val_path": "/none"}
    )
    monkeypatch.setattr("l3_scaling.sweep.runner._train", _stub_train)


def test_prediction_is_written_before_any_held_out_run_and_a_rerun_trains_nothing(tmp_path):
    cfg, pipe = _configs(tmp_path)
    result = run_pipeline(cfg, pipe, _scorer, chance=0.25)
    calls = (cfg.out_dir / "calls.txt").read_text().split("\n")[:-1]
    held = [c for c in calls if c.startswith("C6.40e14")]
    assert len(held) == 4  # the predicted size at 2 seeds, its two neighbours at one
    assert all(c.endswith(" 1") for c in held)  # results.json held the prediction
    assert all(c.endswith(" 0") for c in calls if c not in held)
    assert [c[:8] for c in calls[-4:]] == ["C6.40e14"] * 4  # held-out runs come last
    saved = json.loads((cfg.out_dir / "results.json").read_text())
    assert saved["prediction"]["written_at"] < saved["measured"]["written_at"]
    # a smooth, nearly noise-free law: the 4x extrapolation lands within 3% (the power law
    # through the minima has no irreducible term, so it errs low)
    assert abs(result.results["errors"]["loss_relative"]) < 0.03
    assert result.results["prediction"]["fitted"]["noise"]["seed_sd"] == pytest.approx(
        4e-4 / 2**0.5
    )
    # resumable: nothing is trained again, and the prediction is the one written first
    again = run_pipeline(cfg, pipe, _scorer, chance=0.25)
    assert (cfg.out_dir / "calls.txt").read_text().split("\n")[:-1] == calls
    assert again.results["prediction"]["written_at"] == saved["prediction"]["written_at"]


def test_measurement_without_a_prediction_is_refused(tmp_path):
    with pytest.raises(SweepError, match="no prediction written"):
        record_measurement(tmp_path, {"loss": 1.0}, {})
    write_prediction(tmp_path, {"loss_opt": 2.0})
    record_measurement(tmp_path, {"loss": 1.9}, {"loss_relative": 0.05})
    assert read_prediction(tmp_path)["loss_opt"] == 2.0


def test_budget_vertex_is_the_parabolas_vertex_clamped_to_the_sizes():
    N = np.array([1e4, 3e4, 1e5, 3e5])
    x = np.log10(N)
    assert budget_vertex(N, 2.0 + 0.3 * (x - 4.7) ** 2) == pytest.approx(10**4.7)
    assert budget_vertex(N, 2.0 + 0.3 * (x - 6.0) ** 2) == pytest.approx(3e5)  # beyond: the end
    assert budget_vertex(N, 2.0 - 0.3 * (x - 4.9) ** 2) == pytest.approx(1e4)  # concave: best run


def test_centres_follow_the_power_law_through_the_first_pass_vertices():
    # vertices at N* = 0.1 C^0.5 exactly: every budget, fitted or not, is centred on it
    C, N, loss = [], [], []
    for c in (1e10, 1e12):
        for n in np.logspace(-0.6, 0.6, 3) * 0.1 * c**0.5:
            C.append(c)
            N.append(n)
            loss.append(3.0 + 0.2 * np.log10(n / (0.1 * c**0.5)) ** 2)
    got = centres_from_runs(C, N, loss, [1e10, 1e11, 1e12])
    assert got == pytest.approx({c: 0.1 * c**0.5 for c in (1e10, 1e11, 1e12)})


def test_plan_centres_each_budget_on_the_given_size(tmp_path):
    cfg, _ = _configs(tmp_path)
    for centre in (3e5, 3e6):
        plan = plan_sweep(cfg, dict.fromkeys(cfg.budgets, centre))
        for b in cfg.budgets:
            sizes = sorted(r.params for r in plan if r.budget == b)
            mid = sizes[len(sizes) // 2]
            assert abs(np.log10(mid / centre)) < 0.15


def test_seed_means_pool_the_spread_of_repeated_runs(tmp_path):
    cfg, _ = _configs(tmp_path)
    cfg.seeds = [0, 1]
    plan = plan_sweep(cfg)
    values = {r.name: {"loss": 3.0 + (0.1 if r.seed else -0.1)} for r in plan}
    means, noise = seed_means(plan, values)
    assert means["loss"] == pytest.approx(np.full(len(plan) // 2, 3.0))
    assert noise == pytest.approx(0.2 / 2**0.5)  # sd of (2.9, 3.1)


def test_pipeline_table_is_read_and_checked(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("budgets = [1e10, 1e11]\n[pipeline]\nheldout_factor = 5.0\n")
    cfg, pipe = load_pipeline(toml)
    assert cfg.budgets == [1e10, 1e11] and pipe.heldout_factor == 5.0
    toml.write_text("budgets = [1e10]\n[pipeline]\nheldout_factor = 0.5\n")
    with pytest.raises(Exception, match=r"pipeline.heldout_factor = 0.5"):
        load_pipeline(toml)
    toml.write_text("budgets = [1e10]\n[pipeline]\nheldout = 2\n")
    with pytest.raises(Exception, match=r"unknown config key pipeline.heldout"):
        load_pipeline(toml)
