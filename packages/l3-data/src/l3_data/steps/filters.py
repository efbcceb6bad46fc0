"""Heuristic quality filters: Gopher quality and repetition rules (Rae et al. 2021), C4 line
rules (Raffel et al. 2020), and the Llama 3 "dirty word" count. Every threshold is an option;
``None`` switches a rule off. Words are ``\\w+`` runs, so the rules work in any script.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from l3_data.document import Document
from l3_data.errors import PipelineConfigError
from l3_data.steps.base import ChunkContext, Filter, Step, register
from l3_data.steps.limits import FRACTION, NON_NEGATIVE, option_limits

WORD = re.compile(r"\w+")
# A whitespace-separated token with no letter: only digits, underscores and punctuation.
_NO_LETTER_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")
_STOP_WORDS = {"en": {"the", "be", "to", "of", "and", "that", "have", "with"}}


def words(text: str) -> list[str]:
    return WORD.findall(text)


@register("length_filter")
@dataclass(kw_only=True)
class LengthFilter(Filter):
    limits = option_limits(
        **dict.fromkeys(("min_chars", "max_chars", "min_words", "max_words"), NON_NEGATIVE)
    )

    min_chars: int | None = 1
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = len(doc.text)
        if self.min_chars is not None and n < self.min_chars:
            return False, "too_short_chars"
        if self.max_chars is not None and n > self.max_chars:
            return False, "too_long_chars"
        if self.min_words is not None or self.max_words is not None:
            w = len(words(doc.text))
            if self.min_words is not None and w < self.min_words:
                return False, "too_few_words"
            if self.max_words is not None and w > self.max_words:
                return False, "too_many_words"
        return True


@register("gopher_quality")
@dataclass(kw_only=True)
class GopherQuality(Filter):
    limits = option_limits(
        **dict.fromkeys(
            ("min_words", "max_words", "min_mean_word_len", "max_mean_word_len", "min_stop_words"),
            NON_NEGATIVE,
        ),
        **dict.fromkeys(
            (
                "max_symbol_word_ratio",
                "max_bullet_lines_ratio",
                "max_ellipsis_lines_ratio",
                "min_alpha_words_ratio",
            ),
            FRACTION,
        ),
    )

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_len: float | None = 3
    max_mean_word_len: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        toks = text.split()
        ws = words(text)
        n = len(ws)
        if self.min_words is not None and n < self.min_words:
            return False, "gopher_short_doc"
        if self.max_words is not None and n > self.max_words:
            return False, "gopher_long_doc"
        if n:
            mean = sum(map(len, ws)) / n
            if self.min_mean_word_len is not None and mean < self.min_mean_word_len:
                return False, "gopher_below_avg_word_len"
            if self.max_mean_word_len is not None and mean > self.max_mean_word_len:
                return False, "gopher_above_avg_word_len"
        if self.max_symbol_word_ratio is not None and n:
            symbols = text.count("#") + text.count("...") + text.count("…")
            if symbols / n > self.max_symbol_word_ratio:
                return False, "gopher_too_many_symbols"
        lines = [x for x in text.split("\n") if x.strip()]
        if lines and self.max_bullet_lines_ratio is not None:
            bullets = sum(1 for x in lines if x.lstrip().startswith(("•", "-", "*", "‣", "●")))
            if bullets / len(lines) > self.max_bullet_lines_ratio:
                return False, "gopher_too_many_bullets"
        if lines and self.max_ellipsis_lines_ratio is not None:
            ell = sum(1 for x in lines if x.rstrip().endswith(("...", "…")))
            if ell / len(lines) > self.max_ellipsis_lines_ratio:
                return False, "gopher_too_many_end_ellipsis"
        if toks and self.min_alpha_words_ratio is not None:
            alpha = len(toks) - len(_NO_LETTER_TOKEN.findall(text))
            if alpha / len(toks) < self.min_alpha_words_ratio:
                return False, "gopher_below_alpha_threshold"
        stop = _STOP_WORDS.get(doc.metadata.get("lang", "en"))
        if self.min_stop_words is not None and stop is not None:
            found = 0
            for w in ws:
                if w.lower() in stop:
                    found += 1
                    if found >= self.min_stop_words:
                        break
            else:
                return False, "gopher_enough_stop_words"
        return True


def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier one, fraction of their characters)."""
    seen: set[str] = set()
    dup = dup_chars = total_chars = 0
    for x in items:
        total_chars += len(x)
        if x in seen:
            dup += 1
            dup_chars += len(x)
        else:
            seen.add(x)
    return (dup / len(items) if items else 0.0, dup_chars / total_chars if total_chars else 0.0)


def top_ngram_fraction(ws: list[str], n: int) -> float:
    """Characters of the most frequent word n-gram times its count, over all word characters
    (0 when no n-gram repeats)."""
    if len(ws) < n:
        return 0.0
    ((gram, count),) = Counter(zip(*(ws[i:] for i in range(n)))).most_common(1)
    total = sum(map(len, ws))
    return sum(map(len, gram)) * count / total if count > 1 and total else 0.0


def duplicated_ngram_fraction(ws: list[str], n: int) -> float:
    """The duplicated n-gram coverage ratio: characters of words lying in an n-gram already
    seen earlier in the document (each character counted once), over all word characters."""
    grams = list(zip(*(ws[i:] for i in range(n))))
    if len(set(grams)) == len(grams):  # the common case: nothing repeats
        return 0.0
    lens = list(map(len, ws))
    seen: set[tuple[str, ...]] = set()
    covered = 0
    covered_until = -1
    for i, g in enumerate(grams):
        if g in seen:
            start = max(i, covered_until + 1)
            covered += sum(lens[start : i + n])
            covered_until = i + n - 1
        else:
            seen.add(g)
    total = sum(lens)
    return covered / total if total else 0.0


@register("gopher_repetition")
@dataclass(kw_only=True)
class GopherRepetition(Filter):
    """Repeated content (logs, error messages, spam): duplicate lines and paragraphs, top
    n-grams and the duplicated n-gram coverage ratio (Llama 3, 3.1.1)."""

    limits = option_limits(
        **dict.fromkeys(
            (
                "max_dup_line_frac",
                "max_dup_para_frac",
                "max_dup_line_char_frac",
                "max_dup_para_char_frac",
                "top_ngram_max",
                "dup_ngram_max",
            ),
            FRACTION,
        )
    )

    max_dup_line_frac: float | None = 0.3
    max_dup_para_frac: float | None = 0.3
    max_dup_line_char_frac: float | None = 0.2
    max_dup_para_char_frac: float | None = 0.2
    top_ngram_max: dict[str, float] = field(
        default_factory=lambda: {"2": 0.2, "3": 0.18, "4": 0.16}
    )
    dup_ngram_max: dict[str, float] = field(
        default_factory=lambda: {"5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10}
    )

    def check_options(self) -> list[str]:
        problems = super().check_options()
        for name in ("top_ngram_max", "dup_ngram_max"):
            for n in getattr(self, name):
                if not (n.isdigit() and int(n) >= 1):
                    problems.append(f"{name}.{n}: expected an n-gram length (an integer >= 1)")
        return problems

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        paras = [p for p in re.split(r"\n{2,}", text.strip()) if p.strip()]
        frac, chars = _dup_fraction(paras)
        if self.max_dup_para_frac is not None and frac > self.max_dup_para_frac:
            return False, "dup_para_frac"
        if self.max_dup_para_char_frac is not None and chars > self.max_dup_para_char_frac:
            return False, "dup_para_char_frac"
        lines = [x for x in text.split("\n") if x.strip()]
        frac, chars = _dup_fraction(lines)
        if self.max_dup_line_frac is not None and frac > self.max_dup_line_frac:
            return False, "dup_line_frac"
        if self.max_dup_line_char_frac is not None and chars > self.max_dup_line_char_frac:
            return False, "dup_line_char_frac"
        ws = words(text.lower())
        for n, limit in self.top_ngram_max.items():
            if top_ngram_fraction(ws, int(n)) > limit:
                return False, f"top_{n}_gram"
        for n, limit in sorted(self.dup_ngram_max.items(), key=lambda kv: int(kv[0])):
            frac = duplicated_ngram_fraction(ws, int(n))
            if frac > limit:
                return False, f"duplicated_{n}_gram"
            if frac == 0.0:  # a repeated longer n-gram would contain a repeated shorter one
                break
        return True


_POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_END_PUNCT = (".", "?", "!", '"', "'", "”", "’", "。", "！", "？")


@register("c4_quality")
@dataclass(kw_only=True)
class C4Quality(Step):
    """C4's rules: drop lines without terminal punctuation, with too few words, mentioning
    javascript or a cookie/terms policy; reject documents with "lorem ipsum", a curly bracket,
    or too few sentences left. ``languages`` limits the step to those ``lang`` values."""

    limits = option_limits(min_words_per_line=NON_NEGATIVE, min_sentences=NON_NEGATIVE)

    languages: list[str] = field(default_factory=list)
    min_words_per_line: int = 3
    min_sentences: int = 5
    reject_curly_bracket: bool = True
    reject_lorem_ipsum: bool = True
    drop_lines_without_end_punct: bool = True

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        langs = set(self.languages)
        for doc in docs:
            if langs and doc.metadata.get("lang") not in langs:
                yield doc
                continue
            low = doc.text.lower()
            if self.reject_lorem_ipsum and "lorem ipsum" in low:
                self.reject(ctx, doc, "lorem_ipsum")
                continue
            if self.reject_curly_bracket and "{" in doc.text:
                self.reject(ctx, doc, "curly_bracket")
                continue
            kept = []
            for line in doc.text.split("\n"):
                s = line.strip()
                ls = s.lower()
                if not s:
                    continue
                if self.drop_lines_without_end_punct and not s.endswith(_END_PUNCT):
                    continue
                if len(s.split()) < self.min_words_per_line:
                    continue
                if "javascript" in ls or any(p in ls for p in _POLICY):
                    continue
                kept.append(s)
            self.stat(ctx, "lines_removed", doc.text.count("\n") + 1 - len(kept))
            sentences = sum(len(re.findall(r"[.!?。！？]+(?:\s|$)", x)) for x in kept)
            if sentences < self.min_sentences:
                self.reject(ctx, doc, "too_few_sentences")
                continue
            doc.text = "\n".join(kept)
            yield doc


def load_word_list(path: str | Path) -> set[str]:
    p = Path(path)
    if not p.is_file():
        raise PipelineConfigError(f"dirty_words.word_lists: word list {p} not found")
    return {
        x.strip().lower()
        for x in p.read_text(encoding="utf-8").splitlines()
        if x.strip() and not x.startswith("#")
    }


@register("dirty_words")
@dataclass(kw_only=True)
class DirtyWords(Filter):
    """Reject documents whose share of words from the language's list exceeds ``max_ratio``
    (or that have more than ``max_count`` of them). ``word_lists`` maps a language to a file,
    one word or phrase per line; a small built-in English list is used otherwise. Documents in
    a language without a list pass."""

    path_fields = ("word_lists",)
    limits = option_limits(max_ratio=FRACTION, max_count=NON_NEGATIVE)

    word_lists: dict[str, str] = field(default_factory=dict)
    max_ratio: float = 0.01
    max_count: int | None = None
    default_language: str = "en"

    def setup(self) -> None:
        self._lists: dict[str, set[str]] = {}
        builtin = resources.files("l3_data") / "data" / "dirty_words_en.txt"
        self._lists["en"] = {
            x.strip().lower()
            for x in builtin.read_text(encoding="utf-8").splitlines()
            if x.strip() and not x.startswith("#")
        }
        for lang, path in self.word_lists.items():
            self._lists[lang] = load_word_list(path)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lst = self._lists.get(doc.metadata.get("lang", self.default_language))
        if not lst:
            return True
        ws = [w.lower() for w in words(doc.text)]
        if not ws:
            return True
        hits = sum(1 for w in ws if w in lst)
        phrases = [p for p in lst if " " in p]
        if phrases:
            low = " ".join(ws)
            hits += sum(low.count(p) for p in phrases)
        doc.metadata["dirty_words"] = hits
        if self.max_count is not None and hits > self.max_count:
            return False, "too_many_dirty_words"
        if hits / len(ws) > self.max_ratio:
            return False, "dirty_word_ratio"
        return True
