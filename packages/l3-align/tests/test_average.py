"""``l3-align average``: the (weighted) mean of checkpoints, tensor by tensor; mismatched
architectures are a named error (exit 5)."""

from __future__ import annotations

import pytest
import torch

from l3_align.commands_rm import COMMANDS
from l3_core.args import ModelArgs
from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.cli_runner import run_cli
from l3_core.exit_codes import ExitCode
from l3_core.model import Transformer

ARGS = dict(dim=16, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=30, max_seq_len=32)


def ckpt(tmp_path, name: str, seed: int, fmt: str = "l3", **over) -> str:
    path = tmp_path / name
    save_checkpoint(Transformer.build(ModelArgs(**{**ARGS, **over}), seed=seed), path, format=fmt)
    (path / "tokenizer.model").write_bytes(f"tok {name}".encode())
    return str(path)


def test_weighted_mean_of_each_tensor(tmp_path) -> None:
    a, b = ckpt(tmp_path, "a", 1), ckpt(tmp_path, "b", 2, fmt="hf")
    out = tmp_path / "avg"
    argv = ["average", a, b, "--out", str(out), "--weights", "3", "1"]
    assert run_cli("l3-align", COMMANDS, argv) == 0
    sa, sb = load_checkpoint(a).state_dict(), load_checkpoint(b).state_dict()
    got = load_checkpoint(out).state_dict()
    for k in sa:
        torch.testing.assert_close(got[k], 0.75 * sa[k] + 0.25 * sb[k], rtol=1e-6, atol=1e-7)
    assert (out / "tokenizer.model").read_bytes() == b"tok a"


def test_mismatched_architecture_is_exit_5_naming_the_key(tmp_path, capsys) -> None:
    a, b = (
        ckpt(tmp_path, "a", 1),
        ckpt(tmp_path, "b", 2, ffn_dim_override=48),
    )  # default width is 256
    argv = ["average", a, b, "--out", str(tmp_path / "avg")]
    assert run_cli("l3-align", COMMANDS, argv) == ExitCode.MODEL
    err = capsys.readouterr().err
    assert "architecture differs" in err and "ffn_hidden_dim = 48" in err


@pytest.mark.parametrize("weights", [["1"], ["1", "-1"], ["0", "0"]])
def test_bad_weights_are_exit_3(tmp_path, weights) -> None:
    a, b = ckpt(tmp_path, "a", 1), ckpt(tmp_path, "b", 2)
    argv = ["average", a, b, "--out", str(tmp_path / "avg"), "--weights", *weights]
    assert run_cli("l3-align", COMMANDS, argv) == ExitCode.CONFIG
