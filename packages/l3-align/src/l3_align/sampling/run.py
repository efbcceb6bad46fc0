"""The job behind ``l3-align sample``: prompts in, the kept SFT rows and a summary out."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from l3_align.data.encode import ChatEncoder, check_tokenizer_fits
from l3_align.errors import AlignInputError
from l3_align.rm.checkpoint import load_reward_model, tokenizer_path
from l3_align.sampling.config import SampleRunConfig
from l3_align.sampling.engines import engine_named
from l3_align.sampling.rejection import SamplingStats, read_prompt_rows, rejection_sample
from l3_core.checkpoint import load_checkpoint
from l3_core.jsonl import Exclusions, write_jsonl
from l3_core.tokenizer import Tokenizer


def run_rejection_sampling(
    model_dir: str | os.PathLike[str],
    reward_model_dir: str | os.PathLike[str],
    prompts: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: SampleRunConfig,
) -> dict:
    """Write the kept rows to ``out``, excluded prompts beside it
    (``OUT.exclusions.jsonl``); return the summary (with samples/s and the engine)."""
    cfg.validate()
    tok = Tokenizer.from_file(tokenizer_path(model_dir))
    policy = load_checkpoint(model_dir, dtype=torch.float32)
    check_tokenizer_fits(tok, policy.args, str(model_dir))
    rm = load_reward_model(reward_model_dir)
    rm_tok = Tokenizer.from_file(tokenizer_path(reward_model_dir))
    if rm_tok.fingerprint() != tok.fingerprint():
        raise AlignInputError(
            f"{reward_model_dir}: the reward model's tokenizer is not the policy's ({model_dir})"
        )
    encoder = ChatEncoder(tok, policy.args.max_seq_len)
    exclusions = Exclusions()
    rows = read_prompt_rows(prompts, exclusions)
    stats = SamplingStats(engine_named(cfg.sample.engine)[0])
    written = write_jsonl(out, rejection_sample(policy, rm, encoder, rows, cfg, exclusions, stats))
    exclusions.write(Path(out).with_suffix(".exclusions.jsonl"))
    return {**stats.to_json(), "kept": written, "excluded": len(exclusions)}
