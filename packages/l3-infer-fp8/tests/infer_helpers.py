"""Shared test helpers: tiny fp32 models, decoders, an engine with a tokenizer, a scripted loop."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from l3_core import ModelArgs
from l3_core.model import Transformer
from l3_infer_fp8.engine import Engine, EngineConfig
from l3_infer_fp8.engine.request import RequestOutput

TEXT = (
    "The quick brown fox jumps over the lazy dog. Hello world, how are you today? " * 3
    + "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 {}[]():;,.\"'<>/_-+=!?\n"
) * 20


def tiny_model(seed: int = 0, **changes) -> Transformer:
    args = ModelArgs.from_preset("llama3-tiny", **changes)
    model = Transformer.build(args, dtype=torch.float32, seed=seed).eval()
    with torch.no_grad():  # non-trivial norms, as a trained model has
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


class CharDecoder:
    """Token t decodes to one letter: enough to test text and stop strings exactly."""

    def decode(self, ids) -> str:
        return "".join(chr(ord("a") + t % 26) for t in ids)


def make_engine(model, tokenizer, **config) -> Engine:
    cfg = EngineConfig(**({"num_blocks": 256, "block_size": 8} | config))
    return Engine(model, cfg, tokenizer, stop_token_ids=tokenizer.stop_tokens)


def client_for(server):
    import openai

    return openai.OpenAI(
        base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120
    )


class ScriptedLoop:
    """Stands in for the engine loop: answers every request with ``answer``'s tokens and
    records the prompts, so the API's formatting of tool calls and refusals is tested exactly."""

    def __init__(self, tokenizer, answer: str, error: Exception | None = None) -> None:
        self.tokenizer = tokenizer
        self.answer = answer
        self.error = error
        self.prompts: list[list[int]] = []
        self.engine = SimpleNamespace(args=SimpleNamespace(max_seq_len=512))

    def start(self):
        return self

    def stop(self, drain_s: float = 0) -> None:
        pass

    def stats(self) -> dict:
        return {"running": 0, "waiting": 0}

    def abort(self, request_id: str) -> None:
        pass

    def submit(self, prompt_ids, params, on_output=None, request_id=None):
        if self.error is not None:
            raise self.error
        self.prompts.append(list(prompt_ids))
        ids = self.tokenizer.encode(self.answer, bos=False, eos=False)
        for k, t in enumerate(ids):
            last = k == len(ids) - 1
            on_output(
                RequestOutput(
                    "r",
                    [t],
                    self.tokenizer.decode(ids[: k + 1])[len(self.tokenizer.decode(ids[:k])) :],
                    [],
                    last,
                    "stop" if last else None,
                    len(prompt_ids),
                    k + 1,
                )
            )
        return SimpleNamespace(request_id="r", cancel=lambda: None)
