"""A topic classifier over hashed word n-grams (scikit-learn to train, numpy to predict),
saved pickle-free through :mod:`l3_core.model_file`.

Features are scikit-learn's ``HashingVectorizer`` (stateless: its settings are the whole
vectoriser) and a multinomial logistic regression; the file holds the coefficients, the
intercepts, the label names and the vectoriser settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from l3_align.errors import AlignInputError
from l3_core.errors import DependencyError
from l3_core.model_file import ModelFile, load_model_file, save_model_file

KIND = "l3_align.topic_classifier"
VECTORIZER = {"n_features": 2**14, "ngram_range": [1, 2], "alternate_sign": False, "norm": "l2"}


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise DependencyError(
            "the topic classifier needs scikit-learn: pip install 'l3-align[quality]'"
        ) from None
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    return HashingVectorizer, LogisticRegression


def _vectorizer(settings: dict):
    hashing, _ = _sklearn()
    return hashing(**{**settings, "ngram_range": tuple(settings["ngram_range"])})


@dataclass(frozen=True)
class TopicClassifier:
    labels: tuple[str, ...]
    coef: np.ndarray  # [labels, features]
    intercept: np.ndarray  # [labels]
    vectorizer: dict

    @classmethod
    def train(
        cls, texts: Sequence[str], labels: Sequence[str], c: float = 10.0, seed: int = 0
    ) -> TopicClassifier:
        if len(texts) != len(labels) or len(set(labels)) < 2:
            raise AlignInputError(
                f"topic training needs one label per text and at least 2 topics "
                f"(got {len(texts)} texts, {len(labels)} labels, {len(set(labels))} topics)"
            )
        _, logistic = _sklearn()
        x = _vectorizer(VECTORIZER).transform(texts)
        clf = logistic(C=c, max_iter=1000, random_state=seed).fit(x, list(labels))
        coef, intercept = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: expand to two
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(tuple(clf.classes_), coef, intercept, dict(VECTORIZER))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """[texts, labels] topic probabilities."""
        logits = _vectorizer(self.vectorizer).transform(texts) @ self.coef.T + self.intercept
        logits = np.asarray(logits) - np.max(logits, axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.probabilities(texts).argmax(axis=1)]

    def save(self, path: str | os.PathLike[str]) -> None:
        meta = {"labels": list(self.labels), "vectorizer": self.vectorizer}
        arrays = {"coef": self.coef, "intercept": self.intercept}
        save_model_file(path, ModelFile(KIND, meta, arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TopicClassifier:
        mf = load_model_file(path, kind=KIND)
        return cls(
            tuple(mf.meta["labels"]),
            mf.array("coef", path),
            mf.array("intercept", path),
            mf.meta["vectorizer"],
        )
