"""Text to speech with the espeak-ng and flite programs, run as subprocesses.

Two synthesizers with unrelated engines (espeak-ng's formant/Klatt synthesis, flite's
diphone and statistical-parametric voices) let the corpus hold one out entirely: a model
trained on espeak-ng voices and tested on flite shows whether it learned speech or one
synthesizer's artefacts. Each voice is a small frozen dataclass that names every setting, so
an utterance's voice can be stored in the corpus index and rendered again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..wav import read_wav

__all__ = [
    "ESPEAK",
    "FLITE",
    "EspeakVoice",
    "FliteVoice",
    "SynthesizerError",
    "SynthesizerMissing",
    "espeak_languages",
    "espeak_variants",
    "flite_voices",
    "render",
]

ESPEAK = "espeak-ng"
FLITE = "flite"
#: The Debian package that provides each program, for the "install it" message.
_PACKAGES = {ESPEAK: "espeak-ng", FLITE: "flite"}
#: flite's ``awb_time`` is a limited-domain voice that can only say clock times.
_LIMITED_DOMAIN_FLITE = frozenset({"awb_time"})


class SynthesizerError(RuntimeError):
    """A synthesizer program failed or gave output that is not audio; names the command."""


class SynthesizerMissing(SynthesizerError):
    """The synthesizer program is not installed; the message names the package to install."""


@dataclasses.dataclass(frozen=True)
class EspeakVoice:
    """An espeak-ng voice and its settings.

    Parameters
    ----------
    language : str
        An English voice of ``espeak-ng --voices=en`` (``"en-us"``, ``"en-gb-scotland"``).
    variant : str
        A voice variant of ``espeak-ng --voices=variant`` (``"m3"``, ``"f2"``, ``"klatt4"``).
    speed : int
        Words per minute, 80 to 450 (espeak-ng's default is 175).
    pitch : int
        Base pitch, 0 to 99 (default 50).
    """

    language: str
    variant: str
    speed: int = 175
    pitch: int = 50

    def __post_init__(self) -> None:
        for name in ("language", "variant"):
            _check_name(name, getattr(self, name))
        _check_int_range("speed", self.speed, 80, 450)
        _check_int_range("pitch", self.pitch, 0, 99)

    @property
    def name(self) -> str:
        """The ``-v`` argument: ``language+variant``."""
        return f"{self.language}+{self.variant}"


@dataclasses.dataclass(frozen=True)
class FliteVoice:
    """A flite voice and its prosody settings.

    Parameters
    ----------
    voice : str
        A voice of ``flite -lv`` (``"kal"``, ``"slt"``, ``"rms"``, ``"awb"``, ``"kal16"``).
    duration_stretch : float
        Slows speech down (> 1) or speeds it up (< 1); 0.5 to 2.
    f0_mean : float
        Target mean pitch in Hz (flite's ``int_f0_target_mean``), 50 to 400.
    """

    voice: str
    duration_stretch: float = 1.0
    f0_mean: float = 110.0

    def __post_init__(self) -> None:
        _check_name("voice", self.voice)
        _check_float_range("duration_stretch", self.duration_stretch, 0.5, 2.0)
        _check_float_range("f0_mean", self.f0_mean, 50.0, 400.0)

    @property
    def name(self) -> str:
        """The flite voice name."""
        return self.voice


def _check_name(name: str, value: object) -> None:
    # Names go on a command line: refuse anything that could read as an option or a path.
    if not isinstance(value, str) or not value or value.startswith("-") or "/" in value:
        raise ValueError(f"{name} must be a voice name, not {value!r}")


def _check_int_range(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], not {value!r}")


def _check_float_range(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], not {value!r}")


def _run(command: list[str], program: str, stdin: str | None = None) -> bytes:
    """Run ``command``; a missing executable becomes ``SynthesizerMissing``."""
    try:
        result = subprocess.run(command, input=stdin and stdin.encode(), capture_output=True)
    except FileNotFoundError:
        raise SynthesizerMissing(
            f"{command[0]!r} not found: install {program} (Debian package "
            f"{_PACKAGES[program]!r}: apt-get install {_PACKAGES[program]})"
        ) from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise SynthesizerError(
            f"{' '.join(command[:4])} ... exited with {result.returncode}: "
            f"{message[-1] if message else 'no message'}"
        )
    return result.stdout


def _parse_streamed_wav(data: bytes, what: str) -> tuple[np.ndarray, int]:
    """Samples and rate of a 16-bit mono WAV written to a pipe.

    espeak-ng cannot seek back on a pipe to fill in the sizes, so its header claims about
    2**31 bytes: the data chunk is taken to run to the end of the stream instead.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthesizerError(f"{what}: output is not a WAV stream ({len(data)} bytes)")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            bits = struct.unpack("<H", data[body + 14 : body + 16])[0]
            if (fmt, channels, bits) != (1, 1, 16):
                raise SynthesizerError(
                    f"{what}: expected mono 16-bit PCM, got format {fmt}, {channels} "
                    f"channels, {bits} bits"
                )
        elif chunk == b"data":
            if rate is None:
                raise SynthesizerError(f"{what}: WAV data before its format chunk")
            pcm = data[body : len(data) - (len(data) - body) % 2]
            return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768, rate
        pos = body + size + size % 2
    raise SynthesizerError(f"{what}: WAV stream without a data chunk")


def _render_espeak(text: str, voice: EspeakVoice, executable: str) -> tuple[np.ndarray, int]:
    command = [executable, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch)]
    # The text goes through stdin so that no transcript can be mistaken for an option.
    data = _run([*command, "--stdout"], ESPEAK, stdin=text)
    return _parse_streamed_wav(data, f"{ESPEAK} -v {voice.name}")


def _render_flite(text: str, voice: FliteVoice, executable: str) -> tuple[np.ndarray, int]:
    # flite seeks back to finish the WAV header, so it writes a file, not a pipe.
    with tempfile.TemporaryDirectory(prefix="edgenpu-flite-") as tmp:
        text_file, wav_file = Path(tmp) / "text.txt", Path(tmp) / "out.wav"
        text_file.write_text(text + "\n")
        _run(
            [
                executable,
                "-voice",
                voice.voice,
                "--setf",
                f"duration_stretch={voice.duration_stretch:.4f}",
                "--setf",
                f"int_f0_target_mean={voice.f0_mean:.2f}",
                "-f",
                os.fspath(text_file),
                "-o",
                os.fspath(wav_file),
            ],
            FLITE,
        )
        if not wav_file.exists():
            raise SynthesizerError(f"{FLITE} -voice {voice.voice}: wrote no audio")
        return read_wav(wav_file)


def render(
    text: str, voice: EspeakVoice | FliteVoice, executable: str | None = None
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``.

    Parameters
    ----------
    text : str
        What to say (one line).
    voice : EspeakVoice or FliteVoice
        Which synthesizer, voice and settings.
    executable : str or None
        The program to run; ``None`` means ``espeak-ng`` or ``flite`` found on ``PATH``.

    Returns
    -------
    tuple of (numpy.ndarray, int)
        float32 samples in ``[-1, 1)`` and their rate in Hz (22050 for espeak-ng; 8000 or
        16000 for flite, depending on the voice).

    Raises
    ------
    SynthesizerMissing
        If the program is not installed.
    SynthesizerError
        If it fails or gives no audio.
    """
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        raise ValueError(f"text must be one non-empty line, not {text!r}")
    if isinstance(voice, EspeakVoice):
        audio, rate = _render_espeak(text, voice, executable or ESPEAK)
    elif isinstance(voice, FliteVoice):
        audio, rate = _render_flite(text, voice, executable or FLITE)
    else:
        raise TypeError(f"voice must be an EspeakVoice or FliteVoice, not {type(voice).__name__}")
    if len(audio) == 0:
        raise SynthesizerError(f"{voice.name}: no audio for {text!r}")
    return audio, rate


@functools.cache
def espeak_languages(executable: str = ESPEAK) -> tuple[str, ...]:
    """English voices espeak-ng can speak with, without MBROLA (which needs extra packages)."""
    table = _run([executable, "--voices=en"], ESPEAK).decode()
    names = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        # Columns: priority, language, age/gender, name, file, other languages. MBROLA voices
        # ("mb/") need the mbrola program; "!v/" entries are variants, not languages.
        if len(fields) >= 5 and not fields[4].startswith(("mb/", "!v/")):
            names.append(fields[1])
    return tuple(dict.fromkeys(names))


@functools.cache
def espeak_variants(executable: str = ESPEAK) -> tuple[str, ...]:
    """Voice variants (the part after ``+``), as named by their files in ``!v/``."""
    table = _run([executable, "--voices=variant"], ESPEAK).decode()
    names = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        # Columns as for languages; a file name with a space ("!v/Mr serious") cannot be
        # given after "+" on the command line, so such variants are left out.
        usable = len(fields) == 5 or (len(fields) > 5 and fields[5].startswith("("))
        if len(fields) >= 5 and fields[4].startswith("!v/") and usable:
            names.append(fields[4][3:])
    return tuple(sorted(set(names)))


@functools.cache
def flite_voices(executable: str = FLITE) -> tuple[str, ...]:
    """General-purpose flite voices (``flite -lv`` without limited-domain ones)."""
    listing = _run([executable, "-lv"], FLITE).decode()
    names = listing.split(":", 1)[-1].split()
    return tuple(name for name in names if name not in _LIMITED_DOMAIN_FLITE)
