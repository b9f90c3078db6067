"""The vocabulary, token ids and error rates."""

from __future__ import annotations

import pytest

from edgenpu.asr_workloads.text import (
    BLANK,
    VOCABULARY,
    decode,
    edit_distance,
    encode,
    error_counts,
    normalize,
)


def test_vocabulary_has_blank_first_and_unique_characters():
    assert VOCABULARY[BLANK] == "<blank>"
    assert len(set(VOCABULARY)) == len(VOCABULARY) == 29


def test_normalize_keeps_only_vocabulary_characters():
    assert normalize("  Turn-OFF the Lights, please!  ") == "turn off the lights please"
    assert normalize("what's 42 up") == "what's up"


def test_encode_decode_round_trip_and_blanks_are_skipped():
    ids = encode("call bob")
    assert BLANK not in ids
    assert decode(ids) == "call bob"
    assert decode([BLANK, *ids.tolist(), BLANK]) == "call bob"


def test_encode_names_the_foreign_character():
    with pytest.raises(ValueError, match="transcript 'call 5' holds '5'"):
        encode("call 5")


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("abc", "abc", 0)],
)
def test_edit_distance(ref, hyp, distance):
    assert edit_distance(ref, hyp) == distance
    assert edit_distance(hyp, ref) == distance


def test_error_rates_are_corpus_level():
    counts = error_counts(["call bob now", "stop"], ["call rob now", "stop"])
    assert (counts.word_edits, counts.words) == (1, 4)
    assert counts.wer == 0.25
    assert counts.cer == pytest.approx(1 / 16)
    assert error_counts([], []).wer == 0.0
