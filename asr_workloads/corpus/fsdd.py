"""The Free Spoken Digit Dataset (FSDD): real recordings of spoken digits, by speaker.

Files are ``{digit}_{speaker}_{index}.wav`` (mono, 8 kHz, trimmed), in ``recordings/`` under
the dataset's folder. Besides isolated digits, digit *strings* ("five five five one two")
are made by joining several recordings of one speaker with short gaps, so the real voices
also appear in the connected-digit form the synthesized commands use. The data lives beside
the project (``../shared/data/fsdd``) and is read from there, never copied.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..wav import read_wav
from .numbers import DIGIT_WORDS

__all__ = [
    "FsddError",
    "Recording",
    "default_fsdd_dir",
    "digit_string",
    "find_recordings",
    "load_recording",
]

_NAME = re.compile(r"^([0-9])_([a-z]+)_([0-9]+)\.wav$")
#: Frame length (s) for estimating a recording's noise floor.
_FLOOR_FRAME_S = 0.02


class FsddError(ValueError):
    """A missing or malformed FSDD folder or file; names the path."""


@dataclasses.dataclass(frozen=True)
class Recording:
    """One FSDD recording.

    Parameters
    ----------
    path : pathlib.Path
        The WAV file.
    digit : int
        The digit spoken, 0 to 9.
    speaker : str
        Speaker name (``"jackson"``).
    index : int
        Take number of this digit by this speaker.
    """

    path: Path
    digit: int
    speaker: str
    index: int

    @property
    def text(self) -> str:
        """The transcript: the digit's word."""
        return DIGIT_WORDS[self.digit]


def default_fsdd_dir() -> Path:
    """``$EDGENPU_FSDD`` if set, else ``../shared/data/fsdd`` beside the repository."""
    if "EDGENPU_FSDD" in os.environ:
        return Path(os.environ["EDGENPU_FSDD"])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd"


def find_recordings(root: str | os.PathLike) -> dict[str, tuple[Recording, ...]]:
    """All recordings under ``root/recordings``, by speaker, sorted by (digit, index).

    Raises
    ------
    FsddError
        If the folder does not exist or holds a WAV file not named as FSDD names them.
    """
    folder = Path(root) / "recordings"
    if not folder.is_dir():
        raise FsddError(f"{folder}: FSDD recordings folder not found")
    by_speaker: dict[str, list[Recording]] = {}
    for path in sorted(folder.glob("*.wav")):
        match = _NAME.match(path.name)
        if not match:
            raise FsddError(f"{path}: not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav)")
        digit, speaker, index = int(match[1]), match[2], int(match[3])
        by_speaker.setdefault(speaker, []).append(Recording(path, digit, speaker, index))
    if not by_speaker:
        raise FsddError(f"{folder}: no WAV files")
    return {
        speaker: tuple(sorted(recs, key=lambda r: (r.digit, r.index)))
        for speaker, recs in sorted(by_speaker.items())
    }


def load_recording(recording: Recording) -> tuple[np.ndarray, int]:
    """Samples (float32) and rate of one recording."""
    return read_wav(recording.path)


def _noise_floor(audio: np.ndarray, rate: int) -> float:
    """RMS of the quietest 20 ms frames: the recording's background level."""
    n = max(1, round(_FLOOR_FRAME_S * rate))
    frames = audio[: len(audio) // n * n].reshape(-1, n) if len(audio) >= n else audio[None]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.percentile(rms, 5))


def digit_string(
    recordings: Sequence[Recording], gaps_s: Sequence[float], rng: np.random.Generator
) -> tuple[np.ndarray, int, str]:
    """Recordings of one speaker joined into one utterance of connected digits.

    The gaps are filled with Gaussian noise at the recordings' own background level, not
    digital zeros, which no microphone produces and which would stand out in the features.

    Parameters
    ----------
    recordings : sequence of Recording
        Two or more recordings of one speaker, in spoken order.
    gaps_s : sequence of float
        The pause (seconds) after each recording but the last: ``len(recordings) - 1``.
    rng : numpy.random.Generator
        Source of the gap noise.

    Returns
    -------
    tuple of (numpy.ndarray, int, str)
        float64 samples, their rate and the transcript ("five five one").
    """
    if not recordings:
        raise ValueError("recordings must not be empty")
    speakers = sorted({r.speaker for r in recordings})
    if len(speakers) != 1:
        raise ValueError(f"a digit string must be one speaker's, not {', '.join(speakers)}")
    if len(gaps_s) != len(recordings) - 1 or any(g < 0 for g in gaps_s):
        raise ValueError(
            f"gaps_s must hold {len(recordings) - 1} non-negative values, not {list(gaps_s)!r}"
        )
    pieces, rates = [], set()
    for rec in recordings:
        audio, rate = load_recording(rec)
        pieces.append(audio.astype(np.float64))
        rates.add(rate)
    if len(rates) != 1:
        raise FsddError(f"{recordings[0].path.parent}: recordings at different rates {rates}")
    rate = rates.pop()
    floor = float(np.median([_noise_floor(p, rate) for p in pieces]))
    joined = [pieces[0]]
    for gap, piece in zip(gaps_s, pieces[1:], strict=True):
        joined.append(rng.standard_normal(round(gap * rate)) * floor)
        joined.append(piece)
    text = " ".join(r.text for r in recordings)
    return np.concatenate(joined), rate, text
