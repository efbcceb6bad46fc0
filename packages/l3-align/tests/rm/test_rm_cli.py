"""``l3-align rm`` (on l3-core's trainer) and ``score`` end to end on the synthetic sorting
task: the reward model's held-out preference accuracy passes 0.9, final/ loads back with its
tokenizer and equals the last training checkpoint, score writes a line per row, and bad input
gets its exit code and one line."""

from __future__ import annotations

import json

import pytest
import torch

from l3_align import load_reward_model
from l3_align.commands_rm import COMMANDS
from l3_align.synthetic import preference_rows
from l3_core.checkpoint import load_checkpoint_with_head
from l3_core.cli_runner import run_cli
from l3_core.exit_codes import ExitCode
from l3_core.jsonl import read_jsonl, write_jsonl


def cli(argv: list[str]) -> int:
    return run_cli("l3-align", COMMANDS, argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    work = tmp_path_factory.mktemp("rm")
    train = preference_rows(512, seed=0)
    train[3] = {**train[3], "chosen": train[3]["rejected"]}  # identical: excluded, not fatal
    write_jsonl(work / "train.jsonl", train)
    write_jsonl(work / "eval.jsonl", preference_rows(128, seed=1))
    argv = [
        "rm", "--model", str(tiny_model_dir), "--data", str(work / "train.jsonl"),
        "--eval", str(work / "eval.jsonl"), "--run-dir", str(work / "run"),
        "--set", "train.max_steps=120", "--set", "train.lr=3e-3", "--set", "train.batch_rows=4",
        "--set", "train.micro_batch_rows=4",
    ]  # fmt: skip
    assert cli(argv) == 0
    return work


def test_reward_model_learns_the_sorted_preference(trained) -> None:
    metrics = read_jsonl(trained / "run" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 121))
    assert {"step", "loss", "accuracy", "grad_norm"} <= metrics[0].keys()
    summary = json.loads((trained / "run" / "summary.json").read_text())
    assert summary["last"]["val_accuracy"] > 0.9
    assert summary["last"]["val_loss"] == pytest.approx(metrics[-1]["val_loss"], abs=1e-5)
    assert metrics[-1]["loss"] < metrics[0]["loss"]


def test_final_holds_the_tokenizer_and_loads(trained, tiny_model_dir) -> None:
    final = trained / "run" / "final"
    assert (final / "tokenizer.model").read_bytes() == (
        tiny_model_dir / "tokenizer.model"
    ).read_bytes()
    rm = load_reward_model(final)
    assert rm.trunk.args.dim == 32
    # the trainer's checkpoint holds the trunk and the head (output_head.*): the same weights
    trunk, head = load_checkpoint_with_head(trained / "run" / "checkpoints" / "step_00000120")
    assert torch.equal(head["weight"], rm.score.weight)
    for name, t in rm.trunk.state_dict().items():
        assert torch.equal(t, trunk.state_dict()[name]), name
    excluded = read_jsonl(trained / "run" / "excluded.jsonl")
    assert [(e["line"], e["reason"]) for e in excluded] == [
        (4, "fields 'chosen' and 'rejected' are identical")
    ]


def test_score_writes_one_line_per_row_with_each_response(trained, tmp_path) -> None:
    rows = preference_rows(6, seed=7)
    rows[2] = {**rows[2], "edited": rows[2]["chosen"] + " "}
    write_jsonl(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "scores.jsonl"
    argv = ["score", "--reward-model", str(trained / "run" / "final"), "--data",
            str(tmp_path / "rows.jsonl"), "--out", str(out)]  # fmt: skip
    assert cli(argv) == 0
    scores = read_jsonl(out)
    assert [s["line"] for s in scores] == [1, 2, 3, 4, 5, 6]
    assert "edited_score" in scores[2] and "edited_score" not in scores[0]
    assert all(s["chosen_score"] > s["rejected_score"] for s in scores)
    # the same text as edited and chosen gets the same score: packing isolates responses
    assert scores[2]["edited_score"] == pytest.approx(scores[2]["chosen_score"], abs=1e-5)


def test_unknown_loss_is_exit_3_naming_the_key(tiny_model_dir, tmp_path, capsys) -> None:
    write_jsonl(tmp_path / "d.jsonl", preference_rows(2, seed=0))
    argv = ["rm", "--model", str(tiny_model_dir), "--data", str(tmp_path / "d.jsonl"),
            "--run-dir", str(tmp_path / "run"), "--set", "rm.loss=hinge"]  # fmt: skip
    assert cli(argv) == ExitCode.CONFIG
    assert "rm.loss = 'hinge'" in capsys.readouterr().err


def test_a_causal_lm_as_reward_model_is_exit_5(tiny_model_dir, tmp_path, capsys) -> None:
    write_jsonl(tmp_path / "d.jsonl", preference_rows(2, seed=0))
    argv = ["score", "--reward-model", str(tiny_model_dir), "--data", str(tmp_path / "d.jsonl")]
    assert cli(argv) == ExitCode.MODEL
    assert "no config.json" in capsys.readouterr().err


def test_no_usable_rows_is_exit_4(tiny_model_dir, tmp_path, capsys) -> None:
    (tmp_path / "d.jsonl").write_text(json.dumps({"messages": []}) + "\n")
    argv = ["rm", "--model", str(tiny_model_dir), "--data", str(tmp_path / "d.jsonl"),
            "--run-dir", str(tmp_path / "run")]  # fmt: skip
    assert cli(argv) == ExitCode.INPUT
    assert "no usable rows (1 excluded" in capsys.readouterr().err
