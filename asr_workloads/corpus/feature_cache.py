"""The on-disk feature cache: shards while building, one memory-mapped array per split after.

Layout of a corpus folder::

    spec.yaml                      the spec it was built from
    <split>/features.npy           float16 (total_frames, n_mels): all utterances' frames
    <split>/index.json             frame counts, offsets, transcripts, voices, plan digest
    <split>/shards-<digest>/*.npz  work in progress (removed once the split is complete)
    <split>/skipped.txt            why a split was not built (e.g. FSDD data absent)

Every file is written under a temporary name and renamed into place, so a reader never sees
half a file. ``index.json`` is written last: a split whose index is present is complete.
float16 halves the size; log-mel values (about -25 to 25) keep three significant digits,
far finer than the features' own noise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import atomic_output, write_atomically
from ..frontend import FrontEndConfig
from .spec import SPLITS

__all__ = [
    "CorpusError",
    "CorpusSplit",
    "assemble_split",
    "open_split",
    "read_index",
    "read_shard",
    "write_shard",
]

DTYPE = np.float16
INDEX = "index.json"
FEATURES = "features.npy"
SKIPPED = "skipped.txt"


class CorpusError(RuntimeError):
    """A corpus folder that lacks a split, or holds another spec's corpus; names the path."""


def write_shard(path: Path, features: Sequence[np.ndarray]) -> None:
    """Store a shard's utterances (each ``(T, n_mels)``) as one ``.npz``, atomically."""
    counts = np.array([len(f) for f in features], dtype=np.int64)
    frames = np.concatenate([np.asarray(f, dtype=DTYPE) for f in features])
    with atomic_output(path) as temp, open(temp, "wb") as handle:
        np.savez(handle, frames=frames, counts=counts)


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, counts)`` of a shard written by ``write_shard``."""
    with np.load(path) as data:
        return data["frames"], data["counts"]


def assemble_split(
    split_dir: Path, shards: Sequence[Path], index: dict[str, Any], n_mels: int
) -> None:
    """Concatenate shards into ``features.npy`` and write ``index.json`` (last).

    Parameters
    ----------
    split_dir : pathlib.Path
        The split's folder.
    shards : sequence of pathlib.Path
        The shards in utterance order.
    index : dict
        Per-utterance ``texts`` and ``info`` and the split's metadata; ``frame_counts`` and
        ``offsets`` are added here.
    n_mels : int
        Width of a frame.
    """
    counts = np.concatenate([read_shard(p)[1] for p in shards]) if shards else np.zeros(0, int)
    if len(counts) != len(index["texts"]):
        raise CorpusError(
            f"{split_dir}: shards hold {len(counts)} utterances, the plan {len(index['texts'])}"
        )
    total = int(counts.sum())
    tmp = split_dir / f".{FEATURES}.tmp"
    # At least one row: numpy cannot memory-map an empty file.
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=DTYPE, shape=(max(total, 1), n_mels))
    row = 0
    for path in shards:
        frames, _ = read_shard(path)
        out[row : row + len(frames)] = frames
        row += len(frames)
    out.flush()
    del out
    os.replace(tmp, split_dir / FEATURES)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
    index = {**index, "frame_counts": counts.tolist(), "offsets": offsets.tolist()}
    write_atomically(split_dir / INDEX, json.dumps(index).encode())


def read_index(split_dir: Path) -> dict[str, Any] | None:
    """The split's index, or ``None`` if the split is not complete."""
    try:
        return json.loads((split_dir / INDEX).read_text())
    except FileNotFoundError:
        return None


class CorpusSplit:
    """One split of a built corpus: features memory-mapped, transcripts and voices in memory.

    Parameters
    ----------
    split_dir : pathlib.Path
        The split's folder (see ``open_split``).
    """

    def __init__(self, split_dir: Path) -> None:
        index = read_index(split_dir)
        if index is None:
            raise CorpusError(f"{split_dir}: split not built (no {INDEX})")
        self.name: str = index["split"]
        self.frontend = FrontEndConfig.from_dict(index["frontend"])
        self.frame_counts = np.asarray(index["frame_counts"], dtype=np.int64)
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self._texts: list[str] = index["texts"]
        self._info: list[dict[str, Any]] = index["info"]
        self._frames = np.load(split_dir / FEATURES, mmap_mode="r")
        self._dir = split_dir

    def __reduce__(self) -> tuple:
        # Pickled by folder, not by value: a memory map would otherwise be pickled as a full
        # in-memory copy (e.g. when a data loader sends the dataset to its workers).
        return (CorpusSplit, (self._dir,))

    def __len__(self) -> int:
        return len(self._texts)

    def _check(self, i: int) -> int:
        if not isinstance(i, int | np.integer) or not -len(self) <= i < len(self):
            raise IndexError(f"utterance {i!r} out of range for {len(self)} in {self.name!r}")
        return int(i) % len(self)

    def features(self, i: int) -> np.ndarray:
        """Frames of utterance ``i``: a read-only float16 ``(T, n_mels)`` view of the map."""
        i = self._check(i)
        start = self.offsets[i]
        return self._frames[start : start + self.frame_counts[i]]

    def text(self, i: int) -> str:
        """Transcript of utterance ``i``."""
        return self._texts[self._check(i)]

    def info(self, i: int) -> dict[str, Any]:
        """Source (``espeak-ng``, ``flite``, ``fsdd``), voice or speaker and settings of ``i``."""
        return dict(self._info[self._check(i)])

    @property
    def texts(self) -> list[str]:
        """All transcripts, in order."""
        return list(self._texts)


def open_split(out_dir: str | os.PathLike, name: str) -> CorpusSplit:
    """Open split ``name`` of the corpus built in ``out_dir``.

    Raises
    ------
    CorpusError
        If the split does not exist, was skipped at build time (the message says why) or
        was not (completely) built.
    """
    if name not in SPLITS:
        raise CorpusError(f"no split {name!r} (splits: {', '.join(SPLITS)})")
    split_dir = Path(out_dir) / name
    if read_index(split_dir) is None:
        if (split_dir / SKIPPED).exists():
            reason = (split_dir / SKIPPED).read_text().strip()
            raise CorpusError(f"{split_dir}: split {name!r} was not built: {reason}")
        raise CorpusError(f"{split_dir}: split {name!r} is not built; run build_corpus first")
    return CorpusSplit(split_dir)
