"""Spoken forms of numbers, ordinals, clock times and digit strings."""

from __future__ import annotations

import pytest

from edgenpu.asr_workloads.corpus.numbers import (
    digits_to_words,
    number_to_words,
    ordinal_to_words,
    time_to_words,
)
from edgenpu.asr_workloads.text import normalize


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (25, "twenty five"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (2024, "two thousand twenty four"),
        (1_000_001, "one million one"),
        (999_999_999, "nine hundred ninety nine million nine hundred ninety nine thousand "
         "nine hundred ninety nine"),
    ],
)  # fmt: skip
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_every_number_below_ten_thousand_is_in_vocabulary_and_distinct():
    spoken = [number_to_words(n) for n in range(10_000)]
    assert all(normalize(s) == s for s in spoken)
    assert len(set(spoken)) == 10_000


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"), (20, "twentieth"),
     (21, "twenty first"), (28, "twenty eighth"), (100, "one hundredth")],
)  # fmt: skip
def test_ordinals(n, words):
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize(
    ("hour", "minute", "style", "words"),
    [
        (7, 0, "clock", "seven o'clock"),
        (7, 5, "clock", "seven oh five"),
        (7, 30, "clock", "seven thirty"),
        (12, 59, "clock", "twelve fifty nine"),
        (7, 30, "past", "half past seven"),
        (7, 15, "past", "quarter past seven"),
        (7, 45, "past", "quarter to eight"),
        (12, 50, "past", "ten to one"),
        (7, 7, "past", "seven oh seven"),
    ],
)
def test_times(hour, minute, style, words):
    assert time_to_words(hour, minute, style) == words


def test_digits():
    assert digits_to_words("5551212") == "five five five one two one two"
    assert digits_to_words([0, 9]) == "zero nine"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: number_to_words(-1), "n must be an integer in [0, 999999999], not -1"),
        (lambda: number_to_words(2.0), "n must be an integer in [0, 999999999], not 2.0"),
        (lambda: ordinal_to_words(0), "n must be an integer in [1, 999999999], not 0"),
        (lambda: time_to_words(13, 0), "hour must be an integer in [1, 12], not 13"),
        (lambda: time_to_words(1, 0, "x"), "style must be 'clock' or 'past', not 'x'"),
        (lambda: digits_to_words("12a"), "digit must be an integer in [0, 9], not 'a'"),
        (lambda: digits_to_words(""), "digits must not be empty"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message
