"""``serve``: the model id is the directory name unless given; a missing tokenizer is exit 5."""

from __future__ import annotations

import argparse
import shutil

from l3_core import save_checkpoint
from l3_core.cli_runner import run_cli
from l3_infer_fp8.server.command import SERVE_COMMAND, _configure, build_state


def _opts(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    _configure(p)
    return p.parse_args(list(argv))


def test_build_state_names_the_model_after_the_directory(tmp_path, chat_model, tokenizer):
    ckpt = save_checkpoint(chat_model, tmp_path / "my-model", format="hf")
    shutil.copy(tokenizer.path, ckpt / "tokenizer.model")
    state = build_state(_opts("--checkpoint", str(ckpt)))
    assert state.model_name == "my-model" and state.guard is None
    assert state.engine.engine.sample_vocab == tokenizer.n_words
    named = build_state(_opts("--checkpoint", str(ckpt), "--model-name", "served"))
    assert named.model_name == "served"


def test_missing_tokenizer_is_exit_5_naming_the_file(tmp_path, chat_model, capsys):
    ckpt = save_checkpoint(chat_model, tmp_path / "m", format="hf")
    code = run_cli("l3-infer-fp8", [SERVE_COMMAND], ["serve", "--checkpoint", str(ckpt)])
    assert code == 5
    assert "tokenizer.model: tokenizer not found" in capsys.readouterr().err
