from __future__ import annotations

import json

import pytest

from l3_data.classifier import load_classifier, read_labelled, train_classifier
from l3_data.document import Document
from l3_data.errors import InputFormatError
from l3_data.steps.base import ChunkContext
from l3_data.steps.classify import Classify


def _examples(rng, prose, n=150):
    texts, labels = [], []
    for i in range(n):
        if i % 2:
            texts.append("\n".join(f"def f{k}(x):\n    return x * {k} + {rng.randint(0, 9)}"
                                   for k in range(rng.randint(2, 6))))
            labels.append("code")
        else:
            texts.append(prose(rng, rng.randint(30, 80)))
            labels.append("prose")
    return texts, labels


@pytest.mark.parametrize("kind,suffix", [("fasttext", ".bin"), ("sklearn", ".npz")])
def test_trained_classifier_separates_held_out_examples(tmp_path, rng, prose, kind, suffix):
    texts, labels = _examples(rng, prose)
    report = train_classifier(texts, labels, tmp_path / f"m{suffix}", kind=kind, seed=1,
                              buckets=50_000)
    assert report["n_test"] == 30 and report["n_train"] == 120
    assert report["accuracy"] >= 0.9
    assert set(report["per_label"]) >= {"code", "prose"}
    clf = load_classifier(tmp_path / f"m{suffix}")
    assert clf.labels == ["code", "prose"]
    fresh, truth = _examples(rng, prose, n=40)
    probs = clf.predict_proba(fresh)
    assert probs.shape == (40, 2)
    assert sum(clf.labels[j] == t for j, t in zip(probs.argmax(1), truth)) >= 36


def test_classify_step_writes_scores_and_rejects_below_min_score(tmp_path, rng, prose):
    texts, labels = _examples(rng, prose)
    train_classifier(texts, labels, tmp_path / "m.npz", kind="sklearn", buckets=50_000)
    step = Classify(model=str(tmp_path / "m.npz"), field="kind", positive_label="prose",
                    min_score=0.5)
    step.label = "01.classify"
    step.setup()
    ctx = ChunkContext(unit="u", workdir=tmp_path)
    docs = [Document(prose(rng, 60), "p"), Document("def f2(x):\n    return x * 2 + 5\ndef f3(x):\n    return x * 3 + 1", "c")]
    kept = list(step.run(docs, ctx))
    assert [d.id for d in kept] == ["p"]
    assert kept[0].metadata["kind"] == "prose" and kept[0].metadata["kind_score"] > 0.5
    assert ctx.excluded[0]["reason"] == "classify:kind_below_0.5"


def test_labelled_file_errors_name_the_line(tmp_path):
    p = tmp_path / "ex.jsonl"
    p.write_text(json.dumps({"text": "a", "label": "x"}) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(InputFormatError, match=r"ex.jsonl:2"):
        read_labelled(p)
