"""The CLI through main([...]): generate (bf16, --fp8, pre-quantised), quality, quantize, and
the exit codes of bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from l3_core import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.model import Transformer, generate
from l3_core.tokenizer import ChatFormat, Message, Tokenizer, train_sentencepiece
from l3_infer_fp8.checkpoint import QUANT_CONFIG
from l3_infer_fp8.cli import main
from l3_infer_fp8.quant import quantize_model

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine",
    "to be or not to be, that is the question",
] * 20


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tok = train_sentencepiece(CORPUS, root / "tok.model", vocab_size=300)
    args = ModelArgs.from_preset("llama3-tiny", n_layers=4, vocab_size=tok.n_words)
    model = Transformer.build(args, dtype=torch.bfloat16, seed=0).eval()
    path = save_checkpoint(model, root / "hf", format="hf")
    shutil.copyfile(root / "tok.model", path / "tokenizer.model")
    return path


def _expected(ckpt, prompt: str, fp8: bool) -> str:
    from l3_core.checkpoint import load_checkpoint

    tok = Tokenizer.from_file(ckpt / "tokenizer.model")
    model = load_checkpoint(ckpt, dtype=torch.bfloat16)
    if fp8:
        quantize_model(model, backend="emulated")
    ids = ChatFormat(tok).encode_dialog_prompt([Message("user", prompt)])
    out = generate(model, [ids], 6, stop_tokens=tok.stop_tokens)[0]
    return tok.decode([t for t in out if t not in tok.stop_tokens])


@pytest.mark.parametrize("fp8", [False, True])
def test_generate_prints_the_greedy_completion(ckpt, capsys, fp8):
    argv = [
        "generate",
        "--checkpoint",
        str(ckpt),
        "--prompt",
        "the fox",
        "--max-tokens",
        "6",
        "--backend",
        "emulated",
        *(["--fp8"] if fp8 else []),
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out == _expected(ckpt, "the fox", fp8) + "\n"


def test_quantize_then_generate_from_the_pre_quantised_checkpoint(ckpt, tmp_path, capsys):
    out = tmp_path / "q"
    assert (
        main(["quantize", "--checkpoint", str(ckpt), "--out", str(out), "--backend", "emulated"])
        == 0
    )
    config = json.loads((out / QUANT_CONFIG).read_text())
    assert config["skipped_layers"] == [0, 3] and (out / "tokenizer.model").is_file()
    capsys.readouterr()
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(out),
                "--prompt",
                "the fox",
                "--max-tokens",
                "6",
                "--backend",
                "emulated",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == _expected(ckpt, "the fox", True) + "\n"


def test_quality_writes_report_sweep_and_exclusions(ckpt, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"text": "the quick brown fox jumps"}\n{"prompt": "hi"}\n{"x": 1}\n'
        '{"text": "a stitch in time saves nine, to be or not to be"}\n'
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "quality",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(data),
                "--out",
                str(out),
                "--sweep-bounds",
                "100,1200",
                "--backend",
                "emulated",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "top-1 agreement" in printed and "reward-score comparison skipped" in printed
    report = json.loads((out / "quality.json").read_text())
    assert report["excluded_rows"] == 1 and 0 < report["agreement"]["top1_agreement"] <= 1
    assert len(report["sweep"]) == 8
    assert (out / "sweep.md").read_text().startswith("| bound |")
    assert json.loads((out / "exclusions.jsonl").read_text())["line"] == 3


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["generate", "--checkpoint", "{missing}", "--prompt", "x", "--tokenizer", "{tok}"],
            5,
            "checkpoint directory not found",
        ),
        (
            ["generate", "--checkpoint", "{ckpt}", "--prompt", "x", "--tokenizer", "{missing}"],
            4,
            "tokenizer not found",
        ),
        (
            ["generate", "--checkpoint", "{ckpt}", "--prompt", "x", "--fp8", "--bound", "0"],
            3,
            "activation bound must be a positive",
        ),
        (
            ["generate", "--checkpoint", "{ckpt}", "--prompt", "x", "--fp8", "--skip-layers", "a"],
            3,
            "--skip-layers: 'a'",
        ),
        (
            ["generate", "--checkpoint", "{ckpt}", "--prompt", "x", "--fp8", "--skip-layers", "9"],
            3,
            "layer 9 is outside a model of 4 layers",
        ),
        (
            ["quality", "--checkpoint", "{ckpt}", "--data", "{missing}"],
            4,
            "missing: file not found",
        ),
        (
            ["quality", "--checkpoint", "{ckpt}", "--data", "{empty}", "--sweep-bounds", ""],
            4,
            "no token rows",
        ),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(ckpt, tmp_path, capsys, argv, code, message):
    (tmp_path / "empty.jsonl").write_text("")
    paths = {
        "ckpt": ckpt,
        "missing": tmp_path / "missing",
        "tok": ckpt / "tokenizer.model",
        "empty": tmp_path / "empty.jsonl",
    }
    assert main([a.format(**paths) for a in argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_tampered_pre_quantised_checkpoint_exits_5(ckpt, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    (out / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:-1] + b"!")
    assert main(["generate", "--checkpoint", str(out), "--prompt", "x"]) == 5
    assert "changed after it was written" in capsys.readouterr().err
