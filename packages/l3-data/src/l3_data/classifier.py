"""Model-based quality and domain classifiers: train fastText or scikit-learn models from
labelled examples a user provides, with a held-out evaluation report, and load them back.

Training data is JSONL with a text field and a label field. fastText models are saved in
fastText's own ``.bin`` format (``.ftz`` when quantised); scikit-learn ones (hashed word and
character n-grams, TF-IDF, logistic regression) as an l3 model file (``.npz``: arrays and
JSON, :mod:`l3_data.linear_classifier`). :func:`load_classifier` picks by extension. No format
read here runs code: pickle-based files (``.joblib``, ``.pkl``) are refused.
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from l3_core.jsonl import iter_jsonl
from l3_data.errors import InputFormatError, ModelFileError
from l3_data.linear_classifier import HashedLinearClassifier, fit_hashed_linear

log = logging.getLogger(__name__)

# Suffixes of files that unpickle when loaded, so loading one can run any code in it.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


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


# model file suffix -> (training kind, loader)
FORMATS: dict[str, tuple[str, Callable[[Path], Classifier]]] = {
    ".bin": ("fasttext", FastTextClassifier),
    ".ftz": ("fasttext", FastTextClassifier),
    ".npz": ("sklearn", HashedLinearClassifier.load),
}


def kind_for_path(path: str | Path) -> str:
    """The classifier kind a model file of this name holds (``fasttext`` or ``sklearn``)."""
    p = Path(path)
    if p.suffix in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"{p}: {p.suffix} files are pickles, which run code when loaded; l3-data does not "
            "read them. Retrain with `l3-data train-classifier EXAMPLES.jsonl MODEL.npz` "
            "(scikit-learn, saved as arrays and JSON) or MODEL.bin (fastText)"
        )
    if p.suffix not in FORMATS:
        raise ModelFileError(
            f"{p}: unknown classifier file type {p.suffix!r}; expected one of {', '.join(FORMATS)}"
        )
    return FORMATS[p.suffix][0]


def load_classifier(path: str | Path) -> Classifier:
    p = Path(path)
    kind_for_path(p)  # refuses pickles and unknown types before touching the file
    if not p.is_file():
        raise ModelFileError(f"{p}: classifier model not found")
    return FORMATS[p.suffix][1](p)


def read_labelled(
    path: str | Path, text_key: str = "text", label_key: str = "label"
) -> tuple[list[str], list[str]]:
    """Texts and labels from a JSONL file; a malformed row is an error naming its line."""
    texts, labels = [], []
    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"{p}: labelled examples not found")
    for line, row in iter_jsonl(p):
        text, label = row.get(text_key), row.get(label_key)
        if text is None or label is None:
            raise InputFormatError(
                f"{p}:{line}: expected JSON with {text_key!r} and "
                f"{label_key!r}; the row has {sorted(row)}"
            )
        texts.append(str(text))
        labels.append(str(label))
    if len(set(labels)) < 2:
        raise InputFormatError(f"{p}: need at least two labels, found {sorted(set(labels))}")
    return texts, labels


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    out: str | Path,
    *,
    kind: str = "",
    test_fraction: float = 0.2,
    seed: int = 0,
    epochs: int = 25,
    buckets: int = 2_000_000,
) -> dict[str, Any]:
    """Train on a random ``1 - test_fraction`` split, evaluate on the rest, then save the model
    trained on the training split to ``out``. Returns the held-out report.

    ``kind`` (``fasttext`` or ``sklearn``) defaults to the one ``out``'s extension holds.
    ``buckets`` sizes the hashed n-gram tables of both kinds (fastText's ``bucket``; the
    scikit-learn hashing vectorisers round it to a power of two)."""
    from sklearn.metrics import accuracy_score, classification_report

    from l3_core.io import atomic_path

    out = Path(out)
    stored = kind_for_path(out)
    kind = kind or stored
    if kind != stored:
        raise ModelFileError(
            f"{out}: kind {kind!r} cannot be saved under this name, which "
            f"holds a {stored!r} model ({', '.join(FORMATS)})"
        )
    idx = list(range(len(texts)))
    random.Random(seed).shuffle(idx)
    n_test = max(1, int(len(idx) * test_fraction))
    test, train = idx[:n_test], idx[n_test:]
    with atomic_path(out) as tmp:
        if kind == "fasttext":
            _train_fasttext_file(
                tmp,
                [texts[i] for i in train],
                [labels[i] for i in train],
                epochs=epochs,
                buckets=buckets,
                seed=seed,
            )
        else:
            fit_hashed_linear(
                [texts[i] for i in train], [labels[i] for i in train], seed=seed, buckets=buckets
            ).save(tmp)
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


def _train_fasttext_file(
    out: Path, texts: list[str], labels: list[str], *, epochs: int, buckets: int, seed: int
) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        for text, label in zip(texts, labels):
            f.write(f"__label__{label.replace(' ', '_')} {' '.join(text.split())}\n")
    try:
        _train_fasttext(f.name, str(out), epochs=epochs, buckets=buckets, seed=seed)
    finally:
        Path(f.name).unlink()


def _train_fasttext(path: str, out: str, *, epochs: int, buckets: int, seed: int) -> None:
    """fastText supervised training in a fresh interpreter, saved to ``out``.

    fasttext-numpy2 0.10.4 diverges to NaN depending on the state of the process's heap (seen
    after other work in the same process, with small ``bucket`` values), so it trains in a
    spawned process, where the result depends only on the data and the seed.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(
            _train_fasttext_here, path, out, epochs=epochs, buckets=buckets, seed=seed
        ).result()


def _train_fasttext_here(path: str, out: str, *, epochs: int, buckets: int, seed: int) -> None:
    """Its SGD can diverge on small or easy sets, so a diverged run is retried with half the
    learning rate."""
    import fasttext

    lr = 0.2
    for _ in range(4):
        try:
            model = fasttext.train_supervised(
                path,
                epoch=epochs,
                wordNgrams=2,
                lr=lr,
                minn=2,
                maxn=4,
                dim=50,
                seed=seed,
                thread=1,
                bucket=buckets,
                verbose=0,
            )
            model.save_model(out)
            return
        except RuntimeError as e:
            if "NaN" not in str(e):
                raise
            log.warning("fastText training diverged at lr %g; retrying at %g", lr, lr / 2)
            lr /= 2
    raise RuntimeError(f"fastText training on {path} diverged even at lr {lr * 2:g}")
