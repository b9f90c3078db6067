"""Transcripts: the character vocabulary, its token ids, and word/character error rates.

The vocabulary is the contract between the corpus, the models, the decoder and the host
runtime: id 0 is the RNN-T *blank* (and the prediction network's start symbol), then the
space, the letters and the apostrophe. Transcripts are in spoken form ("call five five
five"), so there are no digits or punctuation to spell out at recognition time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "BLANK",
    "VOCABULARY",
    "ErrorCounts",
    "decode",
    "edit_distance",
    "encode",
    "error_counts",
    "normalize",
]

#: Index 0 is the blank; every other entry is one character of a transcript.
VOCABULARY: tuple[str, ...] = ("<blank>", " ", *"abcdefghijklmnopqrstuvwxyz", "'")
BLANK = 0
_INDEX = {ch: i for i, ch in enumerate(VOCABULARY) if i != BLANK}
_OUTSIDE = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r" +")


def normalize(text: str) -> str:
    """Lower-case ``text``, turn anything outside the vocabulary into spaces, squeeze spaces.

    Hyphens and punctuation separate words ("turn-off" -> "turn off"); digits are dropped,
    since transcripts are written in spoken form by the corpus.
    """
    return _SPACES.sub(" ", _OUTSIDE.sub(" ", text.lower())).strip()


def encode(text: str) -> np.ndarray:
    """Token ids (int64) of a transcript, which must already be ``normalize``'d."""
    try:
        return np.array([_INDEX[ch] for ch in text], dtype=np.int64)
    except KeyError as error:
        raise ValueError(
            f"transcript {text!r} holds {error.args[0]!r}, which is not in the vocabulary"
        ) from None


def decode(ids: Iterable[int]) -> str:
    """The transcript of token ids; blanks are skipped (they carry no character)."""
    return "".join(VOCABULARY[i] for i in ids if i != BLANK)


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


class ErrorCounts:
    """Edits and reference lengths summed over a test set, for WER and CER.

    Rates are corpus-level (total edits / total reference length), not averages of
    per-utterance rates, so long utterances weigh in proportion to their length.
    """

    def __init__(self) -> None:
        self.word_edits = 0
        self.words = 0
        self.char_edits = 0
        self.chars = 0
        self.utterances = 0

    def add(self, reference: str, hypothesis: str) -> None:
        """Count one utterance (both strings are normalised first)."""
        reference, hypothesis = normalize(reference), normalize(hypothesis)
        self.word_edits += edit_distance(reference.split(), hypothesis.split())
        self.words += len(reference.split())
        self.char_edits += edit_distance(reference, hypothesis)
        self.chars += len(reference)
        self.utterances += 1

    @property
    def wer(self) -> float:
        """Word error rate (0.0 for an empty set)."""
        return self.word_edits / self.words if self.words else 0.0

    @property
    def cer(self) -> float:
        """Character error rate, spaces included (0.0 for an empty set)."""
        return self.char_edits / self.chars if self.chars else 0.0


def error_counts(references: Iterable[str], hypotheses: Iterable[str]) -> ErrorCounts:
    """``ErrorCounts`` over paired references and hypotheses."""
    counts = ErrorCounts()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        counts.add(reference, hypothesis)
    return counts
