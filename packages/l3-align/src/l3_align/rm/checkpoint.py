"""Reward-model directories in transformers' ``LlamaForSequenceClassification`` format.

``config.json`` (a Llama config with ``architectures: [LlamaForSequenceClassification]``,
``num_labels: 1`` and ``pad_token_id``), the weights in safetensors under transformers' names
(``model.*`` for the trunk, ``score.weight`` for the head) and ``tokenizer.model``: the same
directory loads with :func:`load_reward_model` and with
``transformers.LlamaForSequenceClassification.from_pretrained``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import nn

from l3_align.errors import AlignModelError
from l3_align.rm.model import RewardModel
from l3_core.checkpoint import hf
from l3_core.checkpoint.tensors import load_tensors, save_tensors
from l3_core.io import atomic_path, write_json
from l3_core.model import Transformer

ARCHITECTURE = "LlamaForSequenceClassification"
TOKENIZER_FILE = "tokenizer.model"
SCORE = "score.weight"


def save_reward_model(
    rm: RewardModel,
    path: str | os.PathLike[str],
    tokenizer_file: str | os.PathLike[str] | None,
    pad_id: int = 0,
) -> Path:
    """Write ``rm`` (and a copy of ``tokenizer_file``) atomically to ``path``."""
    path = Path(path)
    state = {k: v for k, v in rm.trunk.state_dict().items() if not k.startswith("output.")}
    tensors = hf.to_hf_state(state)
    tensors[SCORE] = rm.score.weight.detach()
    config = hf.hf_config(rm.trunk.args, rm.dtype)
    config.update(architectures=[ARCHITECTURE], num_labels=1, pad_token_id=pad_id)
    # A score head has no LM head to tie to; transformers would otherwise expect lm_head.
    config["tie_word_embeddings"] = False
    config["l3_tie_embeddings"] = rm.trunk.args.tie_embeddings
    with atomic_path(path) as tmp:
        tmp.mkdir()
        write_json(tmp / "config.json", config)
        save_tensors({k: v.contiguous() for k, v in tensors.items()}, tmp, 5 * 2**30)
        if tokenizer_file is not None:
            shutil.copyfile(tokenizer_file, tmp / TOKENIZER_FILE)
    return path


def load_reward_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> RewardModel:
    """The reward model saved at ``path`` by :func:`save_reward_model`, in eval mode."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise AlignModelError(f"{path}: no config.json: not a reward-model directory")
    config = hf.read_hf_config(path)
    if config.get("architectures") != [ARCHITECTURE] or config.get("num_labels") != 1:
        raise AlignModelError(
            f"{path / 'config.json'}: architectures={config.get('architectures')}, "
            f"num_labels={config.get('num_labels')}: expected [{ARCHITECTURE}] with num_labels 1"
        )
    trunk_config = {
        **config,
        "architectures": ["LlamaForCausalLM"],
        "tie_word_embeddings": config.get("l3_tie_embeddings", False),
    }
    args = hf.args_from_hf_config(trunk_config, where=str(path / "config.json"))
    tensors = load_tensors(path)
    if SCORE not in tensors:
        raise AlignModelError(f"{path}: no {SCORE!r} tensor: not a reward model")
    score_weight = tensors.pop(SCORE)
    state = hf.from_hf_state(tensors, args, where=str(path))
    with torch.device("meta"):
        trunk = Transformer(args)
    trunk.output = None
    try:
        trunk.load_state_dict(state, assign=True, strict=True)
    except RuntimeError as e:
        raise AlignModelError(f"{path}: weights do not match config.json: {e}") from None
    score = nn.Linear(args.dim, 1, bias=False, device="meta")
    score.load_state_dict({"weight": score_weight}, assign=True)
    return RewardModel(trunk, score).to(device).eval()


def tokenizer_path(model_dir: str | os.PathLike[str]) -> Path:
    """``model_dir/tokenizer.model``, which every model directory here carries."""
    p = Path(model_dir) / TOKENIZER_FILE
    if not p.is_file():
        raise AlignModelError(f"{model_dir}: no {TOKENIZER_FILE} beside the weights")
    return p
