"""The corpus specification: everything a build depends on, loaded from YAML.

A spec fixes the seed, the front end, the augmentation ranges, which voices and speakers
each split may use, and how many utterances each split holds; the same spec always gives
the same texts and voice choices. Presets live in ``presets/*.yaml`` (``tiny`` for tests,
``default`` for training). Unknown keys are rejected with the file and the key's full path,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from ..frontend import FrontEndConfig
from .augment import AugmentConfig

__all__ = [
    "SPLITS",
    "CorpusSpec",
    "CorpusSpecError",
    "EspeakVoices",
    "SplitSize",
    "Splits",
    "VoiceSpec",
    "load_spec",
    "preset_names",
    "preset_spec",
    "spec_from_dict",
]

#: Split names, in build order.
SPLITS = ("train", "valid", "heldout_voices", "heldout_synth", "heldout_speakers")
#: Which utterance kinds each split may hold (its voices follow from its name).
_KINDS = {
    "train": ("commands", "fsdd_digits", "fsdd_strings"),
    "valid": ("commands", "fsdd_digits", "fsdd_strings"),
    "heldout_voices": ("commands",),
    "heldout_synth": ("commands",),
    "heldout_speakers": ("fsdd_digits", "fsdd_strings"),
}
PRESETS = Path(__file__).parent / "presets"


class CorpusSpecError(ValueError):
    """A bad corpus spec; the message names the file and the key."""


def _count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return value


def _names(name: str, value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list | tuple)
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"{name} must be a list of distinct names, not {value!r}")
    return tuple(value)


def _pair(name: str, value: object, kind: type = float) -> tuple[Any, Any]:
    ok_types = (int,) if kind is int else (int, float)
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, ok_types) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
    ):
        raise ValueError(f"{name} must be a pair [lo, hi] with lo <= hi, not {value!r}")
    return kind(value[0]), kind(value[1])


@dataclasses.dataclass(frozen=True)
class EspeakVoices:
    """espeak-ng voices as every combination of a language and a variant.

    Parameters
    ----------
    languages : tuple of str
        English voices (``espeak-ng --voices=en``), e.g. ``"en-us"``.
    variants : tuple of str
        Variants (``espeak-ng --voices=variant``), e.g. ``"m3"``.
    """

    languages: tuple[str, ...]
    variants: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("languages", "variants"):
            object.__setattr__(self, name, _names(name, getattr(self, name)))
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")

    def combinations(self) -> tuple[tuple[str, str], ...]:
        """Every ``(language, variant)`` pair, in a fixed order."""
        return tuple((lang, var) for lang in self.languages for var in self.variants)


@dataclasses.dataclass(frozen=True)
class VoiceSpec:
    """Which voices and speakers the splits use, and the ranges of their settings.

    Parameters
    ----------
    espeak_train : EspeakVoices
        Voices of ``train`` and ``valid``.
    espeak_heldout : EspeakVoices
        Voices of ``heldout_voices``; no combination may also be in ``espeak_train``.
    espeak_speed, espeak_pitch : tuple of int
        Ranges of words per minute and of base pitch (0-99), drawn per utterance.
    flite : tuple of str
        flite voices, used only by ``heldout_synth``.
    flite_duration_stretch, flite_f0_mean : tuple of float
        Ranges of flite's duration stretch and target mean pitch (Hz).
    fsdd_train_speakers, fsdd_heldout_speakers : tuple of str
        FSDD speakers of ``train``/``valid`` and of ``heldout_speakers``; disjoint.
    fsdd_valid_from_index : int
        Takes of the training speakers with this index or above are kept for ``valid``
        (and never used in ``train``).
    fsdd_string_length : tuple of int
        Range of the number of digits in an FSDD digit string.
    fsdd_gap_s : tuple of float
        Range of the pause between digits of a string, in seconds.
    """

    espeak_train: EspeakVoices
    espeak_heldout: EspeakVoices
    espeak_speed: tuple[int, int] = (140, 210)
    espeak_pitch: tuple[int, int] = (25, 75)
    flite: tuple[str, ...] = ("kal", "kal16", "awb", "rms", "slt")
    flite_duration_stretch: tuple[float, float] = (0.85, 1.2)
    flite_f0_mean: tuple[float, float] = (90.0, 200.0)
    fsdd_train_speakers: tuple[str, ...] = ("jackson", "nicolas")
    fsdd_heldout_speakers: tuple[str, ...] = ("george", "lucas")
    fsdd_valid_from_index: int = 45
    fsdd_string_length: tuple[int, int] = (2, 7)
    fsdd_gap_s: tuple[float, float] = (0.05, 0.3)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "espeak_speed", _pair("espeak_speed", self.espeak_speed, int))
        set_(self, "espeak_pitch", _pair("espeak_pitch", self.espeak_pitch, int))
        set_(self, "fsdd_string_length", _pair("fsdd_string_length", self.fsdd_string_length, int))
        for name in ("flite_duration_stretch", "flite_f0_mean", "fsdd_gap_s"):
            set_(self, name, _pair(name, getattr(self, name)))
        for name in ("flite", "fsdd_train_speakers", "fsdd_heldout_speakers"):
            set_(self, name, _names(name, getattr(self, name)))
        _count("fsdd_valid_from_index", self.fsdd_valid_from_index)
        # The synthesizers' own limits (see EspeakVoice, FliteVoice), checked here so that the
        # error names the spec key rather than surfacing when a voice is drawn.
        for name, (low, high) in {
            "espeak_speed": (80, 450),
            "espeak_pitch": (0, 99),
            "flite_duration_stretch": (0.5, 2.0),
            "flite_f0_mean": (50.0, 400.0),
        }.items():
            lo, hi = getattr(self, name)
            if lo < low or hi > high:
                raise ValueError(f"{name} must lie in [{low:g}, {high:g}], not {[lo, hi]}")
        if self.fsdd_string_length[0] < 2:
            raise ValueError(
                f"fsdd_string_length must start at 2 or more, not {list(self.fsdd_string_length)}"
            )
        if self.fsdd_gap_s[0] < 0:
            raise ValueError(f"fsdd_gap_s must be non-negative, not {list(self.fsdd_gap_s)}")
        shared = set(self.espeak_train.combinations()) & set(self.espeak_heldout.combinations())
        if shared:
            lang, var = min(shared)
            raise ValueError(
                f"espeak_heldout must not share a voice with espeak_train, but both hold "
                f"{lang}+{var}"
            )
        both = set(self.fsdd_train_speakers) & set(self.fsdd_heldout_speakers)
        if both:
            raise ValueError(
                f"FSDD speaker {min(both)!r} is in both fsdd_train_speakers and "
                f"fsdd_heldout_speakers"
            )


@dataclasses.dataclass(frozen=True)
class SplitSize:
    """How many utterances of each kind a split holds.

    Parameters
    ----------
    commands : int
        Synthesized commands (voices from the split's name).
    fsdd_digits : int
        Isolated FSDD digits (recordings reused in turn if more are asked for than exist).
    fsdd_strings : int
        FSDD digit strings.
    augment : bool
        Whether the audio augmentations are applied.
    """

    commands: int = 0
    fsdd_digits: int = 0
    fsdd_strings: int = 0
    augment: bool = True

    def __post_init__(self) -> None:
        for name in ("commands", "fsdd_digits", "fsdd_strings"):
            _count(name, getattr(self, name))
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment must be true or false, not {self.augment!r}")

    @property
    def total(self) -> int:
        """All utterances of the split."""
        return self.commands + self.fsdd_digits + self.fsdd_strings


@dataclasses.dataclass(frozen=True)
class Splits:
    """The size of each split (see :data:`SPLITS` for what each one holds)."""

    train: SplitSize = SplitSize()
    valid: SplitSize = SplitSize()
    heldout_voices: SplitSize = SplitSize()
    heldout_synth: SplitSize = SplitSize()
    heldout_speakers: SplitSize = SplitSize()

    def __post_init__(self) -> None:
        for split, kinds in _KINDS.items():
            size = getattr(self, split)
            for kind in ("commands", "fsdd_digits", "fsdd_strings"):
                if kind not in kinds and getattr(size, kind):
                    raise ValueError(f"{split} cannot hold {kind} (only {', '.join(kinds)})")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """Everything a corpus build depends on.

    Parameters
    ----------
    name : str
        A label (the preset's name).
    seed : int
        Seed of every random choice: texts, voices, augmentation.
    frontend : FrontEndConfig
        Feature settings; the corpus stores unstacked frames (stacking is the model's).
    augment : AugmentConfig
        Audio augmentation ranges.
    voices : VoiceSpec
        Voice and speaker assignment.
    splits : Splits
        Split sizes.
    shard_size : int
        Utterances per shard: the unit of parallel work and of resuming.
    """

    name: str
    seed: int
    frontend: FrontEndConfig
    augment: AugmentConfig
    voices: VoiceSpec
    splits: Splits
    shard_size: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        if not isinstance(self.shard_size, int) or self.shard_size < 1:
            raise ValueError(f"shard_size must be a positive integer, not {self.shard_size!r}")
        if (self.frontend.stack, self.frontend.subsample) != (1, 1):
            raise ValueError(
                "frontend.stack and frontend.subsample must be 1 (the model stacks frames), "
                f"not {self.frontend.stack} and {self.frontend.subsample}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready values; ``spec_from_dict`` reads them back."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """A hash of the whole spec (hex), to tell whether a cache was built from it."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fields(cls: type, data: object, source: str, where: str) -> dict[str, Any]:
    """``data`` checked to be a mapping whose keys are all fields of ``cls``."""
    if not isinstance(data, dict):
        raise CorpusSpecError(f"{source}: {where or 'spec'} must be a mapping, not {data!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise CorpusSpecError(f"{source}: unknown key {path!r} (known: {', '.join(known)})")
    return dict(data)


def _make(cls: type, kwargs: dict[str, Any], source: str, where: str) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, CorpusSpecError):
            raise
        raise CorpusSpecError(f"{source}: {where or 'spec'}: {error}") from None


def spec_from_dict(data: dict[str, Any], source: str = "<spec>") -> CorpusSpec:
    """Build a spec from plain data, rejecting unknown keys by file (``source``) and key."""
    top = _fields(CorpusSpec, data, source, "")
    for key in ("name", "seed", "frontend", "voices", "splits"):
        if key not in top:
            raise CorpusSpecError(f"{source}: missing key {key!r}")
    fe = _fields(FrontEndConfig, top["frontend"], source, "frontend")
    top["frontend"] = _make(FrontEndConfig, fe, source, "frontend")
    aug = _fields(AugmentConfig, top.get("augment", {}), source, "augment")
    top["augment"] = _make(AugmentConfig, aug, source, "augment")
    voices = _fields(VoiceSpec, top["voices"], source, "voices")
    for key in ("espeak_train", "espeak_heldout"):
        if key not in voices:
            raise CorpusSpecError(f"{source}: missing key 'voices.{key}'")
        where = f"voices.{key}"
        voices[key] = _make(EspeakVoices, _fields(EspeakVoices, voices[key], source, where),
                            source, where)  # fmt: skip
    top["voices"] = _make(VoiceSpec, voices, source, "voices")
    splits = _fields(Splits, top["splits"], source, "splits")
    for key, value in splits.items():
        where = f"splits.{key}"
        splits[key] = _make(SplitSize, _fields(SplitSize, value, source, where), source, where)
    top["splits"] = _make(Splits, splits, source, "splits")
    return _make(CorpusSpec, top, source, "")


def load_spec(path: str | os.PathLike) -> CorpusSpec:
    """Read a spec from a YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CorpusSpecError(f"{path}: not valid YAML ({error})") from None
    return spec_from_dict(data, str(path))


def preset_names() -> tuple[str, ...]:
    """Names of the bundled presets."""
    return tuple(sorted(p.stem for p in PRESETS.glob("*.yaml")))


def preset_spec(name: str) -> CorpusSpec:
    """A bundled preset (``"tiny"`` or ``"default"``)."""
    if name not in preset_names():
        raise CorpusSpecError(f"no corpus preset {name!r} (presets: {', '.join(preset_names())})")
    return load_spec(PRESETS / f"{name}.yaml")
