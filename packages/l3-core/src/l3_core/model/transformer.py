"""The dense Llama 3 transformer as plain PyTorch modules.

Build it on the meta device to size a 405B model without memory, then materialise with
``to_empty`` and :meth:`Transformer.init_weights`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.args import ModelArgs
from l3_core.errors import InputError
from l3_core.model.attention import Attention, KVCache
from l3_core.model.feed_forward import FeedForward
from l3_core.model.loss import linear_cross_entropy
from l3_core.model.masks import document_causal_mask, document_positions
from l3_core.model.norm import RMSNorm
from l3_core.model.rope import RotaryTable


class TransformerBlock(nn.Module):
    def __init__(self, layer_id: int, args: ModelArgs) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | None, cache: KVCache | None = None,
                cache_start: int = 0) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache, cache_start)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, args) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = None if args.tie_embeddings else nn.Linear(args.dim, args.vocab_size, bias=False)
        self.rope = RotaryTable(args)

    # -- forward -------------------------------------------------------------------------------

    def forward(self, tokens: torch.Tensor, document_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [b, s, vocab] for ``tokens`` [b, s].

        ``document_ids`` [b, s] marks the documents of a packed sequence (a new document starts
        wherever the id changes): attention never crosses a boundary and positions restart.
        """
        positions, mask = self._layout(tokens, document_ids)
        return self.forward_hidden(self.tok_embeddings(tokens), positions, mask)

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor, document_ids: torch.Tensor | None = None,
             ignore_index: int = -100) -> torch.Tensor:
        """Mean cross-entropy of predicting ``targets`` [b, s] (``ignore_index`` where there is
        none) from ``tokens`` [b, s], without materialising the batch's logits
        (:func:`l3_core.model.loss.linear_cross_entropy`)."""
        positions, mask = self._layout(tokens, document_ids)
        if targets.shape != tokens.shape:
            raise InputError(f"targets shape {tuple(targets.shape)} must equal tokens shape {tuple(tokens.shape)}")
        bad = (targets != ignore_index) & ((targets < 0) | (targets >= self.args.vocab_size))
        if targets.device.type != "meta" and bool(bad.any()):
            raise InputError(f"target id {int(targets[bad][0])} outside the vocabulary "
                             f"[0, {self.args.vocab_size}) and not ignore_index {ignore_index}")
        h = self.norm(self.blocks(self.tok_embeddings(tokens), positions, mask))
        return linear_cross_entropy(h.flatten(0, 1), self.head_weight, targets.flatten(), ignore_index)

    def forward_hidden(self, h: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
                       caches: list[KVCache] | None = None, cache_start: int = 0,
                       last_only: bool = False) -> torch.Tensor:
        """Run the blocks, final norm and head on embeddings ``h`` (the generation entry point)."""
        h = self.blocks(h, positions, mask, caches, cache_start)
        if last_only:
            h = h[:, -1:]
        return self.head(self.norm(h))

    def blocks(self, h: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
               caches: list[KVCache] | None = None, cache_start: int = 0) -> torch.Tensor:
        """The transformer blocks on embeddings ``h`` (before the final norm)."""
        # Positions never exceed the token's index in the sequence (with the cache before it).
        cos, sin = self.rope.gather(positions, cache_start + h.shape[1])
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, mask, caches[i] if caches is not None else None, cache_start)
        return h

    @property
    def head_weight(self) -> torch.Tensor:
        return self.tok_embeddings.weight if self.output is None else self.output.weight

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.head_weight)

    def _layout(self, tokens: torch.Tensor,
                document_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RoPE positions and attention mask (None: plain causal) for ``tokens``."""
        self._check_tokens(tokens)
        b, s = tokens.shape
        if document_ids is None:
            return torch.arange(s, device=tokens.device).expand(b, s), None
        if document_ids.shape != tokens.shape:
            raise InputError(
                f"document_ids shape {tuple(document_ids.shape)} must equal tokens shape {(b, s)}"
            )
        return document_positions(document_ids), document_causal_mask(document_ids)

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise InputError(
                f"tokens must be an integer tensor [batch, seq], got {tuple(tokens.shape)} {tokens.dtype}"
            )
        if tokens.numel() == 0:
            raise InputError(f"tokens is empty: shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.args.max_seq_len:
            raise InputError(
                f"sequence length {tokens.shape[1]} exceeds max_seq_len {self.args.max_seq_len}"
            )
        if tokens.device.type != "meta":
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= self.args.vocab_size:
                raise InputError(
                    f"token id {lo if lo < 0 else hi} outside the vocabulary [0, {self.args.vocab_size})"
                )

    # -- initialisation --------------------------------------------------------------------------

    @torch.no_grad()
    def init_weights(self, std: float = 0.02, generator: torch.Generator | None = None) -> None:
        """Initialise in place (works after ``to_empty`` from the meta device).

        Embeddings N(0, 1) as in torchtitan; projections truncated-normal with ``std``; the
        projections into the residual stream (wo, w2, and w3 as torchtitan does) scaled down with depth so the residual
        stream's variance stays bounded; RMSNorm weights 1.
        """
        nn.init.normal_(self.tok_embeddings.weight, std=1.0 if self.output is not None else std,
                        generator=generator)

        def trunc_normal(t: torch.Tensor, sd: float) -> None:
            nn.init.trunc_normal_(t, std=sd, a=-3 * sd, b=3 * sd, generator=generator)

        for layer in self.layers:
            depth_std = std / math.sqrt(2 * (layer.layer_id + 1))
            attn, ffn = layer.attention, layer.feed_forward
            trunc_normal(attn.wqkv.weight, std)
            trunc_normal(attn.wo.weight, depth_std)
            trunc_normal(ffn.w13.weight[: ffn.hidden_dim], std)  # w1, the gate
            trunc_normal(ffn.w13.weight[ffn.hidden_dim :], depth_std)  # w3, as torchtitan
            trunc_normal(ffn.w2.weight, depth_std)
            layer.attention_norm.reset_parameters()
            layer.ffn_norm.reset_parameters()
        self.norm.reset_parameters()
        if self.output is not None:
            final_std = self.args.dim**-0.5
            trunc_normal(self.output.weight, final_std)

    @classmethod
    def build(cls, args: ModelArgs, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32, seed: int | None = 0) -> Transformer:
        """Construct on meta, materialise on ``device`` in ``dtype``, initialise."""
        with torch.device("meta"):
            model = cls(args)
        model.to_empty(device=device)
        gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        model.init_weights(generator=gen)
        return model.to(dtype)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
