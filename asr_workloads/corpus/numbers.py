"""Numbers, times and digit strings in spoken form ("twenty five", "seven thirty").

Transcripts hold only the characters of :data:`..text.VOCABULARY`, so every number the
command templates use is written out here, the way a speaker would say it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DIGIT_WORDS", "digits_to_words", "number_to_words", "ordinal_to_words", "time_to_words"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
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
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((1_000_000, "million"), (1_000, "thousand"), (100, "hundred"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], not {value!r}")
    return value


def number_to_words(n: int) -> str:
    """American spoken form of ``0 <= n < 10**9``: 125 -> "one hundred twenty five".

    No "and" after "hundred" (the American reading), and no hyphens, since a hyphen is not
    in the vocabulary.
    """
    _check_int("n", n, 0, 999_999_999)
    if n < 10:
        return DIGIT_WORDS[n]
    if n < 20:
        return _TEENS[n - 10]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {DIGIT_WORDS[ones]}" if ones else "")
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            head = f"{number_to_words(high)} {word}"
            return head + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")  # every n >= 100 meets a scale


def ordinal_to_words(n: int) -> str:
    """Spoken ordinal of ``1 <= n < 10**9``: 21 -> "twenty first", 12 -> "twelfth"."""
    _check_int("n", n, 1, 999_999_999)
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def time_to_words(hour: int, minute: int, style: str = "clock") -> str:
    """A 12-hour clock time as spoken.

    Parameters
    ----------
    hour : int
        1 to 12.
    minute : int
        0 to 59.
    style : str
        ``"clock"``: "seven o'clock", "seven oh five", "seven thirty";
        ``"past"``: "half past seven", "quarter to eight", "ten past seven" (minutes that are
        not a multiple of five fall back to the clock style).
    """
    _check_int("hour", hour, 1, 12)
    _check_int("minute", minute, 0, 59)
    if style not in ("clock", "past"):
        raise ValueError(f"style must be 'clock' or 'past', not {style!r}")
    if style == "past" and minute % 5 == 0 and minute:
        if minute == 30:
            return f"half past {number_to_words(hour)}"
        if minute < 30:
            amount = "quarter" if minute == 15 else number_to_words(minute)
            return f"{amount} past {number_to_words(hour)}"
        amount = "quarter" if minute == 45 else number_to_words(60 - minute)
        return f"{amount} to {number_to_words(hour % 12 + 1)}"
    if minute == 0:
        return f"{number_to_words(hour)} o'clock"
    if minute < 10:
        return f"{number_to_words(hour)} oh {DIGIT_WORDS[minute]}"
    return f"{number_to_words(hour)} {number_to_words(minute)}"


def digits_to_words(digits: Iterable[int] | str) -> str:
    """Digits read one by one: "5551212" or [5, 5, 5] -> "five five five ..."."""
    words = []
    for d in digits:
        value = int(d) if isinstance(d, str) and d.isdigit() else d
        _check_int("digit", value, 0, 9)
        words.append(DIGIT_WORDS[value])
    if not words:
        raise ValueError("digits must not be empty")
    return " ".join(words)
