"""PII detectors: published valid examples per type are found with exact offsets; text that
only looks like PII (versions, dates, ISBNs, hashes, code, bad check digits) is not."""

from __future__ import annotations

import importlib.util

import pytest

from l3_data.pii import PII_TYPES, find_pii, iban_valid, luhn_valid, pii_char_ratio, redact

# Without the 'pii' extra every detector but the phone one still runs and is tested.
HAVE_PHONE = importlib.util.find_spec("phonenumbers") is not None
TYPES = PII_TYPES if HAVE_PHONE else tuple(t for t in PII_TYPES if t != "phone")
needs_phonenumbers = pytest.mark.skipif(
    not HAVE_PHONE, reason="the 'pii' extra (phonenumbers) is not installed"
)


def _skip_phone_without_extra(kind):
    if kind == "phone" and not HAVE_PHONE:
        pytest.skip("the 'pii' extra (phonenumbers) is not installed")


POSITIVES = {
    "email": ["jane.doe@example.org", "a+tag@mail.co.uk", "first_last-9@sub.domain.io"],
    "phone": ["+44 20 7946 0958", "+1 415-555-2671", "(415) 555-2671", "+49 30 901820", "+33 1 42 68 53 00"],
    "ip": ["192.168.1.20", "8.8.8.8", "2001:db8::8a2e:370:7334", "fe80:0:0:0:202:b3ff:fe1e:8329"],
    # Payment networks' published test numbers (Visa, Mastercard, Amex, Discover, JCB).
    "card": ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117", "3530111333300000"],
    # The ISO 13616 / national banks' example IBANs.
    "iban": ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300", "BE68539007547034"],
    "ssn": ["123-45-6789", "078-05-1120", "219-09-9999"],
}  # fmt: skip

LOOKALIKES = {
    "email": ["user@localhost", "@handle on twitter", "a@b", "x..y@example.com"],
    "phone": ["released 2024-01-15", "ISBN 978-3-16-148410-0", "1,234,567", "call 555-0100"],
    "ip": ["version 1.2.3.4", "v10.0.0.1", "256.1.1.1", "01.02.2023", "12:30:45", "std::vector", "a::b::c", "1.2.3.4.5"],
    "card": ["4111 1111 1111 1112", "ref A4111111111111111Z", "1234567890123", "0000 0000 0000 0000", "ISBN 9780306406157", "4111-1111 1111-1111"],
    "iban": ["DE89 3704 0044 0532 0130 01", "XX89370400440532013000", "GB82WEST1234569876543", "ABCD 1234 EFGH 5678"],
    "ssn": ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "2019-12-0001", "123-45-67890"],
}  # fmt: skip


@pytest.mark.parametrize("kind,value", [(k, v) for k, vs in POSITIVES.items() for v in vs])
def test_each_type_finds_its_published_examples_with_exact_offsets(kind, value):
    _skip_phone_without_extra(kind)
    text = f"Contact: {value}, thanks."
    hits = find_pii(text, types=TYPES)
    assert [(h.type, h.start, h.end) for h in hits] == [(kind, 9, 9 + len(value))]


@pytest.mark.parametrize("kind,value", [(k, v) for k, vs in LOOKALIKES.items() for v in vs])
def test_lookalikes_are_not_reported(kind, value):
    _skip_phone_without_extra(kind)
    assert find_pii(f"See {value} here.", types=TYPES) == []


def test_code_and_technical_text_has_no_pii():
    code = (
        "def f(x):\n    return x ** 2  # O(n^2), see RFC 3986 section 3.2.2\n"
        "sha = '3f786850e387550fdab836ed7e6dc881de23001b'\nuuid = '123e4567-e89b-12d3-a456-426614174000'\n"
        "std::map<int, int> m; m[0] = 0x1a2b3c4d; // 2024-01-15 12:30:45\n"
        "pip install numpy==1.26.4 torch==2.3.0.1; ratio 16:9:4; lat 48.8566, lon 2.3522\n"
    )
    assert find_pii(code, types=TYPES) == []


def test_luhn_and_mod97_against_hand_computed_cases():
    # 79927398713 is the textbook Luhn example; changing any digit breaks it.
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid(
        "GB82 WEST 1234 5698 7654 33"
    )
    assert not iban_valid("GB82WEST123456987654")  # wrong length for GB


@needs_phonenumbers
def test_overlapping_hits_go_to_the_more_specific_type():
    # The phone detector alone finds the number inside the address; only the address counts.
    text = "mail 4155552671@example.com now"
    assert [(h.type, h.start, h.end) for h in find_pii(text, types=["phone"])] == [("phone", 5, 15)]
    assert [(h.type, h.start, h.end) for h in find_pii(text)] == [("email", 5, 27)]


def test_redaction_replaces_each_hit_with_its_typed_placeholder():
    text = "Mail jane@example.org, IP 10.0.0.1, SSN 123-45-6789."
    hits = find_pii(text, types=TYPES)
    assert redact(text, hits) == "Mail [EMAIL], IP [IP], SSN [SSN]."
    assert pii_char_ratio(text, hits) == pytest.approx((16 + 8 + 11) / len(text))


def test_types_restrict_the_detectors():
    text = "jane@example.org 10.0.0.1"
    assert [h.type for h in find_pii(text, types=["ip"])] == ["ip"]
    assert set(PII_TYPES) == {"email", "phone", "ip", "card", "iban", "ssn"}


@needs_phonenumbers
def test_national_phone_numbers_follow_the_regions():
    text = "Ring 020 7946 0958 today"
    assert find_pii(text, regions=["US"]) == []
    assert [h.type for h in find_pii(text, regions=["GB"])] == ["phone"]
