"""The data mix (Llama 3, 3.1.2 and 3.1.3): sample documents so that domains reach target
proportions (about 50% general, 25% math and reasoning, 17% code, 8% multilingual), by
downsampling and upsampling (repeating) documents; ``upsample`` multiplies chosen sources
further, as in the annealing mix.

Domains come from ``metadata[key]`` (e.g. set by ``classify``), else from ``source_domains``
(source name -> domain), else ``default_domain``. Sampling is a deterministic function of the
document id and ``seed``, so a rerun keeps and repeats exactly the same documents.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from l3_core.io import write_json
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, GlobalStep, register
from l3_data.steps.global_arrays import Loader
from l3_data.steps.limits import NON_NEGATIVE, Range, option_limits

PAPER_MIX = {"general": 0.50, "math": 0.25, "code": 0.17, "multilingual": 0.08}


@register("mix")
@dataclass(kw_only=True)
class Mix(GlobalStep):
    limits = option_limits(
        targets=NON_NEGATIVE,
        total=NON_NEGATIVE,
        max_upsample=Range(0, low_open=True),
        upsample=NON_NEGATIVE,
    )

    key: str = "domain"
    targets: dict[str, float] = field(default_factory=lambda: dict(PAPER_MIX))
    source_domains: dict[str, str] = field(default_factory=dict)
    default_domain: str = "general"
    total: int = 0
    max_upsample: float = 1.0
    upsample: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def check_options(self) -> list[str]:
        problems = super().check_options()
        if not problems and not sum(self.targets.values()):
            problems.append(f"targets = {self.targets}: expected proportions with a positive sum")
        return problems

    def domain(self, doc: Document) -> str:
        d = doc.metadata.get(self.key)
        return str(d) if d else self.source_domains.get(doc.source, self.default_domain)

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        names = sorted(self.targets)
        counts = np.zeros(len(names) + 1, np.int64)
        index = {n: i for i, n in enumerate(names)}
        for d in docs:
            counts[index.get(self.domain(d), len(names))] += 1
        return {"counts": counts}

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        names = sorted(self.targets)
        counts = np.zeros(len(names) + 1, np.int64)
        for u in units:
            counts += load(u)["counts"]
        present = {n: int(c) for n, c in zip(names, counts) if c > 0}
        weight = sum(self.targets[n] for n in present)
        if not present or not weight:
            rates = {n: 0.0 for n in names}
            total = 0
        else:
            share = {n: self.targets[n] / weight for n in present}
            total = self.total or math.floor(
                min(present[n] * self.max_upsample / share[n] for n in present if share[n] > 0)
            )
            rates = {n: (share[n] * total / present[n] if n in present else 0.0) for n in names}
        write_json(state_dir / "rates.json", rates)
        return {
            "input_per_domain": {**present, "other": int(counts[-1])},
            "rates": {n: round(r, 4) for n, r in rates.items()},
            "target_total": total,
            "missing_domains": [n for n in names if n not in present and self.targets[n] > 0],
        }

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        rates = json.loads((state_dir / "rates.json").read_text(encoding="utf-8"))
        for doc in docs:
            dom = self.domain(doc)
            if dom not in rates:
                self.reject(ctx, doc, f"domain_{dom}_not_in_targets")
                continue
            r = rates[dom] * self.upsample.get(doc.source, 1.0)
            u = xxhash.xxh3_64_intdigest(f"{self.seed}:{doc.id}".encode()) / 2**64
            copies = int(r) + (u < r - int(r))
            if copies == 0:
                self.reject(ctx, doc, f"downsampled_{dom}")
                continue
            self.stat(ctx, f"out:{dom}", copies)
            yield doc
            for k in range(1, copies):
                self.stat(ctx, "repeated")
                yield Document(doc.text, f"{doc.id}#r{k}", doc.source, dict(doc.metadata))
