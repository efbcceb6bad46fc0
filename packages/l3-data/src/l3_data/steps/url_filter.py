"""Removing documents whose URL is on a block list (adult, malware, spam lists the user gives).

A block list is a text file, one entry a line, ``#`` comments and blank lines ignored:

* a domain (``example.com``, or ``*.example.com`` / ``.example.com``, the same thing) blocks
  that host and every subdomain of it (``news.example.com``), never ``badexample.com``;
* anything with ``/``, ``*`` or ``?`` elsewhere is a glob pattern (``fnmatch``) matched against
  the URL without its scheme, lower-cased: ``example.org/ads/*``, ``*.tracker.*/pixel*``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from l3_data.document import Document
from l3_data.errors import PipelineConfigError
from l3_data.steps.base import Filter, register
from l3_data.steps.limits import OneOf, option_limits

_DOMAIN = re.compile(r"^(?:\*\.|\.)?((?:[\w-]+\.)*[\w-]+)\.?$")


@dataclass(frozen=True)
class BlockRule:
    """One entry of a block list and where it came from, for the exclusion record."""

    entry: str
    origin: str  # "<file>:<line>"


class BlockList:
    """Domains (subdomains included) and URL glob patterns, looked up per URL."""

    def __init__(self) -> None:
        self.domains: dict[str, BlockRule] = {}
        self.patterns: list[tuple[re.Pattern[str], BlockRule]] = []

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> BlockList:
        out = cls()
        for path in paths:
            p = Path(path)
            if not p.is_file():
                raise PipelineConfigError(f"url_blocklist.block_lists: block list {p} not found")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                out.add(line, f"{p.name}:{n}")
        return out

    def add(self, line: str, origin: str) -> None:
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            return
        rule = BlockRule(entry, origin)
        domain = _DOMAIN.match(entry)
        if domain:
            self.domains.setdefault(domain.group(1), rule)
        else:
            pattern = entry.split("://", 1)[-1]
            self.patterns.append((re.compile(fnmatch.translate(pattern)), rule))

    def match(self, url: str) -> BlockRule | None:
        """The rule that blocks ``url``, or None."""
        rest = url.strip().lower()
        rest = rest.split("://", 1)[1] if "://" in rest else rest.removeprefix("//")
        host = urlsplit("//" + rest).hostname or ""
        labels = host.rstrip(".").split(".")
        for i in range(len(labels)):
            rule = self.domains.get(".".join(labels[i:]))
            if rule:
                return rule
        for pattern, rule in self.patterns:
            if pattern.match(rest):
                return rule
        return None

    def __len__(self) -> int:
        return len(self.domains) + len(self.patterns)


@register("url_blocklist")
@dataclass(kw_only=True)
class UrlBlocklist(Filter):
    """Reject documents whose ``url_key`` field matches an entry of the ``block_lists`` files;
    the rule (``file:line entry``) is stored in the excluded document's ``blocked_by``.
    Documents without a URL are kept, or rejected with ``missing = "reject"``."""

    path_fields = ("block_lists",)
    limits = option_limits(missing=OneOf(("keep", "reject")))

    block_lists: list[str] = field(default_factory=list)
    url_key: str = "url"
    missing: str = "keep"

    def check_options(self) -> list[str]:
        problems = super().check_options()
        if not self.block_lists:
            problems.append("block_lists = []: expected at least one block list file")
        missing = [p for p in self.block_lists if not Path(p).is_file()]
        if missing:
            problems.append(f"block_lists: no such file {', '.join(missing)}")
        return problems

    def setup(self) -> None:
        self._blocked = BlockList.from_files(self.block_lists)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        url = doc.metadata.get(self.url_key)
        if not isinstance(url, str) or not url.strip():
            return (False, "no_url") if self.missing == "reject" else True
        rule = self._blocked.match(url)
        if rule is None:
            return True
        doc.metadata["blocked_by"] = f"{rule.origin} {rule.entry}"
        return False, "blocked_domain" if _DOMAIN.match(rule.entry) else "blocked_pattern"
