"""A hashed n-gram TF-IDF + logistic-regression classifier, stored without pickle.

Trained with scikit-learn (hashed word 1-2-grams and character 2-4-grams, sublinear TF-IDF,
logistic regression); saved through :mod:`l3_core.model_file` as the arrays that define it
(IDF weights, coefficients, intercepts) and JSON settings (the labels, the hashing
vectorisers' parameters). Loading rebuilds the stateless vectorisers from their settings and
does the rest in numpy, so a model file can hold wrong numbers but never runs code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.model_file import ModelFile, load_model_file, save_model_file
from l3_data.errors import ModelFileError

KIND = "l3_data.hashed_tfidf_logistic"
# The HashingVectorizer parameters a model file may set (all plain values).
_VECTORIZER_KEYS = (
    "analyzer",
    "ngram_range",
    "n_features",
    "alternate_sign",
    "norm",
    "lowercase",
    "binary",
    "token_pattern",
    "strip_accents",
)


@dataclass
class HashedLinearClassifier:
    labels: list[str]
    vectorizers: list[dict[str, Any]]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    sublinear_tf: bool = True
    norm: str | None = "l2"

    def features(self, texts: Sequence[str]) -> Any:
        """The ``[len(texts), n_features]`` sparse TF-IDF matrix of ``texts``."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.preprocessing import normalize

        blocks = [
            HashingVectorizer(**_vectorizer_kwargs(v)).transform(list(texts))
            for v in self.vectorizers
        ]
        x = sp.hstack(blocks, format="csr", dtype=np.float64)
        if self.sublinear_tf:
            x.data = np.log(x.data) + 1.0
        x.data *= self.idf[x.indices]
        return normalize(x, norm=self.norm, copy=False) if self.norm else x

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), len(labels)]`` probabilities."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        scores = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        if self.coef.shape[0] == 1:  # two labels: one logistic score for the second
            p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: str | Path) -> None:
        meta = {
            "labels": self.labels,
            "vectorizers": self.vectorizers,
            "sublinear_tf": self.sublinear_tf,
            "norm": self.norm,
        }
        save_model_file(
            path,
            ModelFile(
                KIND, meta, {"idf": self.idf, "coef": self.coef, "intercept": self.intercept}
            ),
        )

    @classmethod
    def load(cls, path: str | Path) -> HashedLinearClassifier:
        mf = load_model_file(path, kind=KIND)
        try:
            clf = cls(
                labels=[str(x) for x in mf.meta["labels"]],
                vectorizers=[dict(v) for v in mf.meta["vectorizers"]],
                idf=mf.array("idf", path).astype(np.float64),
                coef=mf.array("coef", path).astype(np.float64),
                intercept=mf.array("intercept", path).astype(np.float64),
                sublinear_tf=bool(mf.meta.get("sublinear_tf", True)),
                norm=mf.meta.get("norm", "l2"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: malformed classifier settings ({e})") from None
        clf._check(path)
        return clf

    def _check(self, path: str | Path) -> None:
        for v in self.vectorizers:
            unknown = sorted(set(v) - set(_VECTORIZER_KEYS))
            if unknown:
                raise ModelFileError(f"{path}: unknown vectoriser setting {unknown[0]!r}")
        n = sum(int(v["n_features"]) for v in self.vectorizers)
        rows = 1 if len(self.labels) == 2 else len(self.labels)
        want = {"idf": (n,), "coef": (rows, n), "intercept": (rows,)}
        for name, shape in want.items():
            if getattr(self, name).shape != shape:
                raise ModelFileError(
                    f"{path}: array {name!r} has shape "
                    f"{getattr(self, name).shape}, expected {shape} for "
                    f"{len(self.labels)} labels and {n} features"
                )


def _vectorizer_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    out["ngram_range"] = tuple(out["ngram_range"])
    return out


def fit_hashed_linear(
    texts: Sequence[str], labels: Sequence[str], *, seed: int, buckets: int
) -> HashedLinearClassifier:
    """Fit the classifier; ``buckets`` (rounded down to a power of two, at least 1024) is the
    number of hashed features of each of the word and character blocks."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    n_features = 1 << max(10, buckets.bit_length() - 1)
    vectorizers = [
        {"analyzer": "word", "ngram_range": [1, 2], "n_features": n_features},
        {"analyzer": "char_wb", "ngram_range": [2, 4], "n_features": n_features},
    ]
    for v in vectorizers:  # every setting explicit: a later scikit-learn's defaults may differ
        defaults = HashingVectorizer().get_params()
        v.update({k: defaults[k] for k in _VECTORIZER_KEYS if k not in v}, alternate_sign=False)
    x = sp.hstack(
        [HashingVectorizer(**_vectorizer_kwargs(v)).transform(list(texts)) for v in vectorizers],
        format="csr",
    )
    tfidf = TfidfTransformer(sublinear_tf=True).fit(x)
    model = LogisticRegression(max_iter=2000, C=4.0, random_state=seed)
    model.fit(tfidf.transform(x), list(labels))
    return HashedLinearClassifier(
        labels=[str(c) for c in model.classes_],
        vectorizers=vectorizers,
        idf=tfidf.idf_.astype(np.float64),
        coef=model.coef_,
        intercept=model.intercept_,
        sublinear_tf=True,
        norm="l2",
    )
