"""Padded batches of stacked features and token targets, drawn from a feature cache.

Utterances of similar length go together (less padding, so less wasted recurrence): the
training order shuffles, sorts each pool of ``POOL`` batches' worth of utterances by length,
cuts it into batches and shuffles the batches. Features come from the cache's memory map
one utterance at a time, are normalised with the front end's statistics, optionally
SpecAugment-ed, then stacked and subsampled exactly as the runtime front end does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..corpus.augment import spec_augment, warp_vocal_tract
from ..frontend import FrontEndConfig, normalize, stack_and_subsample
from ..text import encode

__all__ = [
    "POOL",
    "Batch",
    "evaluation_order",
    "feature_statistics",
    "epoch_batches",
    "make_batch",
    "take_rows",
    "TrainingOrder",
]

#: Batches' worth of utterances sorted together by length in the training order.
POOL = 50


@dataclasses.dataclass(frozen=True)
class Batch:
    """Zero-padded arrays for one step.

    Attributes
    ----------
    features : numpy.ndarray
        float32 ``(B, T, stack * n_mels)``.
    lengths : numpy.ndarray
        int64 ``(B,)`` valid frames per utterance.
    targets : numpy.ndarray
        int64 ``(B, U)`` token ids, padded with 0.
    target_lengths : numpy.ndarray
        int64 ``(B,)``.
    indices : numpy.ndarray
        The utterances' indices in their split.
    """

    features: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    target_lengths: np.ndarray
    indices: np.ndarray


def feature_statistics(split: Any, utterances: int = 2000, seed: int = 0) -> tuple[list, list]:
    """Per-band mean and standard deviation over (a sample of) a split's frames."""
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(split))[:utterances]
    total = sum_sq = None
    count = 0
    for i in chosen:
        frames = np.asarray(split.features(int(i)), dtype=np.float64)
        total = frames.sum(0) if total is None else total + frames.sum(0)
        sum_sq = (frames**2).sum(0) if sum_sq is None else sum_sq + (frames**2).sum(0)
        count += len(frames)
    mean = total / count
    std = np.sqrt(np.maximum(sum_sq / count - mean**2, 1e-8))
    return mean.tolist(), std.tolist()


def make_batch(
    split: Any,
    indices: np.ndarray,
    frontend: FrontEndConfig,
    rng: np.random.Generator | None = None,
    augment: dict[str, int] | None = None,
    vocal_tract_warp: float = 0.0,
) -> Batch:
    """The padded batch of ``indices``.

    With ``rng``, every utterance's formants are scaled by a factor drawn from
    ``[1 - vocal_tract_warp, 1 + vocal_tract_warp]`` (if that is not 0), and SpecAugment
    masks it (if ``augment`` is given).
    """
    inputs, texts = [], []
    for i in indices:
        frames = split.features(int(i))
        if rng is not None and vocal_tract_warp:
            factor = rng.uniform(1 - vocal_tract_warp, 1 + vocal_tract_warp)
            frames = warp_vocal_tract(frames, factor, frontend)
        frames = normalize(frames, frontend)
        if rng is not None and augment:
            frames = spec_augment(frames, rng, **augment)
        stacked = stack_and_subsample(frames, frontend.stack, frontend.subsample)
        inputs.append(stacked)
        texts.append(encode(split.text(int(i))))
    lengths = np.array([len(x) for x in inputs], dtype=np.int64)
    target_lengths = np.array([len(t) for t in texts], dtype=np.int64)
    features = np.zeros((len(inputs), max(lengths.max(), 1), frontend.feature_dim), np.float32)
    targets = np.zeros((len(texts), max(target_lengths.max(), 1)), np.int64)
    for b, (x, t) in enumerate(zip(inputs, texts, strict=True)):
        features[b, : len(x)] = x
        targets[b, : len(t)] = t
    return Batch(features, lengths, targets, target_lengths, np.asarray(indices))


def take_rows(batch: Batch, rows: np.ndarray) -> Batch:
    """The utterances ``rows`` of ``batch``, padded only as far as they need."""
    lengths, target_lengths = batch.lengths[rows], batch.target_lengths[rows]
    frames, tokens = max(int(lengths.max()), 1), max(int(target_lengths.max()), 1)
    return Batch(
        batch.features[rows, :frames],
        lengths,
        batch.targets[rows, :tokens],
        target_lengths,
        batch.indices[rows],
    )


def epoch_batches(
    frame_counts: np.ndarray, batch_size: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """One epoch's batches of indices, length-bucketed; a pure function of its arguments,
    so a resumed run draws exactly the batches the interrupted one would have."""
    n = len(frame_counts)
    if n == 0:
        raise ValueError("the training split is empty")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    batches = []
    pool = POOL * batch_size
    for start in range(0, n, pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(frame_counts[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[k] for k in rng.permutation(len(batches))]


class TrainingOrder:
    """The batch of indices for any step.

    The first ``sorted_steps`` steps take the utterances shortest first (SortaGrad,
    Amodei et al. 2016): short utterances have few alignments, so the encoder learns to
    align sounds with characters before it meets long ones, which CTC and transducer
    training otherwise spend many steps on. Then epoch after epoch of ``epoch_batches``.
    """

    def __init__(
        self, frame_counts: np.ndarray, batch_size: int, seed: int, sorted_steps: int = 0
    ) -> None:
        self._counts = np.asarray(frame_counts)
        self._batch_size = batch_size
        self._seed = seed
        self._sorted = np.argsort(self._counts, kind="stable")
        self._sorted_steps = sorted_steps
        self._epoch = -1
        self._batches: list[np.ndarray] = []
        self.per_epoch = len(epoch_batches(self._counts, batch_size, seed, 0))

    def __call__(self, step: int) -> np.ndarray:
        if step < self._sorted_steps:
            start = step * self._batch_size % len(self._sorted)
            return self._sorted[start : start + self._batch_size]
        epoch, k = divmod(step - self._sorted_steps, self.per_epoch)
        if epoch != self._epoch:
            self._batches = epoch_batches(self._counts, self._batch_size, self._seed, epoch)
            self._epoch = epoch
        return self._batches[k]


def evaluation_order(frame_counts: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Every index once, in batches of similar length (deterministic)."""
    order = np.argsort(frame_counts, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
