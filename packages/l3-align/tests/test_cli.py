"""The l3-align command line (SFT and DPO on l3-core's trainer): outputs, exit codes,
exclusions, resume after kill -9, checkpoints that ``l3_core.load_checkpoint`` reads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from l3_align.cli import main
from l3_align.synthetic import imitation_rows
from l3_core.checkpoint import load_checkpoint
from l3_core.jsonl import read_jsonl, write_jsonl

FAST = [
    "--set",
    "train.lr=1e-3",
    "--set",
    "train.batch_rows=2",
    "--set",
    "train.micro_batch_rows=1",
]


def _losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_jsonl(run_dir / "metrics.jsonl")]


def test_dpo_writes_metrics_final_model_and_counts_exclusions(
    model_dir, pref_file, tmp_path, capsys
):
    rows = [json.loads(line) for line in pref_file.read_text().splitlines()]
    bad = {**rows[0], "rejected": rows[0]["chosen"]}
    data = tmp_path / "d.jsonl"
    write_jsonl(data, [*rows, bad])
    out = tmp_path / "run"
    code = main(
        [
            "dpo",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--run-dir",
            str(out),
            "--eval",
            str(pref_file),
            "--set",
            "train.max_steps=3",
            "--set",
            "dpo.beta=0.2",
            *FAST,
        ]
    )
    assert code == 0
    records = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all({"loss", "reward_margin", "reward_accuracy", "lr"} <= set(r) for r in records)
    assert records[0]["lr"] == 1e-3 and "val_loss" in records[-1]
    # the training checkpoint and final/ hold the same weights, both read by load_checkpoint
    trained = load_checkpoint(out / "checkpoints" / "step_00000003")
    model = load_checkpoint(out / "final")
    for name, t in trained.state_dict().items():
        assert torch.equal(t, model.state_dict()[name]), name
    assert (out / "final" / "tokenizer.model").read_bytes() == (
        model_dir / "tokenizer.model"
    ).read_bytes()
    start = load_checkpoint(model_dir)
    assert not torch.equal(model.norm.weight, start.norm.weight)
    excluded = [json.loads(x) for x in (out / "excluded.jsonl").read_text().splitlines()]
    assert excluded == [
        {
            "file": str(data),
            "line": len(rows) + 1,
            "reason": "fields 'chosen' and 'rejected' are identical",
        }
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["excluded"] == 1 and summary["train_pairs"] == len(rows)
    # held-out figures from the plain model read back from final/; its loss is the trainer's
    last = summary["last"]
    assert 0 <= last["val_reward_accuracy"] <= 1
    assert last["val_loss"] == pytest.approx(records[-1]["val_loss"], abs=1e-5)
    assert json.loads((out / "config.json").read_text())["dpo"]["beta"] == 0.2
    assert "3 steps" in capsys.readouterr().out


def test_sft_trains_on_dialogs(model_dir, tmp_path):
    data = tmp_path / "s.jsonl"
    write_jsonl(data, imitation_rows(16))
    out = tmp_path / "run"
    assert (
        main(
            [
                "sft",
                "--model",
                str(model_dir),
                "--data",
                str(data),
                "--run-dir",
                str(out),
                "--set",
                "train.max_steps=4",
                *FAST,
            ]
        )
        == 0
    )
    losses = [loss for _, loss in _losses(out)]
    assert len(losses) == 4 and losses[-1] < losses[0]
    load_checkpoint(out / "final")


def test_resume_from_a_checkpoint_gives_the_same_losses(model_dir, pref_file, tmp_path):
    args = [
        "dpo",
        "--model",
        str(model_dir),
        "--data",
        str(pref_file),
        *FAST,
        "--set",
        "train.max_steps=6",
        "--set",
        "train.checkpoint_every=2",
    ]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*args, "--run-dir", str(a), "--set", "train.resume=false"]) == 0
    assert main([*args, "--run-dir", str(b)]) == 0
    shutil.rmtree(b / "final")
    assert main([*args, "--run-dir", str(b)]) == 0  # resumes at the last checkpoint
    assert (b / "final").is_dir()
    shutil.rmtree(b / "checkpoints" / "step_00000006")
    (b / "checkpoints" / "latest").write_text("step_00000004\n")
    assert main([*args, "--run-dir", str(b)]) == 0  # resumes at step 4, redoes 5 and 6
    assert _losses(a) == _losses(b)


def test_resume_after_kill_9_gives_the_same_losses(model_dir, pref_file, tmp_path):
    steps = 30
    args = [
        "dpo",
        "--model",
        str(model_dir),
        "--data",
        str(pref_file),
        *FAST,
        "--set",
        f"train.max_steps={steps}",
        "--set",
        "train.checkpoint_every=3",
    ]
    ref = tmp_path / "ref"
    assert main([*args, "--run-dir", str(ref)]) == 0
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "l3_align.cli", *args, "--run-dir", str(run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.is_file() and int(latest.read_text().strip().removeprefix("step_")) >= 6:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.fail("the run ended before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "final").exists()
    assert main([*args, "--run-dir", str(run)]) == 0
    assert _losses(run) == _losses(ref)


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--set", "train.nope=1"], 3, "unknown config key train.nope"),
        (["--set", "dpo.losses.dpo=1.0"], 3, "dpo.losses.dpo: unknown loss"),
        (["--set", "data.truncation=middle"], 3, "data.truncation = 'middle'"),
        (["--tokenizer", "MISSING"], 5, "tokenizer not found"),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(
    model_dir, pref_file, tmp_path, capsys, extra, code, message
):
    extra = [str(tmp_path / "none.model") if e == "MISSING" else e for e in extra]
    got = main(
        [
            "dpo",
            "--model",
            str(model_dir),
            "--data",
            str(pref_file),
            "--run-dir",
            str(tmp_path / "r"),
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert got == code and message in err and "Traceback" not in err


def test_no_usable_rows_is_an_input_error(model_dir, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"messages": []}\n')
    assert (
        main(
            [
                "sft",
                "--model",
                str(model_dir),
                "--data",
                str(data),
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 4
    )
    assert "no usable rows (1 excluded" in capsys.readouterr().err


def test_tokenizer_of_another_model_is_a_model_error(model_dir, tmp_path, capsys, pref_file):
    from l3_align.synthetic import task_corpus
    from l3_core.tokenizer import train_sentencepiece

    other = train_sentencepiece([task_corpus()], tmp_path / "t.model", vocab_size=300)
    assert (
        main(
            [
                "dpo",
                "--model",
                str(model_dir),
                "--data",
                str(pref_file),
                "--run-dir",
                str(tmp_path / "r"),
                "--tokenizer",
                str(other.path),
            ]
        )
        == 5
    )
    assert "it is not this model's tokenizer" in capsys.readouterr().err
