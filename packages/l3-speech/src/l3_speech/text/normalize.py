"""Streaming text normalisation: written tokens in, spoken words out, with one token of lookahead.

The text is read as whitespace-separated tokens. Each rule (a registry, tried in order) looks
at the current token and at most the next one (a unit after a number: "5 km"); a rule that
uses the next token consumes it. So a stream never holds more than one token back: the
lookahead is bounded to one token, and output for a token is final once the next has been read.
Punctuation around a token is kept off the words (a trailing comma or full stop is dropped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from l3_speech.text.numbers import MAX_CARDINAL, cardinal, digits, ordinal, year

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
UNITS = {
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "l": ("liter", "liters"),
    "ml": ("milliliter", "milliliters"),
    "s": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"),
    "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "°c": ("degree celsius", "degrees celsius"),
    "°f": ("degree fahrenheit", "degrees fahrenheit"),
    "%": ("percent", "percent"),
}
CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
LOOKAHEAD_TOKENS = 1

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_TRAIL = re.compile(r"[.,;:!?)\"']+$")
_LEAD = re.compile(r"^[(\"']+")


def _amount(whole: str, frac: str | None) -> str:
    n = int(whole.replace(",", ""))
    if n > MAX_CARDINAL:
        return digits(whole.replace(",", ""))
    return cardinal(n) + ("" if frac is None else " point " + digits(frac))


def _plural(whole: str, frac: str | None) -> bool:
    return not (frac is None and int(whole.replace(",", "")) == 1)


@dataclass(frozen=True)
class Rule:
    """``pattern`` matches the current token (``nxt`` is the next one, or None); ``speak``
    returns the words and whether it used the next token."""

    name: str
    pattern: re.Pattern[str]
    speak: Callable[[re.Match[str], str | None], tuple[str, bool] | None]


def _currency(m: re.Match[str], nxt: str | None) -> tuple[str, bool]:
    one, many, sub_one, sub_many = CURRENCIES[m.group(1)]
    whole, frac = m.group(2), m.group(3)
    words = cardinal(int(whole.replace(",", ""))) + " " + (many if _plural(whole, None) else one)
    if frac is not None and int(frac) > 0:
        cents = int(frac.ljust(2, "0")[:2])
        words += f" {cardinal(cents)} {sub_one if cents == 1 else sub_many}"
    return words, False


def _iso_date(m: re.Match[str], nxt: str | None) -> tuple[str, bool] | None:
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{MONTHS[mo - 1]} {ordinal(d)} {year(y)}", False


def _ordinal(m: re.Match[str], nxt: str | None) -> tuple[str, bool]:
    return ordinal(int(m.group(1))), False


def _number_with_unit(m: re.Match[str], nxt: str | None) -> tuple[str, bool]:
    whole, frac, unit = m.group(1), m.group(2), (m.group(3) or "").lower()
    if unit:  # "5km", "10%"
        return f"{_amount(whole, frac)} {UNITS[unit][_plural(whole, frac)]}", False
    if nxt is not None and _strip(nxt).lower() in UNITS:  # "5 km": the one token of lookahead
        return f"{_amount(whole, frac)} {UNITS[_strip(nxt).lower()][_plural(whole, frac)]}", True
    return _amount(whole, frac), False


_UNIT_ALT = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
RULES: list[Rule] = [
    Rule("currency", re.compile(rf"([$€£]){_NUMBER}"), _currency),
    Rule("iso_date", re.compile(r"(\d{4})-(\d{2})-(\d{2})"), _iso_date),
    Rule("ordinal", re.compile(r"(\d+)(?:st|nd|rd|th)", re.IGNORECASE), _ordinal),
    Rule("number", re.compile(rf"{_NUMBER}({_UNIT_ALT})?", re.IGNORECASE), _number_with_unit),
]


def _strip(token: str) -> str:
    return _TRAIL.sub("", _LEAD.sub("", token))


def _speak(token: str, nxt: str | None) -> tuple[str, bool]:
    core = _strip(token)
    for rule in RULES:
        m = rule.pattern.fullmatch(core)
        if m is not None:
            out = rule.speak(m, nxt)
            if out is not None:
                return out
    return core.lower(), False


def normalize_stream(tokens: Iterable[str]) -> Iterator[str]:
    """Spoken words for a stream of written tokens, holding back at most one token."""
    pending: str | None = None
    for token in tokens:
        if pending is None:
            pending = token
            continue
        words, used_next = _speak(pending, token)
        if words:
            yield words
        pending = None if used_next else token
    if pending is not None:
        words, _ = _speak(pending, None)
        if words:
            yield words


def normalize(text: str) -> str:
    """``"It costs $5.50 for 2 kg on 2024-05-01."`` -> ``"it costs five dollars fifty cents for
    two kilograms on may first twenty twenty four"``."""
    return " ".join(normalize_stream(text.split()))
