"""PII detection precision and recall on seeded synthetic text: sentences with planted PII of
every type (generated with valid check digits; phone numbers are libphonenumber's example
numbers of 30 regions in international format, and US ones in national format), and as many
sentences of look-alikes that are not PII (version numbers, dates, times, ISBN-13s with valid
check digits, UUIDs, hashes, code, Luhn-failing digit strings, IBANs with bad check digits,
never-issued SSNs, C++ scopes). A hit counts as true when it is exactly a planted span.

    python benchmarks/bench_data_pii.py [--sentences 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import string
import time
from collections import Counter

from l3_data.pii import IBAN_LENGTHS, PII_TYPES, find_pii

REGIONS = [
    "US",
    "GB",
    "DE",
    "FR",
    "IT",
    "ES",
    "NL",
    "BE",
    "CH",
    "AT",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "CZ",
    "PT",
    "IE",
    "IN",
    "JP",
    "KR",
    "CN",
    "BR",
    "MX",
    "AU",
    "NZ",
    "ZA",
    "EG",
    "TR",
    "RU",
]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_LENGTHS))
    bban = "".join(rng.choice(string.digits) for _ in range(IBAN_LENGTHS[country] - 4))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    s = f"{country}{check:02d}{bban}"
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s


def planted(kind: str, rng: random.Random) -> str:
    import phonenumbers

    if kind == "email":
        user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 10)))
        return f"{user}.{rng.choice(['smith', 'k', 'li'])}@{rng.choice(['example.org', 'mail.co.uk', 'uni-x.edu'])}"
    if kind == "phone":
        region = rng.choice(REGIONS)
        num = phonenumbers.example_number(region)
        fmt = phonenumbers.PhoneNumberFormat
        if region == "US" and rng.random() < 0.5:
            return phonenumbers.format_number(num, fmt.NATIONAL)
        return phonenumbers.format_number(num, fmt.INTERNATIONAL)
    if kind == "ip":
        if rng.random() < 0.5:
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))
    if kind == "card":
        prefix, length = rng.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16), ("3530", 16)])
        digits = _luhn_complete(prefix, length, rng)
        sep = rng.choice(["", " ", "-"])
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4)) if sep else digits
    if kind == "iban":
        return _iban(rng)
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _isbn13(rng: random.Random) -> str:
    body = "978" + "".join(rng.choice(string.digits) for _ in range(9))
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:8]}-{body[8:]}-{check}"


def _bad_check_digit(digits: str) -> str:
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


def _bad_iban(rng: random.Random) -> str:
    s = _iban(rng).replace(" ", "")
    return f"{s[:2]}{(int(s[2:4]) + 1) % 100:02d}{s[4:]}"


LOOKALIKES = [
    lambda r: f"version {r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}.{r.randint(0, 999)}",
    lambda r: f"pip install pkg=={r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(1, 9)}",
    lambda r: f"on {r.randint(1990, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    lambda r: f"on {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1990, 2030)}",
    lambda r: f"at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    lambda r: f"ISBN {_isbn13(r)}",
    lambda r: f"ISBN {_isbn13(r).replace('-', '')}",
    lambda r: f"id {r.getrandbits(128):032x}"[:3] + "-".join(
        [f"{r.getrandbits(32):08x}", f"{r.getrandbits(16):04x}", f"{r.getrandbits(16):04x}",
         f"{r.getrandbits(16):04x}", f"{r.getrandbits(48):012x}"]),
    lambda r: f"commit {r.getrandbits(160):040x}",
    lambda r: f"std::map<int, int> m{r.randint(0, 9)}; a::b::c{r.randint(0, 9)}();",
    lambda r: f"x = {r.randint(0, 999)} * 0x{r.getrandbits(32):08x} + {r.random():.6f}",
    lambda r: f"order #{_bad_check_digit(_luhn_complete('4', 16, r))}",
    lambda r: f"account {_bad_iban(r)}",
    lambda r: f"ref {r.choice(['000', '666', '901'])}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
    lambda r: f"pages {r.randint(1, 400)}-{r.randint(401, 900)}, vol. {r.randint(1, 99)}({r.randint(1, 12)})",
    lambda r: f"total {r.randint(1, 999)},{r.randint(100, 999)},{r.randint(100, 999)}.{r.randint(10, 99)}",
    lambda r: f"ratio {r.randint(1, 20)}:{r.randint(1, 20)}:{r.randint(1, 20)}",
    lambda r: f"lat {r.uniform(-90, 90):.4f}, lon {r.uniform(-180, 180):.4f}",
    lambda r: f"serial {r.randint(2000, 2030)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    texts, truth = [], []
    for i in range(args.sentences):
        if i % 2 == 0:
            kind = PII_TYPES[(i // 2) % len(PII_TYPES)]
            value = planted(kind, rng)
            prefix = f"Please contact the office ({rng.randint(1, 99)}) about it: "
            texts.append(prefix + value + ". Thank you.")
            truth.append({(kind, len(prefix), len(prefix) + len(value))})
        else:
            texts.append(f"The report cites {rng.choice(LOOKALIKES)(rng)} as its source.")
            truth.append(set())
    t0 = time.perf_counter()
    found = [{(h.type, h.start, h.end) for h in find_pii(t)} for t in texts]
    secs = time.perf_counter() - t0
    tp, fp, fn = Counter(), Counter(), Counter()
    for f, t in zip(found, truth):
        for h in f:
            (tp if h in t else fp)[h[0]] += 1
        for h in t - f:
            fn[h[0]] += 1
    print("type     precision  recall  (planted, false hits)")
    for k in PII_TYPES:
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 1.0
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 1.0
        print(f"{k:7}  {p:9.3f}  {r:6.3f}  ({tp[k] + fn[k]}, {fp[k]})")
    look = [f for f, t in zip(found, truth) if not t]
    print(
        f"look-alike sentences with any hit: {sum(bool(f) for f in look)} of {len(look)}; "
        f"{len(texts) / secs:.0f} sentences/s"
    )


if __name__ == "__main__":
    main()
