"""The engine: requests in, a scheduled batched step, sampled tokens and text out.

Not thread-safe: one thread calls :meth:`Engine.step`; :class:`~l3_infer_fp8.engine.loop.
EngineLoop` runs it in a background thread for servers.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import torch

from l3_core.model import Transformer
from l3_infer_fp8.engine.blocks import BlockAllocator
from l3_infer_fp8.engine.config import EngineConfig
from l3_infer_fp8.engine.kv_cache import PagedKVCache
from l3_infer_fp8.engine.request import Request, RequestOutput, TokenLogprob
from l3_infer_fp8.engine.runner import Chunk, ModelRunner
from l3_infer_fp8.engine.sampling import (
    SamplingParams,
    choose_token,
    is_plain_greedy,
    make_generator,
    process_logits,
)
from l3_infer_fp8.engine.scheduler import Scheduler
from l3_infer_fp8.engine.text import IncrementalText
from l3_infer_fp8.errors import InvalidRequestError

log = logging.getLogger(__name__)


class TextDecoder(Protocol):
    def decode(self, ids: Sequence[int]) -> str: ...


class StepRunner(Protocol):
    def step(self, chunks: list[Chunk]) -> torch.Tensor: ...


RunnerFactory = Callable[[int, int, int], StepRunner]
"""``make_runner(num_blocks, block_size, sample_vocab)``: what runs the engine's steps."""


class Engine:
    """``stop_token_ids``: ids that end every request (e.g. the tokenizer's ``stop_tokens``)
    unless a request sets ``ignore_eos``. Without a ``tokenizer`` outputs carry no text and
    stop strings are refused. ``make_runner``: None for one process holding every layer; a
    :meth:`~l3_infer_fp8.engine.pipeline.PipelineRunner.factory` for pipeline stages."""

    def __init__(
        self,
        model: Transformer,
        config: EngineConfig | None = None,
        tokenizer: TextDecoder | None = None,
        stop_token_ids: Collection[int] = (),
        make_runner: RunnerFactory | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.config.validate()
        self.model = model.eval()
        self.args = model.args
        self.tokenizer = tokenizer
        self.stop_token_ids = frozenset(stop_token_ids)
        # A padded embedding table has ids the tokenizer cannot decode: never sample them.
        self.sample_vocab = min(
            getattr(tokenizer, "n_words", self.args.vocab_size), self.args.vocab_size
        )
        weight = model.tok_embeddings.weight
        num_blocks = self.config.num_blocks or self._default_blocks(weight.dtype)
        self.allocator = BlockAllocator(num_blocks, self.config.block_size)
        make_runner = make_runner or self._local_runner
        self.runner = make_runner(num_blocks, self.config.block_size, self.sample_vocab)
        self.scheduler = Scheduler(self.config, self.allocator)
        self.requests: dict[str, Request] = {}
        self._arrivals = itertools.count()
        self.generated_tokens = 0
        self.prompt_tokens = 0

    def _local_runner(self, num_blocks: int, block_size: int, sample_vocab: int) -> ModelRunner:
        weight = self.model.tok_embeddings.weight
        cache = PagedKVCache(self.args, num_blocks, block_size, weight.dtype, weight.device)
        return ModelRunner(self.model, cache, sample_vocab)

    def _default_blocks(self, dtype: torch.dtype) -> int:
        per_block = PagedKVCache.bytes_per_block(self.args, self.config.block_size, dtype)
        fits = int(self.config.kv_cache_mib * 2**20 // per_block)
        needed = self.config.max_running * -(-self.args.max_seq_len // self.config.block_size)
        return max(1, min(fits, needed))

    # -- requests --------------------------------------------------------------------------------

    def add_request(
        self, prompt_ids: Sequence[int], params: SamplingParams, request_id: str | None = None
    ) -> str:
        """Queue a request; raises :class:`InvalidRequestError` naming a bad field and
        :class:`~l3_infer_fp8.errors.QueueFullError` when the waiting queue is full."""
        params.validate()
        prompt = self._check_prompt(prompt_ids, params)
        if params.stop and self.tokenizer is None:
            raise InvalidRequestError("field 'stop' needs an engine with a tokenizer", "stop")
        rid = request_id if request_id is not None else f"req-{next(self._arrivals)}"
        if rid in self.requests:
            raise InvalidRequestError(f"request id {rid!r} is already in use", "request_id")
        text = IncrementalText(self.tokenizer.decode, params.stop) if self.tokenizer else None
        req = Request(rid, prompt, params, make_generator(params.seed), text, next(self._arrivals))
        self.scheduler.add(req)
        self.requests[rid] = req
        self.prompt_tokens += len(prompt)
        return rid

    def _check_prompt(self, prompt_ids: Sequence[int], params: SamplingParams) -> list[int]:
        prompt = [int(t) for t in prompt_ids]
        if not prompt:
            raise InvalidRequestError("field 'prompt' is empty", "prompt")
        bad = next((t for t in prompt if not 0 <= t < self.args.vocab_size), None)
        if bad is not None:
            raise InvalidRequestError(
                f"field 'prompt' has token id {bad} outside the vocabulary "
                f"[0, {self.args.vocab_size})",
                "prompt",
            )
        limit = self.args.max_seq_len
        if len(prompt) >= limit:
            raise InvalidRequestError(
                f"field 'prompt' has {len(prompt)} tokens: the context holds {limit}, "
                "and at least one must be left to generate",
                "prompt",
            )
        total = min(len(prompt) + params.max_tokens, limit)
        capacity = self.allocator.num_blocks * self.config.block_size
        if total > capacity:
            raise InvalidRequestError(
                f"field 'max_tokens' ({params.max_tokens}) with a {len(prompt)}-token prompt "
                f"needs {total} KV slots; the cache holds {capacity}",
                "max_tokens",
            )
        return prompt

    def abort(self, request_id: str) -> RequestOutput | None:
        """Cancel a request (its blocks are freed at once); None if it is not known."""
        req = self.requests.get(request_id)
        if req is None:
            return None
        return self._finish(req, "abort")

    def has_unfinished(self) -> bool:
        return bool(self.requests)

    # -- the step ----------------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one scheduled batch; one output per request that produced tokens or ended."""
        scheduled = self.scheduler.schedule()
        if not scheduled:
            return []
        chunks = []
        for s in scheduled:
            r = s.request
            done = r.num_computed + s.num_tokens == r.num_tokens
            ids = r.all_ids[r.num_computed : r.num_computed + s.num_tokens]
            chunks.append(Chunk(ids, r.num_computed, r.block_table, sample=done))
        logits = self.runner.step(chunks)
        # One argmax for the whole batch: a plain greedy request's token, without a torch call
        # per request.
        argmax = logits.argmax(-1).tolist() if len(logits) else []
        outputs, row = [], 0
        for s, chunk in zip(scheduled, chunks):
            req = s.request
            req.num_computed += s.num_tokens
            self.scheduler.after_step(req)
            if chunk.sample:
                outputs.append(self._emit(req, logits[row], argmax[row]))
                row += 1
        return outputs

    def _emit(self, req: Request, logits: torch.Tensor, argmax: int) -> RequestOutput:
        p = req.params
        if is_plain_greedy(p):
            token = argmax
        else:
            token = choose_token(process_logits(logits, p, req.counts), p, req.generator)
        req.output_ids.append(token)
        req.counts[token] = req.counts.get(token, 0) + 1
        self.generated_tokens += 1
        new_lp = []
        if p.logprobs is not None:
            lp = torch.log_softmax(logits, -1)
            top = torch.topk(lp, p.logprobs) if p.logprobs else None
            alts = dict(zip(top.indices.tolist(), top.values.tolist())) if top is not None else {}
            new_lp = [TokenLogprob(token, float(lp[token]), alts)]
            req.logprobs.extend(new_lp)
        stops = set(p.stop_token_ids) | (set() if p.ignore_eos else self.stop_token_ids)
        visible = req.output_ids[:-1] if token in stops else req.output_ids
        text = req.text.update(visible) if req.text is not None else ""
        reason = self._finish_reason(req, token in stops)
        if reason is None:
            return self._output(req, [token], text, new_lp, finished=False)
        if reason != "stop" and req.text is not None:
            text += req.text.flush(visible)
        out = self._finish(req, reason)
        return self._output(req, [token], text, new_lp, finished=True, reason=out.finish_reason)

    def _finish_reason(self, req: Request, stop_token: bool) -> str | None:
        if stop_token or (req.text is not None and req.text.stopped):
            return "stop"
        if len(req.output_ids) >= req.params.max_tokens or req.num_tokens >= self.args.max_seq_len:
            return "length"
        return None

    def _finish(self, req: Request, reason: str) -> RequestOutput:
        self.scheduler.finish(req)
        req.finish_reason = reason
        self.requests.pop(req.request_id, None)
        return self._output(req, [], "", [], finished=True, reason=reason)

    @staticmethod
    def _output(req, ids, text, lps, finished, reason=None) -> RequestOutput:
        return RequestOutput(
            req.request_id,
            ids,
            text,
            lps,
            finished,
            reason,
            len(req.prompt_ids),
            len(req.output_ids),
        )

    # -- conveniences ------------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams]
    ) -> list[list[int]]:
        """Run ``prompts`` together to completion; the generated ids of each, in order."""
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        ids = [self.add_request(p, sp) for p, sp in zip(prompts, plist)]
        results: dict[str, list[int]] = {rid: [] for rid in ids}
        while self.has_unfinished():
            for out in self.step():
                if out.request_id in results:
                    results[out.request_id].extend(out.new_token_ids)
        return [results[rid] for rid in ids]

    def stats(self) -> dict[str, int]:
        return {
            "running": len(self.scheduler.running),
            "waiting": len(self.scheduler.waiting),
            "kv_blocks_used": self.allocator.num_used,
            "kv_blocks_total": self.allocator.num_blocks,
            "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "preemptions": self.scheduler.preemptions,
        }
