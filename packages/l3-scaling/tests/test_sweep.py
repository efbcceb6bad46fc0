from __future__ import annotations

import json
import sys

import pytest

from l3_core import ModelArgs
from l3_core.config import read_toml
from l3_scaling.data import read_runs
from l3_scaling.errors import SweepError
from l3_scaling.sweep import (
    SweepConfig,
    collect,
    final_val_loss,
    load_sweep,
    plan_sweep,
    run_sweep,
    trainer_config,
    write_sweep,
)


def _cfg(tmp_path, **kw) -> SweepConfig:
    base = dict(
        budgets=[5e11, 1e12],
        out_dir=tmp_path / "sw",
        tokens_per_param=1.0,
        decades=1.2,
        model={"vocab_size": 8192},
    )
    base.update(kw)
    return SweepConfig(**base)


def test_plan_spends_each_budget_up_to_one_step_of_rounding(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_sweep(cfg)
    for budget in cfg.budgets:
        runs = [r for r in plan if r.budget == budget]
        assert len(runs) == cfg.sizes_per_budget
        assert len({r.params for r in runs}) == len(runs)
        for r in runs:
            args = ModelArgs.from_preset(
                "llama3-tiny",
                vocab_size=8192,
                dim=r.dim,
                n_layers=r.n_layers,
                n_heads=r.n_heads,
                n_kv_heads=r.n_kv_heads,
            )
            step_flops = args.flops_per_token(cfg.seq_len) * cfg.global_batch_size * cfg.seq_len
            assert r.flops == pytest.approx(args.flops_per_token(cfg.seq_len) * r.tokens)
            assert abs(r.flops - budget) <= step_flops / 2 + 1e-6
        # bigger models get fewer tokens at a fixed budget
        by_size = sorted(runs, key=lambda r: r.params)
        assert [r.tokens for r in by_size] == sorted((r.tokens for r in by_size), reverse=True)


def test_budget_too_small_for_three_sizes_names_the_budget(tmp_path):
    with pytest.raises(SweepError, match=r"budget C=1e\+09"), pytest.warns(UserWarning):
        plan_sweep(_cfg(tmp_path, budgets=[1e9]))


def test_written_configs_hold_the_agreed_trainer_keys_and_the_listing(tmp_path):
    cfg = _cfg(tmp_path, trainer={"logging": {"plot": False}, "train": {"precision": "fp32"}})
    plan = plan_sweep(cfg)
    written = write_sweep(plan, cfg)
    run = plan[0]
    data = read_toml(run.config_path)
    assert data == trainer_config(run, cfg)
    assert data["run_dir"] == str(run.run_dir)
    assert data["model"] == {
        "preset": "llama3-tiny",
        "vocab_size": 8192,
        "dim": run.dim,
        "n_layers": run.n_layers,
        "n_heads": run.n_heads,
        "n_kv_heads": run.n_kv_heads,
    }
    assert data["train"]["max_steps"] == run.steps and data["train"]["eval_every"] == run.steps
    assert data["train"]["precision"] == "fp32" and data["logging"] == {"plot": False}
    assert data["data"] == {"path": "builtin:stdlib", "seq_len": cfg.seq_len}
    listing = written["listing"].read_text().splitlines()
    assert listing == [str(r.config_path.resolve()) for r in plan]


def test_slurm_script_is_an_array_over_every_config(tmp_path):
    cfg = _cfg(tmp_path, slurm_directives=["--partition=gpu", "--gres=gpu:1"], slurm_max_parallel=4)
    plan = plan_sweep(cfg)
    script = write_sweep(plan, cfg)["slurm"].read_text()
    assert f"#SBATCH --array=0-{len(plan) - 1}%4" in script
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --gres=gpu:1" in script
    assert 'exec l3-core train --config "$CONFIG"' in script


def _metrics(path, records, trailing=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + trailing)
    return path


def test_final_val_loss_needs_the_last_step_with_a_val_loss(tmp_path):
    p = tmp_path / "m.jsonl"
    assert final_val_loss(p, 10) is None  # not started
    _metrics(p, [{"step": 5, "loss": 3.0, "val_loss": 3.1}])
    assert final_val_loss(p, 10) is None  # unfinished
    _metrics(p, [{"step": 9, "loss": 3.0}, {"step": 10, "loss": 2.9, "val_loss": 2.95}])
    assert final_val_loss(p, 10) == 2.95
    _metrics(p, [{"step": 10, "loss": 2.9, "val_loss": 2.95}], trailing='{"step": 11, "lo')
    assert final_val_loss(p, 10) is None  # an interrupted write: not finished
    p.write_text('{"step": 1}\nnot json\n{"step": 10, "val_loss": 2.0}\n')
    with pytest.raises(SweepError, match=r"m\.jsonl:2: not a JSON object"):
        final_val_loss(p, 10)


def test_collect_writes_a_runs_table_of_finished_runs(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_sweep(cfg)
    for i, r in enumerate(plan[:-1]):
        _metrics(r.run_dir / "metrics.jsonl", [{"step": r.steps, "val_loss": 5.0 + i}])
    runs = read_runs(collect(plan, cfg), required=("C", "N", "D", "loss"))
    assert len(runs) == len(plan) - 1
    assert runs.loss.tolist() == [5.0 + i for i in range(len(plan) - 1)]
    assert runs.C.tolist() == [r.budget for r in plan[:-1]]
    with pytest.raises(SweepError, match=plan[-1].name):
        collect(plan, cfg, allow_missing=False)


# A stand-in trainer used only to test the runner's process handling (resume, failures); the
# real end-to-end sweep with l3-core train is in integration/ and the benchmark.
STUB = """
import json, sys, pathlib
from l3_core.config import read_toml
cfg = read_toml(sys.argv[sys.argv.index('--config') + 1])
run = pathlib.Path(cfg['run_dir'])
if cfg['model']['dim'] == int(sys.argv[1]):
    sys.exit('boom')
with open(run / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps({'step': cfg['train']['max_steps'], 'val_loss': 1.0 + cfg['model']['dim'] / 100}) + '\\n')
with open(run.parent / 'calls.txt', 'a') as f:
    f.write(run.name + '\\n')
"""


def test_runner_resumes_and_reports_failed_runs_by_name(tmp_path):
    stub = tmp_path / "stub.py"
    stub.write_text(STUB)
    cfg = _cfg(tmp_path, budgets=[1e12], command=[sys.executable, str(stub), "-1"])
    plan = plan_sweep(cfg)
    write_sweep(plan, cfg)
    table = run_sweep(plan, cfg)
    assert len(read_runs(table)) == len(plan)
    calls = (plan[0].run_dir.parent / "calls.txt").read_text().split()
    assert calls == [r.name for r in plan]
    # a second run trains nothing: every run is finished
    run_sweep(plan, cfg)
    assert (plan[0].run_dir.parent / "calls.txt").read_text().split() == calls
    # a failing run is named, the others are kept
    bad = plan[1]
    cfg_fail = _cfg(
        tmp_path / "f", budgets=[1e12], command=[sys.executable, str(stub), str(bad.dim)]
    )
    plan_f = plan_sweep(cfg_fail)
    write_sweep(plan_f, cfg_fail)
    failing = [r.name for r in plan_f if r.dim == bad.dim]
    with pytest.raises(SweepError, match=failing[0]) as e:
        run_sweep(plan_f, cfg_fail)
    assert "boom" in str(e.value)
    assert len(read_runs(plan_f[0].run_dir.parent.parent / "runs.csv")) == len(plan_f) - len(
        failing
    )


def test_load_sweep_rejects_unknown_keys_and_bad_budgets(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("budgets = [1e12]\nbudgetz = 3\n")
    with pytest.raises(Exception, match="budgetz"):
        load_sweep(p)
    p.write_text("budgets = [-1.0]\n")
    with pytest.raises(SweepError, match="positive"):
        load_sweep(p)
    p.write_text("budgets = [1e12]\n")
    assert load_sweep(p, ["sizes_per_budget=7"]).sizes_per_budget == 7
