"""Where the K samples of a prompt are drawn: a registry of generation engines.

``prefix_cache`` (always there) prefills each prompt once and decodes its K samples together;
``l3-infer-fp8`` runs them on that package's paged cache with continuous batching (its prefix
table shares the prompt's full blocks), when it is installed. ``auto`` picks ``l3-infer-fp8``
when it imports, else ``prefix_cache``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from l3_align.errors import AlignConfigError
from l3_align.sampling.prefix_cache import sample_shared_prefix
from l3_core.errors import DependencyError
from l3_core.model import Transformer


@dataclass(frozen=True)
class SampleRequest:
    """K samples of one prompt: ``seed`` makes them reproducible."""

    prompt: Sequence[int]
    k: int
    seed: int


# engine(model, requests, max_new_tokens, temperature, top_p, stop_tokens) -> per request, K ids
Engine = Callable[
    [Transformer, Sequence[SampleRequest], int, float, float, Collection[int]],
    list[list[list[int]]],
]


def prefix_cache_engine(model, requests, max_new_tokens, temperature, top_p, stop_tokens):
    return [
        sample_shared_prefix(
            model, r.prompt, r.k, max_new_tokens, temperature, top_p, stop_tokens, r.seed
        )
        for r in requests
    ]


def infer_fp8_engine(model, requests, max_new_tokens, temperature, top_p, stop_tokens):
    try:
        from l3_infer_fp8.engine import Engine, SamplingParams
    except ImportError as e:
        raise DependencyError(
            f"sample.engine = 'l3-infer-fp8' needs it installed: pip install 'l3-align[infer]' ({e})"
        ) from None
    engine = Engine(model, stop_token_ids=stop_tokens)
    prompts, params = [], []
    for r in requests:
        for i in range(r.k):
            prompts.append(list(r.prompt))
            params.append(
                SamplingParams(
                    max_tokens=max_new_tokens,
                    temperature=temperature,
                    top_p=top_p,
                    seed=r.seed * 1000 + i,
                )
            )
    flat = iter(engine.generate(prompts, params))
    return [[next(flat) for _ in range(r.k)] for r in requests]


ENGINES: dict[str, Engine] = {
    "prefix_cache": prefix_cache_engine,
    "l3-infer-fp8": infer_fp8_engine,
}


def engine_named(name: str) -> tuple[str, Engine]:
    """The engine ``name`` (``auto``: l3-infer-fp8 when installed, else prefix_cache)."""
    if name == "auto":
        name = "l3-infer-fp8" if importlib.util.find_spec("l3_infer_fp8") else "prefix_cache"
    if name not in ENGINES:
        raise AlignConfigError(f"sample.engine = {name!r}: engines are auto, {', '.join(ENGINES)}")
    return name, ENGINES[name]
