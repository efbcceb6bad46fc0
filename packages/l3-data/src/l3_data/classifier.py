"""Model-based quality and domain classifiers: train fastText or scikit-learn models from
labelled examples a user provides, with a held-out evaluation report, and load them back.

Training data is JSONL with a text field and a label field. fastText models are saved as
``.bin``; scikit-learn ones (hashed word and character n-grams + logistic regression) as
``.joblib``; :func:`load_classifier` picks by extension.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from l3_data.errors import InputFormatError, ModelFileError

log = logging.getLogger(__name__)


class Classifier(Protocol):
    labels: list[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), len(labels)]`` probabilities."""


class FastTextClassifier:
    def __init__(self, path: str | Path) -> None:
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None
        try:
            self.model = fasttext.load_model(str(path))
        except ValueError as e:
            raise ModelFileError(f"{path}: not a fastText model: {e}") from None
        self.labels = sorted(x.removeprefix("__label__") for x in self.model.get_labels())

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)))
        if not texts:
            return out
        col = {lab: i for i, lab in enumerate(self.labels)}
        labels, probs = self.model.predict([" ".join(t.split()) for t in texts], k=-1)
        for r, (labs, ps) in enumerate(zip(labels, probs)):
            for lab, p in zip(labs, ps):
                out[r, col[lab.removeprefix("__label__")]] = p
        return out


class SklearnClassifier:
    def __init__(self, path: str | Path) -> None:
        import joblib

        try:
            self.pipeline = joblib.load(path)
        except Exception as e:  # joblib raises many kinds for a file that is not its own
            raise ModelFileError(f"{path}: not a scikit-learn model file: {e}") from None
        self.labels = [str(c) for c in self.pipeline.classes_]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self.pipeline.predict_proba(list(texts))


def load_classifier(path: str | Path) -> Classifier:
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: classifier model not found")
    return SklearnClassifier(p) if p.suffix == ".joblib" else FastTextClassifier(p)


def read_labelled(path: str | Path, text_key: str = "text",
                  label_key: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels from a JSONL file; a malformed row is an error naming its line."""
    texts, labels = [], []
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"{p}: labelled examples not found")
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row[text_key], row[label_key]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputFormatError(f"{p}:{n}: expected JSON with {text_key!r} and "
                                       f"{label_key!r}: {e}") from None
            texts.append(str(text))
            labels.append(str(label))
    if len(set(labels)) < 2:
        raise InputFormatError(f"{p}: need at least two labels, found {sorted(set(labels))}")
    return texts, labels


def _sklearn_pipeline(seed: int, buckets: int):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    n_features = 1 << max(10, buckets.bit_length() - 1)
    features = FeatureUnion([
        ("words", HashingVectorizer(ngram_range=(1, 2), n_features=n_features, alternate_sign=False)),
        ("chars", HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=n_features,
                                    alternate_sign=False)),
    ])
    return make_pipeline(features, TfidfTransformer(sublinear_tf=True),
                         LogisticRegression(max_iter=2000, C=4.0, random_state=seed))


def _train_fasttext(path: str, out: str, *, epochs: int, buckets: int, seed: int) -> None:
    """fastText supervised training in a fresh interpreter, saved to ``out``.

    fasttext-numpy2 0.10.4 diverges to NaN depending on the state of the process's heap (seen
    after a joblib dump in the same process, with small ``bucket`` values), so it trains in a
    spawned process, where the result depends only on the data and the seed.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(_train_fasttext_here, path, out, epochs=epochs, buckets=buckets,
                    seed=seed).result()


def _train_fasttext_here(path: str, out: str, *, epochs: int, buckets: int, seed: int) -> None:
    """Its SGD can diverge on small or easy sets, so a diverged run is retried with half the
    learning rate."""
    import fasttext

    lr = 0.2
    for _ in range(4):
        try:
            model = fasttext.train_supervised(path, epoch=epochs, wordNgrams=2, lr=lr, minn=2,
                                              maxn=4, dim=50, seed=seed, thread=1,
                                              bucket=buckets, verbose=0)
            model.save_model(out)
            return
        except RuntimeError as e:
            if "NaN" not in str(e):
                raise
            log.warning("fastText training diverged at lr %g; retrying at %g", lr, lr / 2)
            lr /= 2
    raise RuntimeError(f"fastText training on {path} diverged even at lr {lr * 2:g}")


def train_classifier(texts: Sequence[str], labels: Sequence[str], out: str | Path, *,
                     kind: str = "fasttext", test_fraction: float = 0.2, seed: int = 0,
                     epochs: int = 25, buckets: int = 2_000_000) -> dict[str, Any]:
    """Train on a random ``1 - test_fraction`` split, evaluate on the rest, then save the model
    trained on the training split to ``out``. Returns the held-out report.

    ``buckets`` sizes the hashed n-gram tables of both kinds (fastText's ``bucket``; the
    scikit-learn hashing vectorisers round it to a power of two)."""
    from sklearn.metrics import accuracy_score, classification_report

    from l3_core.io import atomic_path

    if kind not in ("fasttext", "sklearn"):
        raise ValueError(f"kind = {kind!r}: expected 'fasttext' or 'sklearn'")
    idx = list(range(len(texts)))
    random.Random(seed).shuffle(idx)
    n_test = max(1, int(len(idx) * test_fraction))
    test, train = idx[:n_test], idx[n_test:]
    out = Path(out)
    with atomic_path(out) as tmp:
        if kind == "fasttext":
            with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8",
                                             delete=False) as f:
                for i in train:
                    f.write(f"__label__{labels[i].replace(' ', '_')} {' '.join(texts[i].split())}\n")
            try:
                _train_fasttext(f.name, str(tmp), epochs=epochs, buckets=buckets, seed=seed)
            finally:
                Path(f.name).unlink()
        else:
            import joblib

            pipe = _sklearn_pipeline(seed, buckets).fit([texts[i] for i in train], [labels[i] for i in train])
            joblib.dump(pipe, tmp)
    clf = load_classifier(out)
    probs = clf.predict_proba([texts[i] for i in test])
    pred = [clf.labels[j] for j in probs.argmax(1)]
    truth = [labels[i].replace(" ", "_") if kind == "fasttext" else labels[i] for i in test]
    return {
        "kind": kind,
        "model": str(out),
        "n_train": len(train),
        "n_test": len(test),
        "accuracy": float(accuracy_score(truth, pred)),
        "per_label": classification_report(truth, pred, output_dict=True, zero_division=0),
    }
