"""HTML to text for web pages, with trafilatura (main-content extraction), keeping code blocks
(as fenced blocks) and mathematics (as TeX between ``$``).

trafilatura keeps MathML that carries ``alttext``; MathJax ``<script type="math/tex">`` and
KaTeX's TeX annotation are turned into ``$TeX$`` text first so that they survive too.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from l3_data.document import Document
from l3_data.steps.base import ChunkContext, Step, register

_MATHJAX = re.compile(
    r'<script[^>]*type="math/tex(; ?mode=display)?"[^>]*>(.*?)</script>', re.S | re.I
)
_KATEX = re.compile(
    r'<span class="katex[^"]*">.*?<annotation encoding="application/x-tex">(.*?)'
    r"</annotation>.*?</span>\s*</span>",
    re.S,
)


def keep_math(page: str) -> str:
    """Rewrite MathJax and KaTeX markup as ``$TeX$`` text."""
    page = _MATHJAX.sub(
        lambda m: f" ${'$' if m.group(1) else ''}{html_lib.escape(m.group(2).strip())}"
        f"${'$' if m.group(1) else ''} ",
        page,
    )
    return _KATEX.sub(lambda m: f" ${m.group(1).strip()}$ ", page)


def html_to_text(page: str) -> str | None:
    import trafilatura

    return trafilatura.extract(
        keep_math(page),
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )


@register("html_to_text")
@dataclass(kw_only=True)
class HtmlToText(Step):
    """Replace each document's HTML (its text, or ``metadata[html_key]`` if set) by the
    extracted main text; pages with no main text are rejected."""

    extra = "html"

    html_key: str = ""

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        for doc in docs:
            page = doc.metadata.pop(self.html_key, "") if self.html_key else doc.text
            text = html_to_text(page) if isinstance(page, str) and page.strip() else None
            if not text or not text.strip():
                self.reject(ctx, doc, "no_main_text")
                continue
            doc.text = text
            yield doc
