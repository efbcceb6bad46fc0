from __future__ import annotations

import itertools

import numpy as np
import pytest

from l3_guard.errors import ModelFileError
from l3_guard.text_model import FeatureConfig, LinearTextModel, windows

TEXTS = ["the cat sat", "a cat purrs", "dogs bark loudly", "the dog runs", "cats and kittens", "dog walks"]


def _toy(kind: str) -> LinearTextModel:
    y = np.array([0, 0, 1, 1, 0, 1])
    targets = y if kind == "multiclass" else np.stack([y, 1 - y], axis=1)
    return LinearTextModel.fit(TEXTS, targets, ["dog", "cat"] if kind == "multilabel" else ["cat", "dog"],
                               kind, config=FeatureConfig(n_features=2**12), c=10.0)


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_save_load_round_trip_keeps_predictions(tmp_path, kind):
    m = _toy(kind)
    m.save(tmp_path / "m.npz")
    m2 = LinearTextModel.load(tmp_path / "m.npz")
    probe = ["a kitten", "big dog barking", "zzz"]
    np.testing.assert_allclose(m.predict_proba(probe), m2.predict_proba(probe), atol=2e-3)
    assert m2.labels == m.labels and m2.kind == kind


def test_fitted_model_separates_its_training_classes():
    p = _toy("multiclass").predict_proba(["cat", "dog"])
    assert p[0].argmax() == 0 and p[1].argmax() == 1
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_loading_garbage_names_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="bad.npz"):
        LinearTextModel.load(bad)


@pytest.mark.parametrize("n", [0, 5, 100, 2001, 10_000])
def test_windows_cover_every_character_and_overlap(n):
    text = ("word " * (n // 5 + 1))[:n]
    spans = windows(text, 100, 50)
    covered = np.zeros(n, bool)
    for a, b in spans:
        covered[a:b] = True
        assert b - a <= 100
    assert covered.all()
    for (a1, b1), (a2, _b2) in itertools.pairwise(spans):
        assert a1 < a2 < b1  # consecutive windows overlap


def test_windows_reject_bad_sizes():
    with pytest.raises(ValueError):
        windows("abc", 10, 20)


@pytest.mark.parametrize("n", [10, 300, 2500, 9000])
def test_multiscale_windows_cover_the_text_at_every_scale(n):
    m = _toy("multiclass")
    text = ("kitten " * (n // 7 + 1))[:n]
    probs, spans = m.predict_proba_windows(text, 400, scales=(1, 4))
    assert probs.shape == (len(spans), 2)
    covered = np.zeros(n, bool)
    for a, b in spans:
        covered[a:b] = True
    assert covered.all()
    if n <= 400:  # the whole text is one of the windows, scored exactly as predict_proba does
        np.testing.assert_allclose(probs[spans.index((0, n))], m.predict_proba([text])[0], atol=1e-6)


def test_window_scores_equal_scoring_the_window_text_when_chunks_split_at_spaces():
    m = _toy("multiclass")
    text = "cat " * 300 + "dog barks " * 5 + "cat " * 300
    probs, spans = m.predict_proba_windows(text, 400, scales=(1, 4))
    worst = int(probs[:, 1].argmax())
    a, b = spans[worst]
    assert "dog" in text[a:b]
    np.testing.assert_allclose(probs[worst], m.predict_proba([text[a:b]])[0], atol=0.02)
