"""Word error rate in closed form; task prompts; transcript normalisation."""

from __future__ import annotations

import pytest

from l3_speech.asr.data import normalize_text
from l3_speech.asr.wer import edit_distance, word_error_rate
from l3_speech.errors import SpeechConfigError
from l3_speech.prompts import system_prompt


def test_wer_counts_substitutions_insertions_and_deletions_over_reference_words() -> None:
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert word_error_rate(
        ["one two three", "four"], ["one three", "four five six"]
    ) == pytest.approx(3 / 4)
    assert word_error_rate(["one"], ["one"]) == 0.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])


def test_system_prompts_select_the_task() -> None:
    assert system_prompt("asr") == "Repeat after me in English:"
    assert system_prompt("ast", "French") == "Translate the following sentence into French:"
    with pytest.raises(SpeechConfigError, match="unknown task 'sing'"):
        system_prompt("sing")


def test_transcripts_are_compared_as_lower_case_words() -> None:
    assert normalize_text("  Three, ONE four!  ") == "three one four"
