"""Tokenisation into l3-core's token shards (``l3_core.shards``): one shard per chunk, with
document boundaries and sources, and ``manifest.json`` written when the run finishes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from l3_core.errors import ShardError
from l3_core.shards import write_manifest, write_shard
from l3_core.tokenizer import Tokenizer
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, Step, register
from l3_data.steps.limits import POSITIVE, option_limits

log = logging.getLogger(__name__)


def load_tokenizer(spec: str) -> Tokenizer:
    """``"llama3"`` (the official tokenizer from the llama-models wheel) or a file path."""
    if spec == "llama3":
        from l3_core.tokenizer import llama3_tokenizer_path

        return Tokenizer.from_file(llama3_tokenizer_path())
    return Tokenizer.from_file(spec)


@register("tokenize")
@dataclass(kw_only=True)
class Tokenize(Step):
    extra = "tokenize"
    path_fields = ("output", "tokenizer")
    builtin_values: ClassVar[Mapping[str, tuple[str, ...]]] = {"tokenizer": ("llama3",)}
    output_fields = ("output",)
    limits = option_limits(batch_size=POSITIVE)

    output: str
    tokenizer: str = "llama3"
    bos: bool = True
    eos: bool = True
    batch_size: int = 256
    default_source: str = "default"

    def setup(self) -> None:
        self._tok = load_tokenizer(self.tokenizer)

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        encoded: list[tuple[list[int], str]] = []
        batch: list[Document] = []

        def flush() -> None:
            ids = self._tok.encode_batch([d.text for d in batch], bos=self.bos, eos=self.eos)
            for doc, toks in zip(batch, ids):
                encoded.append((toks, doc.source or self.default_source))
                self.stat(ctx, "tokens", len(toks))
            batch.clear()

        for doc in docs:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                flush()
            yield doc
        if batch:
            flush()
        if encoded:
            write_shard(
                self.output,
                ctx.unit,
                encoded,
                vocab_size=self._tok.n_words,
                tokenizer=self._tok.fingerprint(),
            )

    def finalize(self, workdir: Path) -> dict[str, Any]:
        try:
            manifest = write_manifest(self.output)
        except ShardError as e:
            log.warning("no token shards written: %s", e)
            return {"shards": 0, "tokens": 0, "documents": 0}
        return {
            "shards": len(manifest["shards"]),
            "tokens": manifest["n_tokens"],
            "documents": manifest["n_docs"],
            "tokens_per_source": manifest["tokens_per_source"],
        }
