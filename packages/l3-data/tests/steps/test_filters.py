from __future__ import annotations

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.filters import (
    C4Quality,
    DirtyWords,
    GopherQuality,
    GopherRepetition,
    LengthFilter,
    duplicated_ngram_fraction,
    top_ngram_fraction,
)


def _verdicts(step, docs):
    step.label = f"01.{step.type_name}"
    step.setup()
    ctx = ChunkContext(unit="u", workdir=None)
    kept = list(step.run(docs, ctx))
    return kept, {e["id"]: e["reason"] for e in ctx.excluded}


def test_duplicated_ngram_fraction_closed_form():
    # "a b c" then "a b c" again: with n=3 the second occurrence (3 words of 1 char) is a
    # repeat: 3 of 7 word characters ("a b c x a b c").
    ws = ["a", "b", "c", "x", "a", "b", "c"]
    assert duplicated_ngram_fraction(ws, 3) == 3 / 7
    # overlapping repeats count each character once: "a a a a" with n=2 -> positions 1..3
    assert duplicated_ngram_fraction(["a"] * 4, 2) == 3 / 4
    assert duplicated_ngram_fraction(["no", "repeats", "in", "this", "one"], 2) == 0.0


def test_top_ngram_fraction_closed_form():
    ws = ["ab", "cd", "ab", "cd", "ef"]  # top 2-gram "ab cd" x2 = 8 chars of 10
    assert top_ngram_fraction(ws, 2) == 8 / 10
    assert top_ngram_fraction(["all", "different", "words", "here"], 2) == 0.0


def test_gopher_quality_rejects_short_symbolic_and_alpha_poor_documents(rng, prose):
    good = Document(prose(rng, 120), "good")
    short = Document("The cat sat on the mat with a hat.", "short")
    hashes = Document(" ".join(["#tag the and"] * 40), "hashes")
    numbers = Document(" ".join(["1234 5678 9012 3456 the of and"] * 20), "numbers")
    kept, why = _verdicts(GopherQuality(), [good, short, hashes, numbers])
    assert [d.id for d in kept] == ["good"]
    assert why == {
        "short": "gopher_quality:gopher_short_doc",
        "hashes": "gopher_quality:gopher_too_many_symbols",
        "numbers": "gopher_quality:gopher_below_alpha_threshold",
    }


def test_stop_word_rule_applies_only_to_languages_with_a_list(rng):
    text = " ".join(f"palabra{i}" for i in range(80))
    kept, _ = _verdicts(
        GopherQuality(),
        [
            Document(text, "es", metadata={"lang": "es"}),
            Document(text, "en", metadata={"lang": "en"}),
        ],
    )
    assert [d.id for d in kept] == ["es"]


def test_gopher_repetition_rejects_logs_and_keeps_prose(rng, prose):
    log = "\n".join(f"ERROR connection refused while contacting host {i % 3}" for i in range(60))
    kept, why = _verdicts(
        GopherRepetition(), [Document(prose(rng, 300), "prose"), Document(log, "log")]
    )
    assert [d.id for d in kept] == ["prose"]
    assert why["log"].startswith("gopher_repetition:")


def test_filter_limited_to_languages_passes_other_languages():
    doc = Document("x", "d", metadata={"lang": "fr"})
    kept, _ = _verdicts(LengthFilter(min_chars=10, languages=["en"]), [doc])
    assert kept == [doc]
    kept, why = _verdicts(LengthFilter(min_chars=10), [doc])
    assert kept == [] and why == {"d": "length_filter:too_short_chars"}


def test_c4_drops_bad_lines_and_rejects_curly_brackets(rng):
    lines = [f"This is a proper sentence number {i} with an ending." for i in range(6)]
    text = "\n".join(
        [
            *lines,
            "Click here",
            "We use cookies to improve your experience.",
            "Enable javascript to view this site.",
        ]
    )
    kept, why = _verdicts(
        C4Quality(), [Document(text, "page"), Document(text + "\nfunction() { return 1; }", "code")]
    )
    assert [d.text for d in kept] == ["\n".join(lines)]
    assert why == {"code": "c4_quality:curly_bracket"}


def test_dirty_words_ratio_with_builtin_and_custom_list(tmp_path, rng, prose):
    clean = Document(prose(rng, 100), "clean", metadata={"lang": "en"})
    dirty = Document(prose(rng, 90) + " porn xxx porn", "dirty", metadata={"lang": "en"})
    kept, why = _verdicts(DirtyWords(), [clean, dirty])
    assert [d.id for d in kept] == ["clean"] and dirty.metadata["dirty_words"] == 3
    words = tmp_path / "de.txt"
    words.write_text("# German\nschimpfwort\n")
    de = Document("ein schimpfwort " * 3, "de", metadata={"lang": "de"})
    kept, why = _verdicts(DirtyWords(word_lists={"de": str(words)}), [de])
    assert why == {"de": "dirty_words:dirty_word_ratio"}
