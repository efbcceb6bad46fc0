from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from l3_core.errors import ModelFileError as CoreModelFileError
from l3_core.model_file import ModelFile, load_model_file, save_model_file
from l3_guard.embedded import shipped_model_path
from l3_guard.errors import ModelFileError
from l3_guard.text_model import MODEL_KIND, FeatureConfig, LinearTextModel, windows

TEXTS = [
    "the cat sat",
    "a cat purrs",
    "dogs bark loudly",
    "the dog runs",
    "cats and kittens",
    "dog walks",
]


def _toy(kind: str) -> LinearTextModel:
    y = np.array([0, 0, 1, 1, 0, 1])
    targets = y if kind == "multiclass" else np.stack([y, 1 - y], axis=1)
    return LinearTextModel.fit(
        TEXTS,
        targets,
        ["dog", "cat"] if kind == "multilabel" else ["cat", "dog"],
        kind,
        config=FeatureConfig(n_features=2**12),
        c=10.0,
    )


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
        np.testing.assert_allclose(
            probs[spans.index((0, n))], m.predict_proba([text])[0], atol=1e-6
        )


def test_window_scores_equal_scoring_the_window_text_when_chunks_split_at_spaces():
    m = _toy("multiclass")
    text = "cat " * 300 + "dog barks " * 5 + "cat " * 300
    probs, spans = m.predict_proba_windows(text, 400, scales=(1, 4))
    worst = int(probs[:, 1].argmax())
    a, b = spans[worst]
    assert "dog" in text[a:b]
    np.testing.assert_allclose(probs[worst], m.predict_proba([text[a:b]])[0], atol=0.02)


SCORES = Path(__file__).parent / "data" / "shipped_model_scores.json"


@pytest.mark.parametrize("name", ["moderation.npz", "prompt_guard.npz"])
def test_shipped_models_give_the_scores_recorded_before_their_conversion(name):
    # Recorded with the loader of the old npz layout, before the files became l3 model files.
    ref = json.loads(SCORES.read_text(encoding="utf-8"))
    m = LinearTextModel.load(shipped_model_path(name))
    assert m.labels == ref[name]["labels"]
    np.testing.assert_allclose(
        m.predict_proba(ref["probes"]), ref[name]["proba"], rtol=1e-12, atol=0
    )
    probs, spans = m.predict_proba_windows(ref["long"], 2000)
    assert [list(s) for s in spans] == ref[name]["long_spans"]
    np.testing.assert_allclose(probs, ref[name]["long_windows"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["moderation.npz", "prompt_guard.npz"])
def test_a_shipped_model_saved_again_is_the_same_model(tmp_path, name):
    src = shipped_model_path(name)
    m = LinearTextModel.load(src)
    m.save(tmp_path / name)
    again = load_model_file(tmp_path / name, kind=MODEL_KIND)
    shipped = load_model_file(src, kind=MODEL_KIND)
    assert again.meta == shipped.meta and sorted(again.arrays) == sorted(shipped.arrays)
    for key, a in shipped.arrays.items():
        assert again.arrays[key].dtype == a.dtype and np.array_equal(again.arrays[key], a), key
    ref = json.loads(SCORES.read_text(encoding="utf-8"))
    np.testing.assert_array_equal(
        LinearTextModel.load(tmp_path / name).predict_proba(ref["probes"]),
        m.predict_proba(ref["probes"]),
    )


def test_a_file_in_the_old_layout_or_of_another_kind_is_a_model_file_error(tmp_path):
    old = tmp_path / "old.npz"
    np.savez(old, meta=np.frombuffer(b'{"format": "l3-guard-hashed-linear/1"}', dtype=np.uint8))
    with pytest.raises(ModelFileError, match=r"old\.npz: not an l3 model file"):
        LinearTextModel.load(old)
    other = tmp_path / "other.npz"
    save_model_file(other, ModelFile("l3_data.quality", {}, {"w": np.zeros(3)}))
    with pytest.raises(ModelFileError, match=r"other\.npz: holds a 'l3_data.quality' model"):
        LinearTextModel.load(other)
    assert issubclass(ModelFileError, CoreModelFileError)  # exit code 5 through l3-core


def test_a_model_file_missing_an_array_names_it(tmp_path):
    m = _toy("multiclass")
    m.save(tmp_path / "m.npz")
    mf = load_model_file(tmp_path / "m.npz")
    del mf.arrays["intercept"]
    save_model_file(tmp_path / "m.npz", mf)
    with pytest.raises(ModelFileError, match="intercept"):
        LinearTextModel.load(tmp_path / "m.npz")
