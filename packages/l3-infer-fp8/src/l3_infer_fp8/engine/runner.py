"""One batched forward step over l3-core's ``Transformer`` modules with a paged KV cache.

The step's tokens (decode tokens and prefill chunks of any number of requests) run as one
packed sequence through the embeddings, norms, projections and FFN modules, so replaced
modules (FP8 linears, adapters) run as they are. Attention reads each request's keys through
its block table: the decoding requests as one batch, each prefill chunk on its own (a padded
batch of mixed lengths would waste most of its work), with ragged lengths masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from l3_core.model import Transformer, apply_rotary
from l3_infer_fp8.engine.kv_cache import PagedKVCache


@dataclass
class Chunk:
    """``tokens`` of one request at positions ``start, start + 1, ...``; ``sample``: return the
    logits after the last of them."""

    tokens: list[int]
    start: int
    block_table: list[int]
    sample: bool


class ModelRunner:
    def __init__(self, model: Transformer, cache: PagedKVCache, sample_vocab: int) -> None:
        self.model = model
        self.sample_vocab = sample_vocab  # logits of ids at or above it are -inf
        self.cache = cache
        self.bs = cache.block_size
        self.device = model.tok_embeddings.weight.device

    @torch.inference_mode()
    def step(self, chunks: list[Chunk]) -> torch.Tensor:
        """Float32 logits [number of chunks with ``sample``, vocab], in chunk order."""
        model, dev = self.model, self.device
        ids = torch.tensor([t for c in chunks for t in c.tokens], device=dev)
        positions = torch.cat([torch.arange(c.start, c.start + len(c.tokens)) for c in chunks])
        slots = torch.tensor(
            [
                c.block_table[p // self.bs] * self.bs + p % self.bs
                for c in chunks
                for p in range(c.start, c.start + len(c.tokens))
            ],
            device=dev,
        )
        positions = positions.to(dev)
        bound = int(positions.max()) + 1
        cos, sin = model.rope.gather(positions[None], bound)
        groups = self._attention_groups(chunks)
        h = model.tok_embeddings(ids)[None]
        for i, layer in enumerate(model.layers):
            x = layer.attention_norm(h)
            h = h + self._attention(i, layer.attention, x, cos, sin, slots, chunks, groups)
            h = h + layer.feed_forward(layer.ffn_norm(h))
        ends = torch.tensor(_sample_rows(chunks), dtype=torch.long, device=dev)
        logits = model.head(model.norm(h[0, ends])).float()
        logits[:, self.sample_vocab :] = float("-inf")
        return logits

    def _attention(self, layer_idx, attn, x, cos, sin, slots, chunks, groups) -> torch.Tensor:
        t = x.shape[1]
        q = attn.wq(x).view(1, t, attn.n_heads, attn.head_dim)
        k = attn.wk(x).view(1, t, attn.n_kv_heads, attn.head_dim)
        v = attn.wv(x).view(1, t, attn.n_kv_heads, attn.head_dim)
        q, k = apply_rotary(q, cos, sin)[0], apply_rotary(k, cos, sin)[0]
        self.cache.write(layer_idx, slots, k, v[0])
        out = torch.empty_like(q)
        for group in groups:
            out[group.rows] = self._attend_group(layer_idx, attn, q[group.rows], group)
        return attn.wo(out.reshape(1, t, -1))

    def _attend_group(self, layer_idx, attn, q, group: _Group) -> torch.Tensor:
        n, qlen = group.tables.shape[0], group.qlen
        qpad = q.new_zeros(n * qlen, attn.n_heads, attn.head_dim)
        qpad[group.dest] = q
        qpad = qpad.view(n, qlen, attn.n_heads, attn.head_dim).transpose(1, 2)
        k, v = self.cache.gather(layer_idx, group.tables, group.klen)
        o = F.scaled_dot_product_attention(
            qpad, k, v, attn_mask=group.mask, enable_gqa=attn.n_kv_heads != attn.n_heads
        )
        return o.transpose(1, 2).reshape(n * qlen, attn.n_heads, attn.head_dim)[group.dest]

    def _attention_groups(self, chunks: list[Chunk]) -> list[_Group]:
        offsets, acc = [], 0
        for c in chunks:
            offsets.append(acc)
            acc += len(c.tokens)
        decode = [i for i, c in enumerate(chunks) if len(c.tokens) == 1]
        prefill = [[i] for i, c in enumerate(chunks) if len(c.tokens) > 1]
        members = ([decode] if decode else []) + prefill
        return [
            _Group.build([chunks[i] for i in m], [offsets[i] for i in m], self.bs, self.device)
            for m in members
        ]


@dataclass
class _Group:
    rows: torch.Tensor  # the group's tokens in the packed step
    dest: torch.Tensor  # where each lands in the padded [seqs * qlen] query batch
    tables: torch.Tensor  # padded block tables [seqs, blocks]
    mask: torch.Tensor  # [seqs, 1, qlen, klen], True = attend
    qlen: int
    klen: int

    @classmethod
    def build(cls, chunks: list[Chunk], offsets: list[int], bs: int, dev: torch.device) -> _Group:
        qlen = max(len(c.tokens) for c in chunks)
        klen = max(c.start + len(c.tokens) for c in chunks)
        nblocks = -(-klen // bs)
        rows, dest = [], []
        tables = torch.zeros(len(chunks), nblocks, dtype=torch.long)
        qpos = torch.full((len(chunks), qlen), -1, dtype=torch.long)
        for i, (c, off) in enumerate(zip(chunks, offsets)):
            n = len(c.tokens)
            rows.extend(range(off, off + n))
            dest.extend(range(i * qlen, i * qlen + n))
            used = -(-(c.start + n) // bs)
            tables[i, :used] = torch.tensor(c.block_table[:used])
            qpos[i, :n] = torch.arange(c.start, c.start + n)
        # A key is visible to a query at or after its position; padding queries see key 0 only
        # (an all-masked row would give NaN), and their outputs are dropped.
        keys = torch.arange(klen)
        mask = keys[None, None, :] <= qpos[:, :, None]
        mask[:, :, 0] = True
        return cls(
            torch.tensor(rows, device=dev),
            torch.tensor(dest, device=dev),
            tables.to(dev),
            mask[:, None].to(dev),
            qlen,
            klen,
        )


def _sample_rows(chunks: list[Chunk]) -> list[int]:
    rows, acc = [], 0
    for c in chunks:
        acc += len(c.tokens)
        if c.sample:
            rows.append(acc - 1)
    return rows
