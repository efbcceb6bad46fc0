"""The dense Llama 3 transformer as plain PyTorch modules.

Build it on the meta device to size a 405B model without memory, then materialise with
``to_empty`` and :meth:`Transformer.init_weights`. Extension points are listed in
:mod:`l3_core.model`.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.args import ModelArgs
from l3_core.errors import InputError
from l3_core.model.attention import Attention, KVCache
from l3_core.model.decoding import DecodeLayout, Decoder, ModuleDecoder
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

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None = None,
        cache_start: int = 0,
    ) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache, cache_start)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(i, args) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = (
            None if args.tie_embeddings else nn.Linear(args.dim, args.vocab_size, bias=False)
        )
        self.rope = RotaryTable(args)

    # -- forward -------------------------------------------------------------------------------

    def forward(
        self,
        tokens: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
        *,
        embeddings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [b, s, vocab] for ``tokens`` [b, s], or for ``embeddings`` [b, s, dim] given
        in their place (e.g. ``embed(tokens)`` with other modalities' embeddings written in).

        ``document_ids`` [b, s] marks the documents of a packed sequence (a new document starts
        wherever the id changes): attention never crosses a boundary and positions restart.
        """
        h = self._inputs(tokens, embeddings)
        positions, mask = self._layout(h, document_ids)
        return self.forward_hidden(h, positions, mask)

    def loss(
        self,
        tokens: torch.Tensor | None,
        targets: torch.Tensor,
        document_ids: torch.Tensor | None = None,
        ignore_index: int = -100,
        *,
        embeddings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy of predicting ``targets`` [b, s] (``ignore_index`` where there is
        none) from ``tokens`` [b, s] (or ``embeddings``, as in :meth:`forward`), without
        materialising the batch's logits (:func:`l3_core.model.loss.linear_cross_entropy`)."""
        h = self._inputs(tokens, embeddings)
        positions, mask = self._layout(h, document_ids)
        if targets.shape != h.shape[:2]:
            raise InputError(
                f"targets shape {tuple(targets.shape)} must equal tokens shape {tuple(h.shape[:2])}"
            )
        bad = (targets != ignore_index) & ((targets < 0) | (targets >= self.args.vocab_size))
        if targets.device.type != "meta" and bool(bad.any()):
            raise InputError(
                f"target id {int(targets[bad][0])} outside the vocabulary "
                f"[0, {self.args.vocab_size}) and not ignore_index {ignore_index}"
            )
        h = self.norm(self.blocks(h, positions, mask))
        return linear_cross_entropy(
            h.flatten(0, 1), self.head_weight, targets.flatten(), ignore_index
        )

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings [b, s, dim] of ``tokens`` [b, s], checked against the vocabulary."""
        self.check_tokens(tokens)
        return self.tok_embeddings(tokens)

    def forward_hidden(
        self,
        h: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None,
        caches: list[KVCache] | None = None,
        cache_start: int = 0,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Run the blocks, final norm and head on embeddings ``h`` (the generation entry point)."""
        h = self.blocks(h, positions, mask, caches, cache_start)
        if last_only:
            h = h[:, -1:]
        return self.head(self.norm(h))

    def blocks(
        self,
        h: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None,
        caches: list[KVCache] | None = None,
        cache_start: int = 0,
    ) -> torch.Tensor:
        """The transformer blocks on embeddings ``h`` (the hidden states before the final norm)."""
        # Positions never exceed the token's index in the sequence (with the cache before it).
        cos, sin = self.rope.gather(positions, cache_start + h.shape[1])
        for i, layer in enumerate(self.layers):
            cache = caches[i] if caches is not None else None
            h = self.layer_forward(i, layer, h, cos, sin, mask, cache, cache_start)
        return h

    def layer_forward(
        self,
        i: int,
        layer: nn.Module,
        h: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
        cache_start: int,
    ) -> torch.Tensor:
        """Block ``i`` on ``h``: override to run extra layers around a block (cross-attention)."""
        return layer(h, cos, sin, mask, cache, cache_start)

    @property
    def head_weight(self) -> torch.Tensor:
        return self.tok_embeddings.weight if self.output is None else self.output.weight

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.head_weight)

    # -- generation ------------------------------------------------------------------------------

    def kv_caches(self, batch: int, capacity: int) -> list[KVCache]:
        """Empty KV caches of every layer for ``batch`` rows of ``capacity`` positions."""
        weight = self.tok_embeddings.weight
        return [
            KVCache.empty(self.args, batch, capacity, weight.dtype, weight.device)
            for _ in range(self.args.n_layers)
        ]

    def decoder(self, caches: list[KVCache], layout: DecodeLayout) -> Decoder:
        """The one-token step :func:`~l3_core.model.generate.generate` runs after the prefill."""
        return ModuleDecoder(self, caches, layout)

    # -- input checks ----------------------------------------------------------------------------

    def _inputs(self, tokens: torch.Tensor | None, embeddings: torch.Tensor | None) -> torch.Tensor:
        """The embeddings [b, s, dim] of exactly one of ``tokens`` and ``embeddings``."""
        if (tokens is None) == (embeddings is None):
            raise InputError("pass exactly one of tokens and embeddings")
        if tokens is not None:
            return self.embed(tokens)
        assert embeddings is not None  # exactly one of the two, checked above
        if embeddings.dim() != 3 or embeddings.shape[-1] != self.args.dim:
            raise InputError(
                f"embeddings must be [batch, seq, {self.args.dim}], got {tuple(embeddings.shape)}"
            )
        self._check_length(embeddings.shape[:2])
        return embeddings

    def _layout(
        self, h: torch.Tensor, document_ids: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RoPE positions and attention mask (None: plain causal) for embeddings ``h``."""
        b, s = h.shape[:2]
        if document_ids is None:
            return torch.arange(s, device=h.device).expand(b, s), None
        if document_ids.shape != (b, s):
            raise InputError(
                f"document_ids shape {tuple(document_ids.shape)} must equal tokens shape {(b, s)}"
            )
        return document_positions(document_ids), document_causal_mask(document_ids)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``tokens`` is a non-empty integer [b, s] tensor of
        vocabulary ids no longer than ``max_seq_len``."""
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise InputError(
                f"tokens must be an integer tensor [batch, seq], got {tuple(tokens.shape)} {tokens.dtype}"
            )
        self._check_length(tokens.shape)
        if tokens.device.type != "meta":
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= self.args.vocab_size:
                raise InputError(
                    f"token id {lo if lo < 0 else hi} outside the vocabulary [0, {self.args.vocab_size})"
                )

    def _check_length(self, shape: torch.Size) -> None:
        if shape.numel() == 0:
            raise InputError(f"tokens is empty: shape {tuple(shape)}")
        if shape[1] > self.args.max_seq_len:
            raise InputError(
                f"sequence length {shape[1]} exceeds max_seq_len {self.args.max_seq_len}"
            )

    # -- initialisation --------------------------------------------------------------------------

    @torch.no_grad()
    def init_weights(self, std: float = 0.02, generator: torch.Generator | None = None) -> None:
        """Initialise in place (works after ``to_empty`` from the meta device).

        Embeddings N(0, 1) as in torchtitan; projections truncated-normal with ``std``; the
        projections into the residual stream (wo, w2, and w3 as torchtitan does) scaled down
        with depth so the residual stream's variance stays bounded; RMSNorm weights 1.
        """
        nn.init.normal_(
            self.tok_embeddings.weight,
            std=1.0 if self.output is not None else std,
            generator=generator,
        )

        def trunc_normal(t: torch.Tensor, sd: float) -> None:
            nn.init.trunc_normal_(t, std=sd, a=-3 * sd, b=3 * sd, generator=generator)

        for layer in cast("list[TransformerBlock]", self.layers):  # ModuleList is untyped
            depth_std = std / math.sqrt(2 * (layer.layer_id + 1))
            attn, ffn = layer.attention, layer.feed_forward
            qkv = (attn.wq.weight, attn.wk.weight, attn.wv.weight)
            # One draw over the three stacked, so that a seed gives the numbers it gave when
            # they were stored as one matrix: a draw of n rows then m differs from n + m.
            stacked = torch.empty(
                sum(w.shape[0] for w in qkv),
                qkv[0].shape[1],
                dtype=qkv[0].dtype,
                device=qkv[0].device,
            )
            trunc_normal(stacked, std)
            for w, rows in zip(qkv, stacked.split([w.shape[0] for w in qkv])):
                w.copy_(rows)
            trunc_normal(attn.wo.weight, depth_std)
            trunc_normal(ffn.w1.weight, std)
            trunc_normal(ffn.w3.weight, depth_std)  # as torchtitan
            trunc_normal(ffn.w2.weight, depth_std)
            layer.attention_norm.reset_parameters()
            layer.ffn_norm.reset_parameters()
        self.norm.reset_parameters()
        if self.output is not None:
            trunc_normal(self.output.weight, self.args.dim**-0.5)

    @classmethod
    def build(
        cls,
        args: ModelArgs,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int | None = 0,
    ) -> Transformer:
        """Construct on meta, materialise on ``device`` in ``dtype``, initialise."""
        with torch.device("meta"):
            model = cls(args)
        model.to_empty(device=device)
        gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        model.init_weights(generator=gen)
        return model.to(dtype)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
