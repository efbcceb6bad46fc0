"""What a pipeline step is: a generator over a stream of documents, with named counters.

Three kinds of step:

* :class:`Step` transforms or annotates documents one by one (``run``).
* :class:`Filter` keeps or rejects each document (``filter(doc) -> bool | (bool, reason)``);
  a rejected document goes to the exclusion output with ``<step>:<reason>``, never silently.
* :class:`GlobalStep` needs the whole corpus before it can decide (dedup, the data mix, the
  corpus token distribution). The executor runs it in three phases: ``collect`` a small array
  per chunk (hashes, signatures, counts), ``reduce`` all of them once, then ``apply`` the
  decision chunk by chunk. Memory is bounded by the collected arrays, never by the texts.

Steps are keyword-only dataclasses whose fields are the options a pipeline file may set, so an
unknown option is rejected by name when the file is read. A step declares what the pipeline
needs to know about it as class attributes: ``extra`` (the optional extra it needs, checked at
load), ``path_fields`` (options that hold file paths, resolved against the pipeline file),
``output_fields`` (options naming a folder the step writes) and ``limits`` (the meaningful range
of each numeric or enumerated option, :mod:`l3_data.steps.limits`, checked at load).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from l3_data.document import Document
from l3_data.steps.limits import Check, violations

STEPS: dict[str, type[Step]] = {}


def register(name: str) -> Callable[[type[Step]], type[Step]]:
    """Class decorator: make a step available to pipeline files under ``name``."""

    def deco(cls: type[Step]) -> type[Step]:
        cls.type_name = name
        STEPS[name] = cls
        return cls

    return deco


@dataclass
class ChunkContext:
    """Where a step runs: the unit of work (one chunk of one task) and what it reports."""

    unit: str
    workdir: Path
    stats: Counter = field(default_factory=Counter)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def exclude(self, doc: Document, reason: str, label: str = "") -> None:
        """Send ``doc`` to the exclusion output with ``reason``, counted under step ``label``."""
        self.stats[f"{label}/rejected:{reason}"] += 1
        self.excluded.append({**doc.to_json(), "reason": reason})


@dataclass(kw_only=True)
class Step:
    """A step over a stream of documents. Subclasses set their options as dataclass fields."""

    type_name: ClassVar[str] = "step"
    # The optional extra (see l3_data.extras) this step needs; "" for the base install.
    extra: ClassVar[str] = ""
    # Options holding a path (a string, a list of strings or a table of strings), resolved
    # against the pipeline file's folder; "" means "not set" and is left alone.
    path_fields: ClassVar[tuple[str, ...]] = ()
    # Values of a path field that name a built-in resource rather than a file.
    builtin_values: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # Options naming a folder the step writes (stale temporaries there are cleared at start).
    output_fields: ClassVar[tuple[str, ...]] = ()
    # option -> its meaningful values; every numeric option of a step has one (tested).
    limits: ClassVar[Mapping[str, Check]] = {}
    label: str = field(default="", init=False, repr=False)

    def check_options(self) -> list[str]:
        """What is wrong with the options, one ``option = value: expected ...`` each. Steps
        with a constraint across options extend this."""
        return violations(vars(self), self.limits)

    def output_dirs(self) -> list[str]:
        return [getattr(self, f) for f in self.output_fields if getattr(self, f)]

    @classmethod
    def resolve_paths(
        cls, options: dict[str, Any], resolve: Callable[[str], str]
    ) -> dict[str, Any]:
        """``options`` with every path field passed through ``resolve``."""
        out = dict(options)
        for name in cls.path_fields:
            if name not in out:
                continue
            keep = cls.builtin_values.get(name, ())

            def one(value: Any, keep: tuple[str, ...] = keep) -> Any:
                return (
                    resolve(value)
                    if isinstance(value, str) and value and value not in keep
                    else value
                )

            value = out[name]
            if isinstance(value, list):
                out[name] = [one(v) for v in value]
            elif isinstance(value, dict):
                out[name] = {k: one(v) for k, v in value.items()}
            else:
                out[name] = one(value)
        return out

    def setup(self) -> None:
        """Load what the step needs (models, word lists) once per worker process."""

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        raise NotImplementedError

    def finalize(self, workdir: Path) -> dict[str, Any]:
        """Called once after every chunk has run (e.g. to write a manifest); returns figures."""
        return {}

    def reject(self, ctx: ChunkContext, doc: Document, reason: str) -> None:
        """Exclude ``doc`` with the reason ``<step type>:<reason>``."""
        ctx.exclude(doc, f"{self.type_name}:{reason}", self.label)

    def stat(self, ctx: ChunkContext, name: str, n: int = 1) -> None:
        ctx.stats[f"{self.label}/{name}"] += n


@dataclass(kw_only=True)
class Filter(Step):
    """Keep or reject each document. ``languages`` limits the filter to those ``lang`` values."""

    languages: list[str] = field(default_factory=list)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        raise NotImplementedError

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        langs = set(self.languages)
        for doc in docs:
            if langs and doc.metadata.get("lang") not in langs:
                yield doc
                continue
            verdict = self.filter(doc)
            keep, reason = verdict if isinstance(verdict, tuple) else (verdict, "rejected")
            if keep:
                yield doc
            else:
                self.reject(ctx, doc, reason)


@dataclass(kw_only=True)
class GlobalStep(Step):
    """A step that decides from the whole corpus: collect per chunk, reduce once, apply."""

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        """Small arrays describing ``docs`` (in order); saved beside the chunk."""
        raise NotImplementedError

    def reduce(
        self, units: list[str], load: Callable[[str], dict[str, np.ndarray]], state_dir: Path
    ) -> dict[str, Any]:
        """Decide from every unit's collected arrays (in global order); write the decision
        under ``state_dir``; return summary figures for the report."""
        raise NotImplementedError

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        """Act on the decision for the chunk ``ctx.unit`` (same documents, same order)."""
        raise NotImplementedError

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        raise TypeError(f"{self.type_name} is a global step: the executor runs it in phases")


@dataclass(kw_only=True)
class PartitionedStep(GlobalStep):
    """A global step whose reduce runs in ``partitions`` independent parts, each over one hash
    partition of every chunk's arrays (:mod:`l3_data.steps.partitions`), then a ``merge`` of
    the parts' small results. The executor spreads the parts over its workers, each part is
    resumable on its own, and a part holds about ``1/partitions`` of the collected rows."""

    partitions: int = 16

    def reduce_partition(
        self,
        part: int,
        units: list[str],
        load: Callable[[str], dict[str, np.ndarray]],
        state_dir: Path,
    ) -> dict[str, Any]:
        """Process part ``part`` of every unit; write its result under ``state_dir``; return
        its figures (passed to :meth:`merge`)."""
        raise NotImplementedError

    def merge(
        self,
        units: list[str],
        load: Callable[[str], dict[str, np.ndarray]],
        state_dir: Path,
        parts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Combine the parts' results into the decision :meth:`apply` reads."""
        raise NotImplementedError

    def reduce(
        self, units: list[str], load: Callable[[str], dict[str, np.ndarray]], state_dir: Path
    ) -> dict[str, Any]:
        """Every part in this process, then the merge (executors run the parts in workers)."""
        parts = [self.reduce_partition(p, units, load, state_dir) for p in range(self.partitions)]
        return self.merge(units, load, state_dir, parts)


def keep_mask_apply(
    step: Step, docs: list[Document], ctx: ChunkContext, mask_path: Path, reason: str
) -> Iterator[Document]:
    """Yield the documents whose entry in the saved boolean mask is true; exclude the rest."""
    keep = np.load(mask_path, allow_pickle=False)
    if keep.shape != (len(docs),):
        raise RuntimeError(f"{mask_path}: mask for {keep.shape} documents, chunk has {len(docs)}")
    for doc, k in zip(docs, keep):
        if k:
            yield doc
        else:
            step.reject(ctx, doc, reason)


def batches(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    """Consecutive lists of up to ``size`` documents, for steps that score many at once."""
    it = iter(docs)
    while batch := list(itertools.islice(it, size)):
        yield batch
