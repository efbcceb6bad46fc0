"""Exact deduplication: by normalised URL (keeping the most recent crawl) and by content hash."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import xxhash

from l3_data.document import Document
from l3_data.steps.base import ChunkContext, GlobalStep, keep_mask_apply, register
from l3_data.steps.global_arrays import (
    Loader,
    cluster_members,
    concat,
    keep_first,
    save_masks,
    write_clusters,
)

_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|mc_eid$|ref$)")


def normalize_url(url: str) -> str:
    """One spelling per page: scheme-less, lower-case host without ``www.`` or default port,
    no fragment, no tracking parameters, sorted query, no trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        )
    )
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("", netloc, path, query, ""))


def _timestamp(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return float("-inf")
    return float("-inf")


@register("url_dedup")
@dataclass(kw_only=True)
class UrlDedup(GlobalStep):
    """Keep one document per normalised URL: the most recent by ``date_key`` (ties: first seen).
    Documents without a URL are kept."""

    url_key: str = "url"
    date_key: str = "date"

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        hashes = np.zeros(len(docs), np.uint64)
        stamps = np.full(len(docs), -np.inf)
        for i, d in enumerate(docs):
            url = d.metadata.get(self.url_key)
            if isinstance(url, str) and url.strip():
                hashes[i] = xxhash.xxh3_64_intdigest(normalize_url(url).encode()) or 1
                stamps[i] = _timestamp(d.metadata.get(self.date_key))
        return {"url": hashes, "ts": stamps}

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        urls, sizes = concat(units, load, "url")
        stamps, _ = concat(units, load, "ts")
        n = len(urls)
        order = np.lexsort((np.arange(n), -stamps, urls))
        first = np.ones(n, bool)
        first[1:] = urls[order][1:] != urls[order][:-1]
        keep = np.zeros(n, bool)
        keep[order[first]] = True
        keep |= urls == 0
        save_masks(state_dir, units, sizes, keep)
        return {"documents": n, "duplicates": int(n - keep.sum())}

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        return keep_mask_apply(self, docs, ctx, state_dir / f"{ctx.unit}.keep.npy", "duplicate_url")


_SPACE = re.compile(r"\s+")


@register("exact_dedup")
@dataclass(kw_only=True)
class ExactDedup(GlobalStep):
    """Keep the first document (in corpus order) of each distinct text (128-bit hash).
    ``normalize`` compares texts lower-cased with runs of whitespace collapsed."""

    normalize: bool = True

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        out = np.zeros((len(docs), 2), np.uint64)
        for i, d in enumerate(docs):
            text = _SPACE.sub(" ", d.text.strip().lower()) if self.normalize else d.text
            h = xxhash.xxh3_128_intdigest(text.encode())
            out[i] = (h >> 64, h & 0xFFFFFFFFFFFFFFFF)
        return {"hash": out, "id": np.array([d.id for d in docs], dtype=str)}

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        hashes, sizes = concat(units, load, "hash")
        hashes = hashes.reshape(-1, 2)
        keep = keep_first(hashes) if len(hashes) else np.zeros(0, bool)
        save_masks(state_dir, units, sizes, keep)
        # Documents with one hash form a cluster, as MinHash clusters do (ids, first kept).
        labels = (
            np.unique(hashes, axis=0, return_inverse=True)[1].reshape(-1)
            if len(hashes)
            else np.zeros(0, np.int64)
        )
        members = cluster_members(labels)
        clusters = state_dir / "clusters.jsonl"
        write_clusters(clusters, members, units, sizes, load)
        return {
            "documents": len(keep),
            "duplicates": int(len(keep) - keep.sum()),
            "clusters": len(members),
            "clusters_file": str(clusters),
        }

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        return keep_mask_apply(
            self, docs, ctx, state_dir / f"{ctx.unit}.keep.npy", "duplicate_text"
        )
