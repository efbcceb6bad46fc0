"""A held-out multilingual sentence set built from text that PyPI wheels ship, for tuning
language-ID preprocessing without touching the shared dev set.

Sources, read straight from the wheel files (zip archives; nothing is installed or executed):
spaCy's per-language ``lang/<xx>/examples.py`` sentence lists (MIT; parsed with ``ast``) and
Django's translated messages, ``conf/locale/<xx>/LC_MESSAGES/*.po`` and those of its contrib
apps (BSD). Django's messages are UI sentences, not news; spaCy's are news-like and literary.

    pip download --no-deps -d WHEELS django==5.2.19 spacy==3.8.18
    python benchmarks/_langid_heldout.py WHEELS OUT.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import zipfile
from collections import defaultdict
from pathlib import Path

# The dev set's 28 languages; Django's locale folder where it differs from the ISO code.
LANGUAGES = [
    "ar",
    "bn",
    "cs",
    "de",
    "el",
    "en",
    "es",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "nl",
    "pl",
    "pt",
    "ru",
    "sv",
    "ta",
    "th",
    "tr",
    "uk",
    "vi",
    "zh",
]
_DJANGO_LOCALE = {"zh": "zh_Hans"}
_UNSPACED = {"ja", "zh", "th"}
_PLACEHOLDER = re.compile(r"%[(\w)]|\{|<|\\")
_PO_ENTRY = re.compile(r'^(msgid|msgstr(?:\[0\])?) ((?:".*"\n?)+)', re.M)


def spacy_sentences(wheel: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            m = re.fullmatch(r"spacy/lang/(\w+)/examples\.py", name)
            if not m or m.group(1) not in LANGUAGES:
                continue
            tree = ast.parse(z.read(name).decode("utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "sentences" for t in node.targets
                ):
                    out[m.group(1)] += [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    return out


def django_sentences(wheel: Path) -> dict[str, list[str]]:
    locale_to_lang = {_DJANGO_LOCALE.get(lang, lang): lang for lang in LANGUAGES}
    out: dict[str, list[str]] = defaultdict(list)
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            m = re.search(r"/locale/([\w]+)/LC_MESSAGES/django\.po$", name)
            if not m or m.group(1) not in locale_to_lang:
                continue
            text = z.read(name).decode("utf-8")
            lang = locale_to_lang[m.group(1)]
            # English is Django's source language: its catalogue's messages are the msgids.
            field = "msgid" if lang == "en" else "msgstr"
            for entry in _PO_ENTRY.finditer(text):
                if not entry.group(1).startswith(field):
                    continue
                s = "".join(json.loads(part) for part in re.findall(r'".*"', entry.group(2)))
                if s and not _PLACEHOLDER.search(s):
                    out[lang].append(s)
    return out


def long_enough(text: str, lang: str) -> bool:
    """Sentences, not labels: 4 words or more (20 characters for unspaced scripts)."""
    return len(text) >= 20 if lang in _UNSPACED else len(text.split()) >= 4


def build(wheels: Path, per_language: int = 60, seed: int = 0) -> list[dict[str, str]]:
    spacy = spacy_sentences(next(wheels.glob("spacy-*.whl")))
    django = django_sentences(next(wheels.glob("[Dd]jango-*.whl")))
    rng = random.Random(seed)
    rows = []
    for lang in LANGUAGES:
        for source, pool in (("spacy", spacy[lang]), ("django", django[lang])):
            unique = sorted({s.strip() for s in pool if long_enough(s.strip(), lang)})
            rng.shuffle(unique)
            rows += [{"text": t, "lang": lang, "source": source} for t in unique[:per_language]]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("wheels", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--per-language", type=int, default=60)
    args = ap.parse_args()
    rows = build(args.wheels, args.per_language)
    args.output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} sentences -> {args.output}")


if __name__ == "__main__":
    main()
