"""Numbers as English words: cardinals, ordinals, digit-by-digit decimals, years."""

from __future__ import annotations

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MAX_CARDINAL = 10**12 - 1


def cardinal(n: int) -> str:
    """``n`` (0 <= n < 10**12) in words: 1234 -> "one thousand two hundred thirty four"."""
    if not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"{n} is outside [0, {MAX_CARDINAL}]")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + cardinal(rest))
    for value, name in SCALES:
        if n >= value:
            rest = n % value
            return cardinal(n // value) + " " + name + ("" if rest == 0 else " " + cardinal(rest))
    raise AssertionError("unreachable")


def ordinal(n: int) -> str:
    """3 -> "third", 21 -> "twenty first", 100 -> "one hundredth"."""
    words = cardinal(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def digits(s: str) -> str:
    """Digit by digit: "14" -> "one four"."""
    return " ".join(ONES[int(c)] for c in s)


def year(n: int) -> str:
    """1999 -> "nineteen ninety nine", 2005 -> "two thousand five", 2024 -> "twenty twenty four"."""
    if 2000 <= n < 2010 or n % 1000 == 0 or not 1000 <= n <= 9999:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return cardinal(hi) + " hundred"
    return cardinal(hi) + " " + ("oh " + ONES[lo] if lo < 10 else cardinal(lo))
