"""PII steps: drop documents dense in personal data, redact the rest (``l3_data.pii``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from l3_data.document import Document
from l3_data.pii import PII_TYPES, find_pii, pii_char_ratio, redact
from l3_data.steps.base import ChunkContext, Filter, Step, register
from l3_data.steps.limits import FRACTION, NON_NEGATIVE, option_limits


def _option_problems(types: list[str], regions: list[str]) -> list[str]:
    import phonenumbers  # the step's extra, checked before its options

    problems = []
    unknown = [t for t in types if t not in PII_TYPES]
    if unknown:
        problems.append(f"types = {unknown}: expected some of {list(PII_TYPES)}")
    bad = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if bad:
        problems.append(f"phone_regions = {bad}: expected ISO 3166 region codes such as 'US'")
    return problems


@register("pii_filter")
@dataclass(kw_only=True)
class PiiFilter(Filter):
    """Reject documents whose PII covers more than ``max_pii_char_ratio`` of their characters
    (``pii_density``) or that hold more than ``max_hits`` hits (``too_many_pii``); the counts
    per type are stored in ``metadata["pii_counts"]``."""

    extra = "pii"
    limits = option_limits(max_pii_char_ratio=FRACTION, max_hits=NON_NEGATIVE)

    types: list[str] = field(default_factory=lambda: list(PII_TYPES))
    phone_regions: list[str] = field(default_factory=lambda: ["US"])
    max_pii_char_ratio: float = 0.05
    max_hits: int | None = None

    def check_options(self) -> list[str]:
        return super().check_options() + _option_problems(self.types, self.phone_regions)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        hits = find_pii(doc.text, self.types, self.phone_regions)
        counts: dict[str, int] = {}
        for h in hits:
            counts[h.type] = counts.get(h.type, 0) + 1
        doc.metadata["pii_counts"] = counts
        if self.max_hits is not None and len(hits) > self.max_hits:
            return False, "too_many_pii"
        if pii_char_ratio(doc.text, hits) > self.max_pii_char_ratio:
            return False, "pii_density"
        return True


@register("pii_redact")
@dataclass(kw_only=True)
class PiiRedact(Step):
    """Replace each PII hit with a typed placeholder (``[EMAIL]``, ``[PHONE]``, ``[IP]``,
    ``[CARD]``, ``[IBAN]``, ``[SSN]``); counts per type go to the report as ``redacted:<type>``."""

    extra = "pii"

    types: list[str] = field(default_factory=lambda: list(PII_TYPES))
    phone_regions: list[str] = field(default_factory=lambda: ["US"])

    def check_options(self) -> list[str]:
        return super().check_options() + _option_problems(self.types, self.phone_regions)

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        for doc in docs:
            hits = find_pii(doc.text, self.types, self.phone_regions)
            for h in hits:
                self.stat(ctx, f"redacted:{h.type}")
            if hits:
                doc.text = redact(doc.text, hits)
            yield doc
