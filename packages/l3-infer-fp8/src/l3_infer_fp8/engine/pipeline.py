"""Pipeline-parallel inference: the model's layers split over processes, each step's batch
flowing through the stages in micro-batches (the Llama 3 paper's Figure 24).

Rank 0 runs the :class:`~l3_infer_fp8.engine.engine.Engine` (scheduler, sampling) with a
:class:`PipelineRunner` and the embeddings plus the first layers; every other rank runs
:func:`serve_stage` over its own layers, and the last one the final norm and head. Each stage
keeps a paged KV cache of its layers only; the block tables are rank 0's, sent with each step.

A step: rank 0 broadcasts the step's chunks; the chunks are split into micro-batches, and the
hidden states of micro-batch ``i`` go from stage to stage with non-blocking sends, so stage 1
computes micro-batch ``i`` while stage 0 computes ``i + 1``; the last stage sends each
micro-batch's logits back to rank 0. The next step needs this step's tokens, so the pipeline
fills and drains within a step: with ``P`` stages and ``M`` micro-batches each stage idles
``(P - 1) / (M + P - 1)`` of the step instead of ``(P - 1) / P`` without micro-batching.

Transport: ``torch.distributed`` point-to-point and broadcast on the default group (gloo on
CPU; on GPUs every message lives on the model's device, as NCCL needs).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.distributed as dist

from l3_core.model import Transformer
from l3_infer_fp8.engine.kv_cache import PagedKVCache
from l3_infer_fp8.engine.runner import ModelRunner
from l3_infer_fp8.engine.step_batch import Chunk
from l3_infer_fp8.errors import InferConfigError

_STOP = 0  # a step header of 0 chunks ends serve_stage


def split_layers(n_layers: int, stages: int) -> list[range]:
    """Contiguous layer ranges of as equal sizes as possible, earlier stages the larger."""
    if not 1 <= stages <= n_layers:
        raise InferConfigError(f"pipeline stages must be in 1..{n_layers} (layers), got {stages}")
    base, extra = divmod(n_layers, stages)
    bounds = [0]
    for s in range(stages):
        bounds.append(bounds[-1] + base + (s < extra))
    return [range(a, b) for a, b in itertools.pairwise(bounds)]


def split_micro_batches(chunks: list[Chunk], count: int) -> list[list[Chunk]]:
    """At most ``count`` consecutive groups of chunks with about equal numbers of tokens."""
    total = sum(len(c.tokens) for c in chunks)
    groups: list[list[Chunk]] = [[]]
    done = 0
    for c in chunks:
        n = len(c.tokens)
        # A chunk opens the next group when most of it lies past the current group's share.
        if groups[-1] and len(groups) < count and done + n / 2 > total * len(groups) / count:
            groups.append([])
        groups[-1].append(c)
        done += n
    return groups


def encode_chunks(chunks: list[Chunk]) -> list[int]:
    """[count, then per chunk: tokens, start, sample, table length, its tokens, its table]."""
    out = [len(chunks)]
    for c in chunks:
        out += [len(c.tokens), c.start, int(c.sample), len(c.block_table), *c.tokens]
        out += c.block_table
    return out


def decode_chunks(data: list[int]) -> list[Chunk]:
    chunks, i = [], 1
    for _ in range(data[0]):
        n, start, sample, nt = data[i : i + 4]
        i += 4
        tokens, table = data[i : i + n], data[i + n : i + n + nt]
        i += n + nt
        chunks.append(Chunk(tokens, start, table, bool(sample)))
    return chunks


@dataclass(frozen=True)
class _Layout:
    rank: int
    world: int
    device: torch.device

    @property
    def first(self) -> bool:
        return self.rank == 0

    @property
    def last(self) -> bool:
        return self.rank == self.world - 1


def _layout(model: Transformer) -> _Layout:
    if not dist.is_initialized():
        raise InferConfigError("pipeline inference needs torch.distributed initialised first")
    return _Layout(dist.get_rank(), dist.get_world_size(), model.tok_embeddings.weight.device)


def _broadcast_ints(values: list[int] | None, device: torch.device) -> list[int]:
    """Rank 0's ``values`` on every rank (a length, then the values)."""
    size = torch.tensor([len(values) if values is not None else 0], device=device)
    dist.broadcast(size, 0)
    data = torch.tensor(values if values is not None else [0] * int(size), device=device)
    if int(size):
        dist.broadcast(data, 0)
    return data.tolist()


class _Stage:
    """One rank's share of a step: its layers over each micro-batch, sends and receives."""

    def __init__(self, model: Transformer, layout: _Layout, setup: list[int]) -> None:
        num_blocks, block_size, self.micro_batches, sample_vocab = setup
        self.layout = layout
        layers = split_layers(model.args.n_layers, layout.world)[layout.rank]
        weight = model.tok_embeddings.weight
        cache = PagedKVCache(
            model.args, num_blocks, block_size, weight.dtype, layout.device, len(layers)
        )
        self.runner = ModelRunner(model, cache, sample_vocab, layers)
        self.dim, self.dtype, self.vocab = model.args.dim, weight.dtype, model.args.vocab_size

    @torch.inference_mode()
    def run(self, chunks: list[Chunk]) -> list[torch.Tensor]:
        """This stage's part of a step; on rank 0 the logits of each micro-batch, in order."""
        lay, runner = self.layout, self.runner
        batches = [runner.prepare(g) for g in split_micro_batches(chunks, self.micro_batches)]
        inputs: list[tuple[torch.Tensor, dist.Work]] = []
        results: list[tuple[torch.Tensor, dist.Work | None]] = []
        sends: list[tuple[torch.Tensor, dist.Work]] = []
        for tag, b in enumerate(batches):  # every receive posted first: none waits on another
            if not lay.first:
                buf = torch.empty(len(b.ids), self.dim, dtype=self.dtype, device=lay.device)
                inputs.append((buf, _posted(dist.irecv(buf, lay.rank - 1, tag=tag))))
            if lay.first and lay.world > 1 and len(b.sample_rows):
                out = torch.empty(len(b.sample_rows), self.vocab, device=lay.device)
                results.append((out, _posted(dist.irecv(out, lay.world - 1, tag=tag))))
        for tag, b in enumerate(batches):
            if lay.first:
                h = runner.embed(b)
            else:
                h, work = inputs[tag]
                work.wait()
            h = runner.layers(b, h)
            if not lay.last:
                h = h.contiguous()
                sends.append((h, _posted(dist.isend(h, lay.rank + 1, tag=tag))))
            else:
                logits = runner.logits(b, h)
                if lay.first:
                    results.append((logits, None))
                elif len(logits):
                    sends.append((logits, _posted(dist.isend(logits, 0, tag=tag))))
        for _, sent in sends:
            sent.wait()
        for _, received in results:
            if received is not None:
                received.wait()
        return [r for r, _ in results]


class PipelineRunner:
    """Rank 0's runner (the engine's ``make_runner``): ``PipelineRunner.factory(model,
    micro_batches)`` gives what :class:`~l3_infer_fp8.engine.engine.Engine` calls with its
    block count. :meth:`close` ends every other rank's :func:`serve_stage`."""

    def __init__(
        self, model: Transformer, num_blocks: int, block_size: int, micro_batches: int, vocab: int
    ) -> None:
        self.layout = _layout(model)
        if self.layout.rank != 0:
            raise InferConfigError(f"the engine runs on rank 0, not {self.layout.rank}")
        if micro_batches < 1:
            raise InferConfigError(f"pipeline micro_batches must be >= 1, got {micro_batches}")
        setup = [num_blocks, block_size, micro_batches, vocab]
        self.stage = _Stage(model, self.layout, _broadcast_ints(setup, self.layout.device))
        self.closed = False

    @classmethod
    def factory(cls, model: Transformer, micro_batches: int):
        def make(num_blocks: int, block_size: int, sample_vocab: int) -> PipelineRunner:
            return cls(model, num_blocks, block_size, micro_batches, sample_vocab)

        return make

    def step(self, chunks: list[Chunk]) -> torch.Tensor:
        _broadcast_ints(encode_chunks(chunks), self.layout.device)
        parts = self.stage.run(chunks)
        return torch.cat(parts) if parts else torch.empty(0, self.stage.vocab)

    def close(self) -> None:
        if not self.closed:
            _broadcast_ints([_STOP], self.layout.device)
            self.closed = True


def serve_stage(model: Transformer) -> None:
    """Run this rank's stage of every step rank 0's :class:`PipelineRunner` sends, until it
    closes. Every rank holds the same ``model`` (each uses only its own layers)."""
    layout = _layout(model)
    if layout.first:
        raise InferConfigError("rank 0 runs the engine with a PipelineRunner, not serve_stage")
    stage = _Stage(model, layout, _broadcast_ints(None, layout.device))
    while True:
        message = _broadcast_ints(None, layout.device)
        if message[0] == _STOP:
            return
        stage.run(decode_chunks(message))


def _posted(work: dist.Work | None) -> dist.Work:
    """The handle of a posted point-to-point operation (None only off the process group)."""
    if work is None:
        raise RuntimeError("this rank is not in the pipeline's process group")
    return work
