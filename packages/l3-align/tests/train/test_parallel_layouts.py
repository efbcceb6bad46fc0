"""SFT, DPO and the reward model on l3-core's parallel trainer: DP=2 and TP=2 on CPU gloo
train to the same losses, gradient norms and held-out figures as one process (fp32, 1e-5), and
the one-process trainer's first loss equals the objective computed on the plain model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("megatron.core", reason="needs l3-core's train extra (megatron-core)")

import torch

from l3_align.config import AlignConfig
from l3_align.synthetic import imitation_rows, preference_rows
from l3_align.train.job import AlignJob, launch
from l3_align.train.testing import job_dict, run_jobs
from l3_core.config import from_dict, to_dict
from l3_core.jsonl import read_jsonl, write_jsonl
from l3_core.parallel.launch import spawn

TOL = 1e-5
TASKS = ("sft", "dpo", "rm")
LAYOUTS = {"dp2": {}, "tp2": {"tp": 2}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_jsonl(root / "sft.jsonl", imitation_rows(24, seed=3))
    write_jsonl(root / "sft-eval.jsonl", imitation_rows(8, seed=4))
    write_jsonl(root / "pairs.jsonl", preference_rows(24, seed=5))
    write_jsonl(root / "pairs-eval.jsonl", preference_rows(8, seed=6))
    return {
        "sft": (root / "sft.jsonl", root / "sft-eval.jsonl"),
        "dpo": (root / "pairs.jsonl", root / "pairs-eval.jsonl"),
        "rm": (root / "pairs.jsonl", root / "pairs-eval.jsonl"),
    }


def _job(task, files, model_dir, run_dir, parallel=None) -> AlignJob:
    cfg = from_dict(
        AlignConfig,
        {
            "train": {"max_steps": 3, "lr": 3e-3, "batch_rows": 4, "micro_batch_rows": 1},
            "parallel": parallel or {},
        },
    )
    data, held = files[task]
    return AlignJob(task, to_dict(cfg), str(model_dir), str(data), str(run_dir), str(held))


@pytest.fixture(scope="module")
def single(files, model_dir, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("single")
    out = {}
    for task in TASKS:
        job = _job(task, files, model_dir, root / task)
        summary = launch(job)
        out[task] = {"records": read_jsonl(root / task / "metrics.jsonl"), "summary": summary}
    return out


@pytest.fixture(scope="module")
def world2(files, model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("world2")
    jobs = {
        f"{task}-{layout}": job_dict(_job(task, files, model_dir, root / f"{task}-{layout}", p))
        for task in TASKS
        for layout, p in LAYOUTS.items()
    }
    spawn(2, run_jobs, jobs, str(root / "out.json"))
    return json.loads((root / "out.json").read_text())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_two_ranks_train_like_one_process(task, layout, world2, single):
    got = world2[f"{task}-{layout}"]
    assert "error" not in got, got.get("error")
    want = single[task]
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in got["records"]] == pytest.approx(
            [r[key] for r in want["records"]], abs=TOL
        ), key
    assert len(got["records"]) == 3
    assert got["records"][-1]["val_loss"] == pytest.approx(want["records"][-1]["val_loss"], abs=TOL)
    for key, value in want["summary"]["last"].items():
        if key.startswith("val_"):
            assert got["summary"]["last"][key] == pytest.approx(value, abs=TOL), key


@pytest.mark.parametrize("task", TASKS)
def test_training_changes_the_loss_and_figures_reach_the_records(task, single):
    records = single[task]["records"]
    assert records[0]["loss"] != records[-1]["loss"]
    figure = {"sft": None, "dpo": "reward_accuracy", "rm": "accuracy"}[task]
    if figure:
        assert all(0 <= r[figure] <= 1 for r in records)


@pytest.mark.parametrize("task", TASKS)
def test_first_loss_equals_the_objective_on_the_plain_model(task, files, model_dir, single):
    """Step 1's loss (before any update) against the same objective on the plain model with
    the same first batch: the trainer's Megatron model computes what the plain one does."""
    from l3_align.rm.objective import score_head
    from l3_align.train.job import TASKS as BUILDERS
    from l3_align.train.job import trainer_config
    from l3_align.train.plain import HeadOutputs, TokenLosses, one_process, step_sums
    from l3_align.train.setup import load_model, prepare

    job = _job(task, files, model_dir, "unused")
    cfg = job.align_config()
    inputs = prepare(cfg, model_dir)
    built = BUILDERS[task](cfg, inputs, job)
    run_cfg = trainer_config(cfg, inputs, job, built.eval_rows)
    batch = built.objective.open_data(run_cfg, inputs.args).next_rows(4, inputs.seq_len)
    model = load_model(model_dir)
    net = (
        HeadOutputs(model, score_head(inputs.args, cfg.train.seed))
        if task == "rm"
        else TokenLosses(model)
    )
    plain = step_sums(built.objective, net, built.objective.micro_batches(batch, one_process(1)))
    assert plain.count > 0
    assert single[task]["records"][0]["loss"] == pytest.approx(plain.mean, abs=TOL)
