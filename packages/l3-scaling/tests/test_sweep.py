from __future__ import annotations

import json
import sys

import pytest

from l3_core import ModelArgs
from l3_core.config import load_config, read_toml
from l3_core.errors import ConfigError
from l3_core.exit_codes import ExitCode
from l3_core.metrics_schema import MetricsRecord
from l3_core.run_config import RunConfig
from l3_scaling.data import read_runs
from l3_scaling.errors import ParameterError, SweepError, TableError
from l3_scaling.sweep import (
    SweepConfig,
    collect,
    final_val_loss,
    load_sweep,
    plan_sweep,
    run_sweep,
    slurm_script,
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


def test_written_configs_load_back_as_the_trainers_run_config(tmp_path):
    cfg = _cfg(tmp_path, trainer={"logging": {"plot": False}, "train": {"precision": "bf16"}})
    plan = plan_sweep(cfg)
    written = write_sweep(plan, cfg)
    run = plan[0]
    rc = load_config(RunConfig, run.config_path)
    assert rc == trainer_config(run, cfg)  # the TOML round trip loses nothing
    assert rc.run_dir == str(run.run_dir)
    args = rc.model.args()
    assert (args.dim, args.n_layers, args.n_heads, args.kv_heads, args.vocab_size) == (
        run.dim,
        run.n_layers,
        run.n_heads,
        run.n_kv_heads,
        8192,
    )
    assert rc.train.max_steps == run.steps == rc.train.eval_every
    assert rc.train.precision == "bf16" and rc.logging.plot is False  # the trainer table
    assert (rc.data.path, rc.data.seq_len) == ("builtin:stdlib", cfg.seq_len)
    assert "load" not in read_toml(run.config_path)["model"]  # None is left out, not "None"
    listing = written["listing"].read_text().splitlines()
    assert listing == [str(r.config_path.resolve()) for r in plan]


def test_a_typo_in_the_trainer_table_fails_when_the_sweep_is_written(tmp_path):
    cfg = _cfg(tmp_path, trainer={"train": {"max_stepz": 3}})
    plan = plan_sweep(cfg)
    with pytest.raises(SweepError, match=r"unknown config key train\.max_stepz"):
        write_sweep(plan, cfg)
    assert not plan[0].config_path.exists()


def test_slurm_script_is_an_array_over_every_config(tmp_path):
    cfg = _cfg(tmp_path, slurm_directives=["--partition=gpu", "--gres=gpu:1"], slurm_max_parallel=4)
    plan = plan_sweep(cfg)
    script = slurm_script(plan, cfg, tmp_path / "configs.txt")
    assert f"#SBATCH --array=0-{len(plan) - 1}%4" in script
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --gres=gpu:1" in script
    assert 'exec l3-core train --config "$CONFIG"' in script


def _record(step, val_loss=None, loss=3.0):
    """A trainer metrics line as l3-core's schema defines it."""
    return MetricsRecord(
        step=step,
        loss=loss,
        lr=1e-3,
        grad_norm=1.0,
        tokens_per_s=1e4,
        mfu=0.1,
        seq_len=128,
        batch_size=8,
        tokens=step * 1024,
        step_time_s=0.1,
        val_loss=val_loss,
    ).to_json()


def _metrics(path, records, trailing=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + trailing)
    return path


def test_final_val_loss_needs_the_last_step_with_a_val_loss(tmp_path):
    p = tmp_path / "metrics.jsonl"
    assert final_val_loss(tmp_path, 10) is None  # not started
    _metrics(p, [_record(5, val_loss=3.1)])
    assert final_val_loss(tmp_path, 10) is None  # unfinished
    _metrics(p, [_record(9), _record(10, val_loss=2.95)])
    assert final_val_loss(tmp_path, 10) == 2.95
    final = json.dumps(_record(10, val_loss=2.95))
    _metrics(p, [_record(9)], trailing=final[: len(final) // 2])
    assert final_val_loss(tmp_path, 10) is None  # the final record was cut by a kill


def test_a_bad_metrics_line_is_an_input_error_naming_file_and_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    _metrics(p, [_record(1)], trailing="not json\n" + json.dumps(_record(10, 2.0)) + "\n")
    with pytest.raises(TableError, match=r"metrics\.jsonl:2: invalid JSON") as e:
        final_val_loss(tmp_path, 10)
    assert e.value.exit_code == ExitCode.INPUT
    _metrics(p, [{**_record(10, 2.0), "val_loss": "low"}])  # checked against l3-core's schema
    with pytest.raises(TableError, match=r"metrics\.jsonl:1: val_loss: expected float, got 'low'"):
        final_val_loss(tmp_path, 10)
    _metrics(p, [_record(10, val_loss=float("nan"))])
    with pytest.raises(TableError, match=r"final val_loss=nan at step 10"):
        final_val_loss(tmp_path, 10)


def test_collect_writes_a_runs_table_of_finished_runs(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_sweep(cfg)
    for i, r in enumerate(plan[:-1]):
        _metrics(r.run_dir / "metrics.jsonl", [_record(r.steps, val_loss=5.0 + i)])
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
from l3_core.metrics_schema import MetricsRecord
cfg = read_toml(sys.argv[sys.argv.index('--config') + 1])
run = pathlib.Path(cfg['run_dir'])
if cfg['model']['dim'] == int(sys.argv[1]):
    sys.exit('boom')
with open(run / 'metrics.jsonl', 'a') as f:
    record = MetricsRecord(step=cfg['train']['max_steps'], loss=3.0, lr=1e-3, grad_norm=1.0,
                           tokens_per_s=1.0, mfu=0.1, seq_len=128, batch_size=8, tokens=1,
                           step_time_s=0.1, val_loss=1.0 + cfg['model']['dim'] / 100)
    f.write(json.dumps(record.to_json()) + '\\n')
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
    with pytest.raises(ConfigError, match="budgetz"):
        load_sweep(p)
    p.write_text("budgets = [-1.0]\n")
    with pytest.raises(
        ParameterError, match=r"s\.toml: budgets = \[-1\.0\]: expected .*positive"
    ) as e:
        load_sweep(p)
    assert e.value.exit_code == ExitCode.CONFIG
    p.write_text("budgets = [1e12]\n")
    assert load_sweep(p, ["sizes_per_budget=7"]).sizes_per_budget == 7


@pytest.mark.parametrize(
    "override,message",
    [
        ("micro_batch_size=3", "micro_batch_size = 3: expected a divisor of global_batch_size = 8"),
        ("warmup_fraction=1.5", r"warmup_fraction = 1\.5: expected in \[0, 1\)"),
        ("sizes_per_budget=2", "sizes_per_budget = 2: expected >= 3"),
        ("decades=-1.0", r"decades = -1\.0: expected > 0"),
        ("command=[]", r"command = \[\]: expected a non-empty argument list"),
    ],
)
def test_load_sweep_names_each_out_of_range_key_and_value(tmp_path, override, message):
    p = tmp_path / "s.toml"
    p.write_text("budgets = [1e12]\n")
    with pytest.raises(ParameterError, match=message):
        load_sweep(p, [override])


PARALLEL_STUB = """
import json, os, pathlib, sys, time
from l3_core.config import read_toml
from l3_core.metrics_schema import MetricsRecord
cfg = read_toml(sys.argv[sys.argv.index('--config') + 1])
run = pathlib.Path(cfg['run_dir'])
(run.parent / (run.name + '.start')).write_text(os.environ['OMP_NUM_THREADS'])
deadline = time.time() + 60
while len(list(run.parent.glob('*.start'))) < 2:  # goes on only once both runs have started
    if time.time() > deadline:
        sys.exit('the other run never started')
    time.sleep(0.05)
record = MetricsRecord(step=cfg['train']['max_steps'], loss=3.0, lr=1e-3, grad_norm=1.0,
                       tokens_per_s=1.0, mfu=0.1, seq_len=128, batch_size=8, tokens=1,
                       step_time_s=0.1, val_loss=2.0)
(run / 'metrics.jsonl').write_text(json.dumps(record.to_json()) + '\\n')
"""


def test_parallel_runs_train_at_once_with_their_thread_count(tmp_path):
    stub = tmp_path / "stub.py"
    stub.write_text(PARALLEL_STUB)
    cfg = _cfg(
        tmp_path,
        budgets=[1e12],
        sizes_per_budget=3,
        parallel=2,
        threads_per_run=3,
        command=[sys.executable, str(stub)],
    )
    plan = plan_sweep(cfg)[:2]
    write_sweep(plan, cfg)
    # one run at a time would fail: the first waits for the other's start file
    run_sweep(plan, cfg)
    starts = sorted(plan[0].run_dir.parent.glob("*.start"))
    assert [p.read_text() for p in starts] == ["3", "3"]
    assert all(final_val_loss(r.run_dir, r.steps) == 2.0 for r in plan)
