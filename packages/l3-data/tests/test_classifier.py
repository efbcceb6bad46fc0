from __future__ import annotations

import json

import numpy as np
import pytest

from l3_core.errors import ModelFileError as CoreModelFileError
from l3_core.model_file import load_model_file, save_model_file
from l3_data.classifier import load_classifier, read_labelled, train_classifier
from l3_data.document import Document
from l3_data.errors import InputFormatError, ModelFileError
from l3_data.linear_classifier import HashedLinearClassifier, fit_hashed_linear
from l3_data.steps.base import ChunkContext
from l3_data.steps.classify import Classify


def _examples(rng, prose, n=150):
    texts, labels = [], []
    for i in range(n):
        if i % 2:
            texts.append(
                "\n".join(
                    f"def f{k}(x):\n    return x * {k} + {rng.randint(0, 9)}"
                    for k in range(rng.randint(2, 6))
                )
            )
            labels.append("code")
        else:
            texts.append(prose(rng, rng.randint(30, 80)))
            labels.append("prose")
    return texts, labels


@pytest.mark.parametrize("kind,suffix", [("fasttext", ".bin"), ("sklearn", ".npz")])
def test_trained_classifier_separates_held_out_examples(tmp_path, rng, prose, kind, suffix):
    texts, labels = _examples(rng, prose)
    report = train_classifier(
        texts, labels, tmp_path / f"m{suffix}", kind=kind, seed=1, buckets=50_000
    )
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
    step = Classify(
        model=str(tmp_path / "m.npz"), field="kind", positive_label="prose", min_score=0.5
    )
    step.label = "01.classify"
    step.setup()
    ctx = ChunkContext(unit="u", workdir=tmp_path)
    docs = [
        Document(prose(rng, 60), "p"),
        Document("def f2(x):\n    return x * 2 + 5\ndef f3(x):\n    return x * 3 + 1", "c"),
    ]
    kept = list(step.run(docs, ctx))
    assert [d.id for d in kept] == ["p"]
    assert kept[0].metadata["kind"] == "prose" and kept[0].metadata["kind_score"] > 0.5
    assert ctx.excluded[0]["reason"] == "classify:kind_below_0.5"


def test_labelled_file_errors_name_the_line(tmp_path):
    p = tmp_path / "ex.jsonl"
    p.write_text(json.dumps({"text": "a", "label": "x"}) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(InputFormatError, match=r"ex.jsonl:2"):
        read_labelled(p)


def _sklearn_reference(texts, labels, seed, n_features):
    """The scikit-learn pipeline the model file stands for, fitted the ordinary way."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            (
                "words",
                HashingVectorizer(ngram_range=(1, 2), n_features=n_features, alternate_sign=False),
            ),
            (
                "chars",
                HashingVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 4),
                    n_features=n_features,
                    alternate_sign=False,
                ),
            ),
        ]
    )
    return make_pipeline(
        features,
        TfidfTransformer(sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=4.0, random_state=seed),
    ).fit(texts, labels)


@pytest.mark.parametrize("n_labels", [2, 3])
def test_saved_linear_classifier_gives_the_fitted_pipelines_probabilities(
    tmp_path, rng, prose, n_labels
):
    texts, labels = _examples(rng, prose, n=90)
    if n_labels == 3:
        labels = [lab if i % 3 else "other" for i, lab in enumerate(labels)]
    fit_hashed_linear(texts, labels, seed=3, buckets=5000).save(tmp_path / "m.npz")
    loaded = load_classifier(tmp_path / "m.npz")
    reference = _sklearn_reference(texts, labels, seed=3, n_features=4096)
    fresh, _ = _examples(rng, prose, n=20)
    assert loaded.labels == [str(c) for c in reference.classes_]
    np.testing.assert_allclose(
        loaded.predict_proba(fresh), reference.predict_proba(fresh), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("suffix", [".joblib", ".pkl"])
def test_pickle_model_files_are_refused_without_being_read(tmp_path, rng, prose, suffix):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(b"\x80\x04crashes-if-unpickled")
    with pytest.raises(ModelFileError, match="pickles, which run code"):
        load_classifier(path)
    texts, labels = _examples(rng, prose, n=20)
    with pytest.raises(ModelFileError, match="pickles"):
        train_classifier(texts, labels, tmp_path / f"new{suffix}", kind="sklearn")
    assert not (tmp_path / f"new{suffix}").exists()


def test_model_file_with_wrong_shapes_or_kind_is_a_model_file_error(tmp_path, rng, prose):
    texts, labels = _examples(rng, prose, n=40)
    fit_hashed_linear(texts, labels, seed=0, buckets=1024).save(tmp_path / "m.npz")
    mf = load_model_file(tmp_path / "m.npz")
    mf.arrays["coef"] = mf.arrays["coef"][:, :100]
    save_model_file(tmp_path / "bad.npz", mf)
    with pytest.raises(ModelFileError, match="array 'coef' has shape"):
        HashedLinearClassifier.load(tmp_path / "bad.npz")
    mf.kind = "something_else"
    save_model_file(tmp_path / "other.npz", mf)
    with pytest.raises(CoreModelFileError, match="expected 'l3_data.hashed_tfidf_logistic'"):
        load_classifier(tmp_path / "other.npz")
