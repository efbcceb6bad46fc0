"""Apply a trained classifier (quality, code, math/reasoning, domain): the predicted label and
its probability become document metadata; optionally reject documents that score too low."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from l3_data.classifier import load_classifier
from l3_data.document import Document
from l3_data.errors import PipelineConfigError
from l3_data.steps.base import ChunkContext, Step, batches, register
from l3_data.steps.limits import FRACTION, POSITIVE, option_limits


@register("classify")
@dataclass(kw_only=True)
class Classify(Step):
    """Writes ``metadata[field]`` (the top label) and ``metadata[field + '_score']`` (the
    probability of ``positive_label`` if set, else of the top label). With ``min_score``,
    documents whose score is lower are rejected."""

    extra = "classify"
    path_fields = ("model",)
    limits = option_limits(min_score=FRACTION, batch_size=POSITIVE)

    model: str
    field: str = "quality"
    positive_label: str = ""
    min_score: float | None = None
    batch_size: int = 256

    def setup(self) -> None:
        self._clf = load_classifier(self.model)
        if self.positive_label and self.positive_label not in self._clf.labels:
            raise PipelineConfigError(
                f"classify.positive_label = {self.positive_label!r} is not "
                f"a label of {self.model} ({self._clf.labels})"
            )

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        pos = self._clf.labels.index(self.positive_label) if self.positive_label else None
        for batch in batches(docs, self.batch_size):
            probs = self._clf.predict_proba([d.text for d in batch])
            for doc, p in zip(batch, probs):
                top = int(p.argmax())
                score = float(p[pos] if pos is not None else p[top])
                doc.metadata[self.field] = self._clf.labels[top]
                doc.metadata[f"{self.field}_score"] = round(score, 4)
                self.stat(ctx, f"{self.field}:{self._clf.labels[top]}")
                if self.min_score is not None and score < self.min_score:
                    self.reject(ctx, doc, f"{self.field}_below_{self.min_score:g}")
                else:
                    yield doc
