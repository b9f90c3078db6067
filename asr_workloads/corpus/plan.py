"""The build plan: every utterance of every split, decided up front from the spec's seed.

Texts, voices, voice settings, FSDD takes and augmentation seeds are all drawn here, in one
process and in a fixed order, before any audio is rendered. Rendering can then run in any
order, in any number of processes, and be interrupted and resumed, and still give the same
corpus. Each split draws from its own random stream (seeded by the spec's seed and the
split's position), so resizing one split does not change the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .commands import sample_command
from .fsdd import Recording
from .spec import SPLITS, CorpusSpec
from .synthesizers import ESPEAK, FLITE, EspeakVoice, FliteVoice

__all__ = ["FSDD", "Utterance", "plan_corpus", "plan_digest"]

FSDD = "fsdd"
#: Attempts at drawing a command not in the training set before giving up on novelty (a
#: few short commands, "stop", exist only in a handful of forms).
_NOVEL_TRIES = 50

# Sub-streams of a split's seed, one per kind of choice.
_TEXTS, _VOICES, _FSDD, _AUGMENT = range(4)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One planned utterance.

    Parameters
    ----------
    text : str
        The transcript, in spoken normalized form.
    source : str
        ``"espeak-ng"``, ``"flite"`` or ``"fsdd"``.
    voice : EspeakVoice or FliteVoice or None
        The synthesizer voice (``None`` for FSDD).
    speaker : str or None
        The FSDD speaker (``None`` for synthesized speech).
    recordings : tuple of str
        FSDD file names, in spoken order.
    gaps_s : tuple of float
        Pauses between the FSDD recordings.
    augment : bool
        Whether the audio augmentations are applied.
    seed : tuple of int
        Seed of the utterance's own random choices (augmentation, gap noise).
    """

    text: str
    source: str
    voice: EspeakVoice | FliteVoice | None = None
    speaker: str | None = None
    recordings: tuple[str, ...] = ()
    gaps_s: tuple[float, ...] = ()
    augment: bool = False
    seed: tuple[int, ...] = ()

    def info(self) -> dict[str, Any]:
        """JSON-ready description, as stored in the corpus index.

        Always holds ``source``, ``synth`` (the synthesizer, ``None`` for recordings),
        ``voice`` (``"en-us+m3"``, ``"slt"``; ``None`` for recordings), ``speaker`` (FSDD
        speaker, ``None`` for synthesized speech) and ``augment``; then the voice settings,
        or the FSDD files and gaps.
        """
        synthesized = isinstance(self.voice, EspeakVoice | FliteVoice)
        out: dict[str, Any] = {
            "source": self.source,
            "synth": self.source if synthesized else None,
            "voice": self.voice.name if synthesized else None,
            "speaker": self.speaker,
            "augment": self.augment,
        }
        if synthesized:
            out.update(dataclasses.asdict(self.voice))
        else:
            out.update(recordings=list(self.recordings), gaps_s=list(self.gaps_s))
        return out


def _split_rng(spec: CorpusSpec, split: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, SPLITS.index(split), stream])


def _commands(spec: CorpusSpec, split: str, n: int, avoid: frozenset[str]) -> list[str]:
    rng = _split_rng(spec, split, _TEXTS)
    texts = []
    for _ in range(n):
        text = sample_command(rng)
        for _ in range(_NOVEL_TRIES):
            if text not in avoid:
                break
            text = sample_command(rng)
        texts.append(text)
    return texts


def _voices(spec: CorpusSpec, split: str, n: int) -> list[EspeakVoice | FliteVoice]:
    rng = _split_rng(spec, split, _VOICES)
    v = spec.voices
    voices: list[EspeakVoice | FliteVoice] = []
    if split == "heldout_synth":
        for _ in range(n):
            name = v.flite[int(rng.integers(len(v.flite)))]
            # Rounded so the stored value is the one rendered, exactly.
            stretch = round(float(rng.uniform(*v.flite_duration_stretch)), 3)
            f0 = round(float(rng.uniform(*v.flite_f0_mean)), 1)
            voices.append(FliteVoice(name, stretch, f0))
        return voices
    combos = (v.espeak_heldout if split == "heldout_voices" else v.espeak_train).combinations()
    for _ in range(n):
        language, variant = combos[int(rng.integers(len(combos)))]
        speed = int(rng.integers(v.espeak_speed[0], v.espeak_speed[1] + 1))
        pitch = int(rng.integers(v.espeak_pitch[0], v.espeak_pitch[1] + 1))
        voices.append(EspeakVoice(language, variant, speed, pitch))
    return voices


def _fsdd_pool(spec: CorpusSpec, split: str, recordings: Mapping[str, Sequence[Recording]]):
    v = spec.voices
    speakers = v.fsdd_heldout_speakers if split == "heldout_speakers" else v.fsdd_train_speakers
    pool = [r for s in speakers for r in recordings[s]]
    if split == "train":
        pool = [r for r in pool if r.index < v.fsdd_valid_from_index]
    elif split == "valid":
        pool = [r for r in pool if r.index >= v.fsdd_valid_from_index]
    if not pool:
        raise ValueError(f"no FSDD recordings left for split {split!r} (speakers {speakers})")
    return pool


def _fsdd(
    spec: CorpusSpec, split: str, recordings: Mapping[str, Sequence[Recording]]
) -> list[Utterance]:
    size = getattr(spec.splits, split)
    rng = _split_rng(spec, split, _FSDD)
    pool = _fsdd_pool(spec, split, recordings)
    out = []
    # Isolated digits go through the takes in a shuffled order, so each take is used once
    # before any is used twice.
    order = rng.permutation(len(pool))
    for i in range(size.fsdd_digits):
        rec = pool[order[i % len(pool)]]
        out.append(Utterance(rec.text, FSDD, speaker=rec.speaker, recordings=(rec.path.name,)))
    by_key: dict[tuple[str, int], list[Recording]] = {}
    for rec in pool:
        by_key.setdefault((rec.speaker, rec.digit), []).append(rec)
    speakers = sorted({r.speaker for r in pool})
    lo, hi = spec.voices.fsdd_string_length
    for _ in range(size.fsdd_strings):
        speaker = speakers[int(rng.integers(len(speakers)))]
        digits = [d for d in range(10) if (speaker, d) in by_key]
        takes = []
        for _ in range(int(rng.integers(lo, hi + 1))):
            options = by_key[(speaker, digits[int(rng.integers(len(digits)))])]
            takes.append(options[int(rng.integers(len(options)))])
        gaps = tuple(round(float(rng.uniform(*spec.voices.fsdd_gap_s)), 3) for _ in takes[1:])
        text = " ".join(r.text for r in takes)
        names = tuple(r.path.name for r in takes)
        out.append(Utterance(text, FSDD, speaker=speaker, recordings=names, gaps_s=gaps))
    return out


def plan_corpus(
    spec: CorpusSpec, recordings: Mapping[str, Sequence[Recording]] | None
) -> dict[str, list[Utterance]]:
    """Every utterance of every split.

    Parameters
    ----------
    spec : CorpusSpec
        The corpus spec.
    recordings : mapping or None
        FSDD recordings by speaker (``fsdd.find_recordings``); ``None`` when the data is
        absent, which leaves FSDD utterances out (and ``heldout_speakers`` empty).

    Returns
    -------
    dict of str to list of Utterance
        By split name, in :data:`SPLITS` order. Commands of the evaluation splits are drawn
        to differ from every training command where the templates allow it.
    """
    if recordings is not None:
        wanted = spec.voices.fsdd_train_speakers + spec.voices.fsdd_heldout_speakers
        for speaker in wanted:
            if speaker not in recordings:
                raise ValueError(
                    f"FSDD speaker {speaker!r} has no recordings (found: "
                    f"{', '.join(sorted(recordings))})"
                )
    plans: dict[str, list[Utterance]] = {}
    train_texts: frozenset[str] = frozenset()
    for split in SPLITS:
        size = getattr(spec.splits, split)
        avoid = frozenset() if split == "train" else train_texts
        texts = _commands(spec, split, size.commands, avoid)
        voices = _voices(spec, split, size.commands)
        source = FLITE if split == "heldout_synth" else ESPEAK
        utts = [Utterance(t, source, voice=v) for t, v in zip(texts, voices, strict=True)]
        if recordings is not None and size.fsdd_digits + size.fsdd_strings:
            utts += _fsdd(spec, split, recordings)
        plans[split] = [
            dataclasses.replace(
                u, augment=size.augment, seed=(spec.seed, SPLITS.index(split), _AUGMENT, i)
            )
            for i, u in enumerate(utts)
        ]
        if split == "train":
            train_texts = frozenset(texts)
    return plans


def plan_digest(spec: CorpusSpec, utterances: Sequence[Utterance]) -> str:
    """Hash of a split's plan and the settings that shape its features."""
    record = {
        "frontend": spec.frontend.to_dict(),
        "augment": dataclasses.asdict(spec.augment),
        "utterances": [[u.text, u.info(), list(u.seed)] for u in utterances],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
