"""Word and character error rates of a model on the corpus's test sets.

A recognizer is anything that turns a batch of cached utterances into transcripts: a
PyTorch model (batched greedy decoding, at float or a fake-quant precision), a bundle (the
numpy model, one utterance at a time) or the ONNX peer. The features are read from the
cache and normalised and stacked with the *model's* front end, after checking that the
cache was computed with the same log-mel parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .frontend import FrontEndConfig
from .text import ErrorCounts
from .training.batches import evaluation_order, make_batch

__all__ = ["EVALUATION_SPLITS", "SplitResult", "check_frontend", "evaluate_split"]

#: The corpus splits a model is scored on, in table order.
EVALUATION_SPLITS = ("valid", "heldout_voices", "heldout_synth", "heldout_speakers")

#: A recognizer maps (stacked features (B, T, F), valid lengths (B,)) to transcripts.
Recognizer = Callable[[np.ndarray, np.ndarray], Sequence[str]]


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """Error rates of one recognizer on one split."""

    split: str
    utterances: int
    words: int
    wer: float
    cer: float
    examples: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "examples": [list(e) for e in self.examples]}


def check_frontend(corpus: FrontEndConfig, model: FrontEndConfig, where: str) -> None:
    """Raise ValueError if the cache's log-mel parameters differ from the model's."""
    ignore = {"stack", "subsample", "mean", "std"}
    for field in dataclasses.fields(FrontEndConfig):
        if field.name in ignore:
            continue
        a, b = getattr(corpus, field.name), getattr(model, field.name)
        if a != b:
            raise ValueError(
                f"{where}: the corpus's front end has {field.name} = {a!r}, the model's {b!r}"
            )


def evaluate_split(
    recognize: Recognizer,
    split: Any,
    name: str,
    frontend: FrontEndConfig,
    batch_size: int = 32,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SplitResult:
    """Greedy-decode a split (or its first ``limit`` utterances by length order) and score it.

    The word and character error rates are corpus-level (see :class:`..text.ErrorCounts`).
    """
    counts = np.asarray(split.frame_counts)
    if limit is not None:
        # A fixed, length-stratified subset: every k-th utterance in index order.
        keep = np.arange(0, len(counts), max(1, len(counts) // limit))[:limit]
    else:
        keep = np.arange(len(counts))
    errors = ErrorCounts()
    examples = []
    done = 0
    for order in evaluation_order(counts[keep], batch_size):
        indices = keep[order]
        batch = make_batch(split, indices, frontend)
        hypotheses = recognize(batch.features, batch.lengths)
        for i, hypothesis in zip(indices, hypotheses, strict=True):
            reference = split.text(int(i))
            errors.add(reference, hypothesis)
            if len(examples) < 3 and reference != hypothesis:
                examples.append((reference, hypothesis))
        done += len(indices)
        if progress is not None:
            progress(done, len(keep))
    return SplitResult(
        name, errors.utterances, errors.words, errors.wer, errors.cer, tuple(examples)
    )
