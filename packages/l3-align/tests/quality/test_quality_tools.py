"""Data-quality tools: the pickle-free topic classifier predicts what scikit-learn predicts and
round-trips; intention counts; dedup keeps the best of each cosine cluster; score filtering
excludes with reasons."""

from __future__ import annotations

import numpy as np
import pytest

from l3_align.errors import AlignConfigError
from l3_align.quality.dedup import semantic_dedup
from l3_align.quality.difficulty import intention_counts
from l3_align.quality.score_filter import filter_by_score
from l3_align.quality.topics import VECTORIZER, TopicClassifier
from l3_core.errors import ModelFileError
from l3_core.jsonl import Exclusions

TEXTS = {
    "math": ["add the numbers", "sum of two integers", "multiply three by four", "divide evenly"],
    "code": ["write a python function", "fix this bug in code", "compile the program", "a loop"],
    "cooking": ["bake a cake", "boil the pasta", "a recipe for soup", "fry an egg in oil"],
}


def corpus():
    texts = [t for ts in TEXTS.values() for t in ts]
    labels = [k for k, ts in TEXTS.items() for _ in ts]
    return texts, labels


def test_classifier_matches_sklearn_and_round_trips(tmp_path) -> None:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = corpus()
    clf = TopicClassifier.train(texts, labels)
    vec = HashingVectorizer(**{**VECTORIZER, "ngram_range": (1, 2)})
    ref = LogisticRegression(C=10.0, max_iter=1000, random_state=0).fit(
        vec.transform(texts), labels
    )
    probe = ["sum of numbers", "python bug", "soup recipe", "bake code"]
    np.testing.assert_allclose(
        clf.probabilities(probe), ref.predict_proba(vec.transform(probe)), atol=1e-9
    )
    clf.save(tmp_path / "topics.npz")
    back = TopicClassifier.load(tmp_path / "topics.npz")
    assert back.predict(probe) == clf.predict(probe) == list(ref.predict(vec.transform(probe)))


def test_a_pickle_is_refused(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "x.npz").write_bytes((tmp_path / "x.npy").read_bytes())
    with pytest.raises(ModelFileError):
        TopicClassifier.load(tmp_path / "x.npz")


def test_intention_counts_grow_with_mixed_topics() -> None:
    clf = TopicClassifier.train(*corpus())
    counts = intention_counts(clf, ["sum of two integers", "bake a cake in python code"], 0.25)
    assert counts.tolist()[0] == 1 and counts.tolist()[1] >= 2


def test_dedup_keeps_the_best_per_cluster() -> None:
    e = np.array([[1, 0], [0.99, 0.05], [0, 1], [0.02, 1], [1, 1]], dtype=float)
    quality = np.array([0.5, 0.9, 0.3, 0.2, 0.1])
    difficulty = np.array([1, 1, 2, 2, 1])
    kept, owner = semantic_dedup(e, quality, difficulty, threshold=0.95)
    assert kept.tolist() == [1, 2, 4]
    assert owner.tolist() == [1, 1, 2, 2, 4]
    kept_all, _ = semantic_dedup(e, quality, difficulty, threshold=1.0 + 0)  # only exact copies
    assert len(kept_all) == 5
    with pytest.raises(AlignConfigError, match="dedup.threshold"):
        semantic_dedup(e, quality, difficulty, threshold=1.5)


def test_score_filter_excludes_with_reasons() -> None:
    ex = Exclusions()
    rows = [("f", 1, {"score": 0.9}), ("f", 2, {"score": 0.1}), ("f", 3, {"score": "x"})]
    assert [r["score"] for r in filter_by_score(rows, 0.5, ex)] == [0.9]
    assert [(b.line, b.reason) for b in ex.rows] == [
        (2, "score below 0.5: 0.1"),
        (3, "field 'score' is not a number: 'x'"),
    ]
