"""Written -> spoken pairs; the stream holds back at most one token."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_speech.text.normalize import LOOKAHEAD_TOKENS, normalize, normalize_stream
from l3_speech.text.numbers import cardinal, ordinal, year

PAIRS = [
    ("I have 3 cats", "i have three cats"),
    ("It costs $5.50", "it costs five dollars fifty cents"),
    ("only $1 today", "only one dollar today"),
    ("£2.01 change", "two pounds one penny change"),
    ("€1,250 rent", "one thousand two hundred fifty euros rent"),
    ("run 5 km now", "run five kilometers now"),
    ("1 kg of flour", "one kilogram of flour"),
    ("2.5kg bag", "two point five kilograms bag"),
    ("battery at 80%", "battery at eighty percent"),
    ("born on 2024-05-01.", "born on may first twenty twenty four"),
    ("due 1999-12-31", "due december thirty first nineteen ninety nine"),
    ("the 22nd floor", "the twenty second floor"),
    ("the 3rd, 11th and 100th", "the third eleventh and one hundredth"),
    ("pi is 3.14", "pi is three point one four"),
    ("1,000,000 people", "one million people"),
    ("(42)", "forty two"),
    ("Hello, World!", "hello world"),
]


@pytest.mark.parametrize(("written", "spoken"), PAIRS)
def test_written_becomes_spoken(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_number_words_in_closed_form() -> None:
    assert cardinal(0) == "zero"
    assert cardinal(115) == "one hundred fifteen"
    assert cardinal(2_000_019) == "two million nineteen"
    assert (
        ordinal(40) == "fortieth"
        and ordinal(12) == "twelfth"
        and ordinal(101) == "one hundred first"
    )
    assert (
        year(2005) == "two thousand five"
        and year(1905) == "nineteen oh five"
        and year(1900) == "nineteen hundred"
    )


def test_the_stream_emits_each_token_once_the_next_one_is_read() -> None:
    assert LOOKAHEAD_TOKENS == 1
    read: list[str] = []

    def source():
        for t in ["I", "ran", "5", "km", "and", "3", "more"]:
            read.append(t)
            yield t

    out = []
    for words in normalize_stream(source()):
        out.append(words)
        # Never more than one token read ahead of what has been emitted (a unit counts as
        # emitted with its number).
        assert len(read) - len(" ".join(out).split()) <= 1 + LOOKAHEAD_TOKENS
    assert " ".join(out) == "i ran five kilometers and three more"


_NUMERIC = st.one_of(
    st.integers(0, 10**11).map(str),
    st.integers(0, 10**6).map(lambda n: f"{n:,}"),
    st.tuples(st.integers(0, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}.{t[1]}"),
    st.tuples(st.sampled_from("$€£"), st.integers(0, 10**6)).map(lambda t: f"{t[0]}{t[1]}"),
    st.integers(0, 100).map(lambda n: f"{n}%"),
    st.integers(1, 999).map(lambda n: f"{n}th"),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(_NUMERIC, st.sampled_from(["km", "kg", "the", "Cats,", "and"])), max_size=8)
)
def test_numeric_written_forms_always_become_lower_case_words_without_digits(
    tokens: list[str],
) -> None:
    out = normalize(" ".join(tokens))
    assert out == out.lower()
    assert not any(c.isdigit() for c in out), out


def test_cli_normalize_prints_the_spoken_form(capsys) -> None:
    from l3_speech.cli import main

    assert main(["normalize", "Pay", "$3", "by", "2025-01-02"]) == 0
    assert capsys.readouterr().out == "pay three dollars by january second twenty twenty five\n"
