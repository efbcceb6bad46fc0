"""One batched forward step over l3-core's ``Transformer`` modules with a paged KV cache.

The step's tokens (decode tokens and prefill chunks of any number of requests) run as one
packed sequence through the embeddings, norms, projections and FFN. Plain ``nn.Linear``
projections run as l3-core's stacked wq/wk/wv and w1/w3 copies, by oneDNN pre-packed weights
(:mod:`.packed`); replaced modules (FP8 linears, adapters) and subclassed blocks run as they
are. Attention reads keys through the cache slots
that :class:`StepBatch` resolved once per step (decoding requests as one batch, prefill chunks
as another), so no Python work per request runs per layer.

A runner may hold a range of layers only (a pipeline stage): :meth:`ModelRunner.embed`,
:meth:`ModelRunner.layers` and :meth:`ModelRunner.logits` are the pieces a stage runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.kernels.cpu.norm import fused_rms_norm
from l3_core.kernels.cpu.stacked import stacked_weight
from l3_core.kernels.swap import plain_class
from l3_core.model import Transformer
from l3_core.model.feed_forward import FeedForward
from l3_core.model.norm import RMSNorm
from l3_infer_fp8.engine.kv_cache import PagedKVCache
from l3_infer_fp8.engine.packed import PackedLinears
from l3_infer_fp8.engine.paged_attention import attend
from l3_infer_fp8.engine.step_batch import Chunk, StepBatch

__all__ = ["Chunk", "ModelRunner"]


class ModelRunner:
    """``layers``: the range of the model's layers this runner holds (all by default);
    ``cache`` holds exactly those, its layer 0 being the range's first."""

    def __init__(
        self,
        model: Transformer,
        cache: PagedKVCache,
        sample_vocab: int,
        layers: range | None = None,
    ) -> None:
        self.model = model
        self.sample_vocab = sample_vocab  # logits of ids at or above it are -inf
        self.cache = cache
        self.bs = cache.block_size
        self.device = model.tok_embeddings.weight.device
        self.layer_range = layers if layers is not None else range(model.args.n_layers)
        self.heads = (model.args.n_heads, model.args.kv_heads)
        self.packed = PackedLinears()

    def prepare(self, chunks: list[Chunk]) -> StepBatch:
        return StepBatch.build(chunks, self.bs, self.heads, self.device)

    @torch.inference_mode()
    def step(self, chunks: list[Chunk]) -> torch.Tensor:
        """Float32 logits [number of chunks with ``sample``, vocab], in chunk order."""
        batch = self.prepare(chunks)
        return self.logits(batch, self.layers(batch, self.embed(batch)))

    @torch.inference_mode()
    def embed(self, batch: StepBatch) -> torch.Tensor:
        return self.model.tok_embeddings(batch.ids)

    @torch.inference_mode()
    def layers(self, batch: StepBatch, h: torch.Tensor) -> torch.Tensor:
        """The runner's layers on hidden states ``h`` [tokens, dim]."""
        model = self.model
        cos, sin = model.rope.gather(batch.positions, batch.bound)
        cos, sin = cos.to(h.dtype)[:, None], sin.to(h.dtype)[:, None]
        for i, layer_idx in enumerate(self.layer_range):
            layer = model.layers[layer_idx]
            x = _norm(layer.attention_norm, h)
            h = h + self._attention(i, layer_idx, layer.attention, x, cos, sin, batch)
            h = h + self._feed_forward(layer_idx, layer.feed_forward, _norm(layer.ffn_norm, h))
        return h

    @torch.inference_mode()
    def logits(self, batch: StepBatch, h: torch.Tensor) -> torch.Tensor:
        model = self.model
        x = _norm(model.norm, h[batch.sample_rows])
        plain_head = plain_class(model) is Transformer and (
            model.output is None or type(model.output) is nn.Linear
        )
        out = self.packed.linear("head", x, model.head_weight) if plain_head else model.head(x)
        logits = out.float()
        logits[:, self.sample_vocab :] = float("-inf")
        return logits

    def _project(self, slot: str, owner: nn.Module, x: torch.Tensor, linears) -> torch.Tensor:
        """The outputs of ``linears`` on ``x`` side by side: one packed GEMM by their (stacked)
        weights where all are plain ``nn.Linear`` without bias, else each module as it is."""
        if all(type(m) is nn.Linear and m.bias is None for m in linears):
            weights = [m.weight for m in linears]
            weight = weights[0] if len(weights) == 1 else stacked_weight(owner, weights)
            if weight is not None:
                return self.packed.linear(slot, x, weight)
        return torch.cat([m(x) for m in linears], dim=-1)

    def _attention(self, i, layer_idx, attn, x, cos, sin, batch: StepBatch) -> torch.Tensor:
        t, heads, kv, d = x.shape[0], attn.n_heads, attn.n_kv_heads, attn.head_dim
        qkv = self._project(f"{layer_idx}.qkv", attn, x, (attn.wq, attn.wk, attn.wv))
        qkv = qkv.view(t, heads + 2 * kv, d)
        rotated = qkv[:, : heads + kv]
        # rotate-half with the signed sin table: the products of l3-core's apply_rotary
        qk = torch.addcmul(rotated * cos, rotated.roll(d // 2, dims=-1), sin)
        self.cache.write(i, batch.slots, qk[:, heads:], qkv[:, heads + kv :])
        q = qk[:, :heads]
        if len(batch.groups) == 1:
            out = attend(self.cache, i, q, batch.groups[0], kv)
        else:
            out = q.new_empty(q.shape)
            for group in batch.groups:
                out[group.rows] = attend(self.cache, i, q[group.rows], group, kv)
        return self._project(f"{layer_idx}.wo", attn, out.reshape(t, heads * d), (attn.wo,))

    def _feed_forward(self, layer_idx: int, ff: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if plain_class(ff) is not FeedForward:
            return ff(x)  # a replaced block computes its own way
        gate_up = self._project(f"{layer_idx}.w13", ff, x, (ff.w1, ff.w3))
        hidden = F.silu(gate_up[..., : ff.hidden_dim]).mul_(gate_up[..., ff.hidden_dim :])
        return self._project(f"{layer_idx}.w2", ff, hidden, (ff.w2,))


def _norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if plain_class(norm) is RMSNorm:
        return fused_rms_norm(x, norm.weight, norm.eps)
    return norm(x)
