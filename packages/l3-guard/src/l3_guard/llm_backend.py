"""Llama Guard 3 moderation with a causal LM (``pip install 'l3-guard[llm]'``).

Any Hugging Face format Llama checkpoint loads through :func:`l3_core.load_checkpoint` (the
real Llama Guard 3 8B weights when a user has them). The score is the probability that the
first generated token is "unsafe" (as the model card defines it), thresholded for the
decision; the categories come from the greedy answer, read by the strict parser, so a
malformed answer is unsafe with its raw text kept. ``quantize=True`` swaps every linear layer
for an int8 weight-only one (per-output-channel scales), the variant the paper mentions.
Prompts longer than the model's context are an error, never silently truncated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from l3_core import Tokenizer, Transformer, generate, kernels, load_checkpoint
from l3_core.errors import ConfigError
from l3_guard.errors import GuardInputError
from l3_guard.llama_guard_format import Role, Turn, as_turns, build_prompt, parse_output
from l3_guard.moderation import ModerationResult, error_result
from l3_guard.taxonomy import Taxonomy

log = logging.getLogger(__name__)


class Int8Linear(nn.Module):
    """A linear layer holding int8 weights and one fp32 scale per output channel."""

    weight_int8: torch.Tensor
    scale: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.register_buffer(
            "weight_int8", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
        )
        self.register_buffer("scale", scale)
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The dequantised weight, for code that reads ``.weight`` (l3-core's output head)."""
        return self.weight_int8.to(self.scale.dtype) * self.scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.bias)


_M = TypeVar("_M", bound=nn.Module)


def quantize_int8(model: _M) -> _M:
    """Replace every ``nn.Linear`` of ``model`` in place by :class:`Int8Linear`."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Linear):
            setattr(model, name, Int8Linear(child))
        else:
            quantize_int8(child)
    return model


class LlamaGuardLLM:
    """Moderation by a Llama Guard style causal LM; safe to share between threads."""

    name = "llm"

    def __init__(
        self,
        model: Transformer,
        tokenizer: Tokenizer,
        *,
        taxonomy: Taxonomy | None = None,
        threshold: float = 0.5,
        layout: Literal["hf", "recipes"] = "hf",
        with_descriptions: bool = False,
        max_new_tokens: int = 24,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.taxonomy = taxonomy or Taxonomy.default()
        self.threshold = threshold
        self.layout = layout
        self.with_descriptions = with_descriptions
        self.max_new_tokens = max_new_tokens
        vocab = model.args.vocab_size
        if tokenizer.n_words > vocab:
            raise ConfigError(f"tokenizer has {tokenizer.n_words} ids but the model only {vocab}")
        self.unsafe_id = tokenizer.encode("unsafe", bos=False, eos=False)[0]
        self.safe_id = tokenizer.encode("safe", bos=False, eos=False)[0]
        self._stop = set(tokenizer.stop_tokens)
        self._lock = threading.Lock()  # one forward pass at a time: the KV cache is per call,
        # but torch's intra-op pool is shared and interleaved calls only contend.

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        tokenizer_path: str | Path | None = None,
        quantize: bool = False,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> LlamaGuardLLM:
        """Load a checkpoint directory (HF or l3 format) and its tokenizer.

        The tokenizer is ``tokenizer_path``, else ``<path>/tokenizer.model``, else (for the
        128,256-id Llama 3 vocabulary) the official one from the ``llama-models`` wheel.
        """
        path = Path(path)
        model = load_checkpoint(path, dtype=dtype)
        if tokenizer_path is None and (path / "tokenizer.model").is_file():
            tokenizer_path = path / "tokenizer.model"
        if tokenizer_path is None and model.args.vocab_size == 128256:
            from l3_core.tokenizer import llama3_tokenizer_path

            tokenizer_path = llama3_tokenizer_path()
        if tokenizer_path is None:
            raise ConfigError(
                f"{path}: no tokenizer.model beside the checkpoint; pass tokenizer_path"
            )
        if quantize:
            quantize_int8(model)
        kernels.for_device(model)  # CPU kernels; int8 layers still run as modules
        return cls(model, Tokenizer.from_file(tokenizer_path), **kwargs)

    def encode_prompt(
        self, conversation: str | Sequence[Turn | dict], role: Role | None = None
    ) -> list[int]:
        prompt = build_prompt(
            conversation,
            self.taxonomy,
            role,
            with_descriptions=self.with_descriptions,
            layout=self.layout,
        )
        ids = self.tokenizer.encode(prompt, bos=False, eos=False, allowed_special="all")
        limit = self.model.args.max_seq_len - self.max_new_tokens
        if len(ids) > limit:
            raise GuardInputError(
                f"the Llama Guard prompt is {len(ids):,} tokens, over the model's limit of {limit:,} "
                f"(max_seq_len {self.model.args.max_seq_len} minus {self.max_new_tokens} for the answer); "
                "it is not truncated: shorten the conversation"
            )
        return ids

    @torch.inference_mode()
    def unsafe_probability(self, ids: list[int]) -> float:
        """P(first generated token is "unsafe") for an encoded prompt."""
        with self._lock:
            logits = self.model(torch.tensor([ids]))[0, -1].float()
        return float(torch.softmax(logits, dim=-1)[self.unsafe_id])

    def moderate(
        self, conversation: str | Sequence[Turn | dict], role: Role | None = None
    ) -> ModerationResult:
        turns = as_turns(conversation, role or "user")
        role = role or turns[-1].role
        ids = self.encode_prompt(turns, role)
        score = self.unsafe_probability(ids)
        with self._lock, torch.inference_mode():
            out = generate(
                self.model, [ids], self.max_new_tokens, temperature=0.0, stop_tokens=self._stop
            )[0]
        raw = self.tokenizer.decode([t for t in out if t not in self._stop])
        parsed = parse_output(raw, self.taxonomy)
        unsafe = parsed.malformed or score >= self.threshold
        return ModerationResult(
            "unsafe" if unsafe else "safe",
            parsed.categories if unsafe else [],
            score,
            role,
            self.name,
            raw=raw,
            malformed=parsed.malformed,
            error=None,
        )

    def moderate_safe(self, conversation: Any, role: Any = None) -> ModerationResult:
        try:
            return self.moderate(conversation, role)
        except Exception as e:  # fail closed
            log.warning("LLM moderation failed: %s", e)
            return error_result(role, self.name, e)
