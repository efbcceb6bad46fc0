"""``l3-align sample``: K samples per prompt, the best by the reward model kept with its score;
steering system prompts are left out of the kept row; bad settings and prompts get their
exit codes."""

from __future__ import annotations

import shutil

import pytest
import torch

from l3_align.commands_rm import COMMANDS
from l3_align.rm.checkpoint import save_reward_model
from l3_align.rm.model import RewardModel
from l3_align.synthetic import prompt_messages
from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.cli_runner import run_cli
from l3_core.exit_codes import ExitCode
from l3_core.jsonl import read_jsonl, write_jsonl
from l3_core.model import Transformer


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tokenizer):
    work = tmp_path_factory.mktemp("sample")
    args = ModelArgs(
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tokenizer.n_words,
        max_seq_len=128,
    )
    policy = work / "policy"
    save_checkpoint(Transformer.build(args, seed=0), policy, format="l3")
    shutil.copyfile(tokenizer.path, policy / "tokenizer.model")
    rm = RewardModel(Transformer.build(args, seed=1))
    rm.init_score(torch.Generator().manual_seed(1))
    save_reward_model(rm, work / "rm", tokenizer.path, tokenizer.pad_id)
    rows = [{"messages": prompt_messages([3, 1, 2])}, {"messages": prompt_messages([9, 0])}]
    rows.append({"messages": [{"role": "assistant", "content": "x"}]})  # not a prompt
    write_jsonl(work / "prompts.jsonl", rows)
    return work


def sample(dirs, out, *extra: str) -> int:
    argv = ["sample", "--model", str(dirs / "policy"), "--reward-model", str(dirs / "rm"),
            "--prompts", str(dirs / "prompts.jsonl"), "--out", str(out), *extra]  # fmt: skip
    return run_cli("l3-align", COMMANDS, argv)


def test_keeps_the_best_scored_of_k_samples(dirs, tmp_path) -> None:
    out = tmp_path / "kept.jsonl"
    steer = 'sample.system_prompts=["Answer briefly.", "Answer in full."]'
    assert sample(dirs, out, "--k", "5", "--set", "sample.max_new_tokens=8",
                  "--set", "sample.engine=prefix_cache", "--set", steer) == 0  # fmt: skip
    kept = read_jsonl(out)
    assert len(kept) == 2
    for row, digits in zip(kept, ["sort: 3 1 2", "sort: 9 0"]):
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["messages"][0]["content"] == digits
        assert 1 <= len(row["scores"]) <= 5
        assert row["score"] == max(row["scores"])
    excluded = read_jsonl(tmp_path / "kept.exclusions.jsonl")
    assert [e["line"] for e in excluded] == [3]


def test_k_above_30_is_exit_3(dirs, tmp_path, capsys) -> None:
    assert sample(dirs, tmp_path / "o.jsonl", "--k", "31") == ExitCode.CONFIG
    assert "sample.k = 31: must be in [1, 30]" in capsys.readouterr().err


def test_unknown_engine_is_exit_3(dirs, tmp_path, capsys) -> None:
    assert sample(dirs, tmp_path / "o.jsonl", "--set", "sample.engine=vllm") == ExitCode.CONFIG
    assert "sample.engine = 'vllm'" in capsys.readouterr().err
