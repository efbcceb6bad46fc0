"""Detectors of personally identifiable information, each returning character spans.

Types: ``email``, ``phone`` (``phonenumbers``, Google's libphonenumber: international numbers
anywhere, national ones of ``regions``), ``ip`` (IPv4 / IPv6, validated by ``ipaddress``),
``card`` (13-19 digits of a known issuer prefix, Luhn-checked), ``iban`` (the country's length
from the ISO 13616 registry, mod-97 check digits) and ``ssn`` (US, ``AAA-GG-SSSS`` with the
SSA's never-issued areas, groups and serials excluded). Every candidate a regular expression
finds is validated, so text that only looks like PII (version numbers, dates, ISBNs, hashes,
code) is not reported: ``tests/test_pii.py`` has the look-alikes per type.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PII_TYPES = ("email", "iban", "card", "ssn", "ip", "phone")  # also the priority on overlaps


@dataclass(frozen=True, order=True)
class PiiHit:
    start: int
    end: int
    type: str

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "start": self.start, "end": self.end}


Detector = Callable[[str, Sequence[str]], list[tuple[int, int]]]
DETECTORS: dict[str, Detector] = {}


def detector(name: str) -> Callable[[Detector], Detector]:
    def deco(fn: Detector) -> Detector:
        DETECTORS[name] = fn
        return fn

    return deco


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


@detector("email")
def find_emails(text: str, regions: Sequence[str] = ()) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL.finditer(text) if ".." not in m.group()]


@detector("phone")
def find_phones(text: str, regions: Sequence[str] = ("US",)) -> list[tuple[int, int]]:
    import phonenumbers

    spans: set[tuple[int, int]] = set()
    # Region "ZZ" (unknown) finds only numbers written with their +country code. Strict
    # grouping: the digits must be grouped as the country writes them, so a date or serial
    # such as 2019-12-0001 that happens to hold a valid number is not one.
    for region in ("ZZ", *regions):
        for m in phonenumbers.PhoneNumberMatcher(
            text, region, phonenumbers.Leniency.STRICT_GROUPING
        ):
            spans.add((m.start, m.end))
    return sorted(spans)


_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
# A version-number context: "v1.2.3.4", "version 10.0.0.1", "release 1.2.0.3", "torch==2.3.0.1".
_VERSION_BEFORE = re.compile(
    r"(?:\bv|\bversion\s|\brelease\s|\bver\.?\s?|[=<>~!]=?\s*)$", re.IGNORECASE
)
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


@detector("ip")
def find_ips(text: str, regions: Sequence[str] = ()) -> list[tuple[int, int]]:
    out = []
    for m in _IPV4.finditer(text):
        octets = m.groups()
        if any(len(o) > 1 and o.startswith("0") for o in octets):
            continue  # "01.02.2024" style dates and zero-padded numbers are not addresses
        if _VERSION_BEFORE.search(text[max(0, m.start() - 10) : m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        out.append(m.span())
    for m in _IPV6.finditer(text):
        s = m.group()
        # Clock times (12:30:45) and C++ scopes (a::b) are valid-looking; an address has
        # at least 3 groups with a digit among them, or is written with "::" and 4+ groups.
        groups = [g for g in s.split(":") if g]
        if len(groups) < 3 or not any(c.isdigit() for c in s):
            continue
        if all(len(g) <= 2 and g.isdigit() for g in groups):
            continue  # times, ratios
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            continue
        out.append(m.span())
    return out


_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?!\w|-\d)")
# Issuer prefixes (IIN ranges) of the card networks, with their lengths.
_CARD_ISSUERS = re.compile(
    r"4\d{12}(?:\d{3}){0,2}"  # Visa 13, 16, 19
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|3(?:0[0-5]|[68]\d)\d{11,16}"  # Diners Club
    r"|(?:5[06-9]|6\d)\d{10,17}"  # Maestro and others
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@detector("card")
def find_cards(text: str, regions: Sequence[str] = ()) -> list[tuple[int, int]]:
    out = []
    for m in _CARD.finditer(text):
        s = m.group()
        if " " in s and "-" in s:
            continue  # card numbers are grouped with one separator
        digits = re.sub(r"\D", "", s)
        if len(set(digits)) > 1 and _CARD_ISSUERS.fullmatch(digits) and luhn_valid(digits):
            out.append(m.span())
    return out


# ISO 13616 registry: the length of each country's IBAN.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)


def iban_valid(iban: str) -> bool:
    """ISO 13616: the country's length, then mod 97 of the rearranged number is 1."""
    s = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@detector("iban")
def find_ibans(text: str, regions: Sequence[str] = ()) -> list[tuple[int, int]]:
    out = []
    for m in _IBAN.finditer(text):
        s = m.group()
        # A shorter IBAN followed by another word: try dropping trailing groups.
        while s and not iban_valid(s):
            s = s[: s.rfind(" ")] if " " in s else ""
        if s:
            out.append((m.start(), m.start() + len(s)))
    return out


_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")


@detector("ssn")
def find_ssns(text: str, regions: Sequence[str] = ()) -> list[tuple[int, int]]:
    out = []
    for m in _SSN.finditer(text):
        area, group, serial = m.groups()
        if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
            continue  # never issued (SSA)
        out.append(m.span())
    return out


def find_pii(
    text: str, types: Sequence[str] = PII_TYPES, regions: Sequence[str] = ("US",)
) -> list[PiiHit]:
    """Every PII hit of ``types`` in ``text``, in order; where two overlap, the type earlier in
    :data:`PII_TYPES` wins (a card number is not also a phone number)."""
    taken: list[PiiHit] = []
    for t in PII_TYPES:
        if t not in types:
            continue
        for start, end in DETECTORS[t](text, regions):
            if not any(start < h.end and h.start < end for h in taken):
                taken.append(PiiHit(start, end, t))
    return sorted(taken)


def redact(text: str, hits: Sequence[PiiHit]) -> str:
    """``text`` with each hit replaced by its typed placeholder, e.g. ``[EMAIL]``."""
    out, pos = [], 0
    for h in sorted(hits):
        out += [text[pos : h.start], f"[{h.type.upper()}]"]
        pos = h.end
    return "".join(out) + text[pos:]


def pii_char_ratio(text: str, hits: Sequence[PiiHit]) -> float:
    """Share of the text's characters inside PII hits."""
    return sum(h.end - h.start for h in hits) / len(text) if text else 0.0
