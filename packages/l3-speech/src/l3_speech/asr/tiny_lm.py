"""A tiny language model for the ASR run when no pre-trained l3-core checkpoint is given.

Its tokenizer is a small sentencepiece BPE (l3-core's trainer) over the transcripts and the
prompts. It is pre-trained on text only, in the ASR prompt format with the transcript's own
tokens standing where the audio will go (spread out by "silence" fillers, since speech has
more frames than words), so it learns to repeat what sits between the audio markers. After
that it is frozen: the encoder and the adapter must learn to produce embeddings it repeats.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from l3_core import ModelArgs
from l3_core.model import Transformer
from l3_core.tokenizer import Tokenizer, train_sentencepiece
from l3_speech.prompts import TASK_PROMPTS, prompt_ids, system_prompt
from l3_speech.train_loop import LoopConfig, run_loop

FILLER = "<|reserved_special_token_13|>"


def train_tokenizer(texts: Sequence[str], path: Path, vocab_size: int = 320) -> Tokenizer:
    lines = [*texts, *(system_prompt(t) for t in TASK_PROMPTS), "system user assistant"]
    return train_sentencepiece(lines * 4, path, vocab_size=vocab_size)


def word_tokens(tok: Tokenizer, text: str) -> list[list[int]]:
    """``text``'s tokens word by word (a space before every word but the first)."""
    return [
        tok.encode(w if i == 0 else " " + w, bos=False, eos=False)
        for i, w in enumerate(text.split())
    ]


def copy_sequence(
    tok: Tokenizer, text: str, rng: random.Random, max_fill: int = 3
) -> tuple[list[int], int]:
    """The ASR prompt with ``text``'s tokens (between fillers) as the audio, then ``text``."""
    filler = tok.special_tokens[FILLER]
    region: list[int] = []
    for ids in word_tokens(tok, text):
        region += [filler] * rng.randint(0, max_fill)
        region += ids
    region += [filler] * rng.randint(0, max_fill)
    answer = [*tok.encode(text, bos=False, eos=False), tok.eot_id]
    return [*prompt_ids(tok, "asr", audio_region=region), *answer], len(answer)


def pretrain_tiny_lm(
    tok: Tokenizer,
    texts: Sequence[str],
    run_dir: Path,
    steps: int = 300,
    dim: int = 128,
    n_layers: int = 2,
    seed: int = 0,
    batch_size: int = 32,
    max_fill: int = 3,
) -> Transformer:
    args = ModelArgs.from_preset(
        "llama3-tiny",
        dim=dim,
        n_layers=n_layers,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tok.n_words,
        max_seq_len=512,
    )
    lm = Transformer.build(args, seed=seed)

    def step(i: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        rng = random.Random(int(torch.randint(0, 2**31, (1,), generator=gen)))
        seqs = [copy_sequence(tok, rng.choice(texts), rng, max_fill) for _ in range(batch_size)]
        longest = max(len(s) for s, _ in seqs)
        tokens = torch.full((len(seqs), longest), tok.pad_id)
        targets = torch.full((len(seqs), longest), -100)
        for r, (s, n) in enumerate(seqs):
            tokens[r, : len(s)] = torch.tensor(s)
            # Only the answer is a target: the audio slot's tokens are random by design.
            targets[r, len(s) - n - 1 : len(s) - 1] = torch.tensor(s[len(s) - n :])
        logits = lm(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return loss, {"loss": float(loss.detach())}

    run_loop(
        lm, step, LoopConfig(steps=steps, lr=3e-3, warmup_steps=20, checkpoint_every=steps), run_dir
    )
    return lm.eval()
