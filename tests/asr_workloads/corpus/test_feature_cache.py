"""The feature cache: atomic shards, the memory-mapped split, and open_split's errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus.feature_cache import (
    CorpusError,
    assemble_split,
    open_split,
    read_shard,
    write_shard,
)
from edgenpu.asr_workloads.frontend import FrontEndConfig

FRONTEND = FrontEndConfig(sample_rate=8000, n_mels=4)


def _utterances(rng, counts):
    return [rng.normal(size=(n, 4)).astype(np.float32) for n in counts]


def test_shard_round_trip_leaves_no_temporary(tmp_path):
    feats = _utterances(np.random.default_rng(0), [3, 0, 5])
    write_shard(tmp_path / "00000.npz", feats)
    frames, counts = read_shard(tmp_path / "00000.npz")
    assert frames.dtype == np.float16 and counts.tolist() == [3, 0, 5]
    np.testing.assert_array_equal(frames, np.concatenate(feats).astype(np.float16))
    assert [p.name for p in tmp_path.iterdir()] == ["00000.npz"]


def test_assembled_split_is_a_memory_map(tmp_path):
    rng = np.random.default_rng(1)
    split_dir = tmp_path / "valid"
    split_dir.mkdir()
    shards = [split_dir / "a.npz", split_dir / "b.npz"]
    first, second = _utterances(rng, [2, 7]), _utterances(rng, [4])
    write_shard(shards[0], first)
    write_shard(shards[1], second)
    index = {
        "split": "valid",
        "digest": "x",
        "frontend": FRONTEND.to_dict(),
        "texts": ["one", "two", "three"],
        "info": [{"source": "fsdd", "speaker": s} for s in ("a", "b", "c")],
    }
    assemble_split(split_dir, shards, index, 4)
    split = open_split(tmp_path, "valid")
    assert len(split) == 3 and split.frontend == FRONTEND
    assert split.frame_counts.tolist() == [2, 7, 4]
    for i, expected in enumerate(first + second):
        got = split.features(i)
        assert got.dtype == np.float16 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected.astype(np.float16))
        assert isinstance(got, np.memmap) and not got.flags.writeable
    assert split.text(-1) == "three" and split.info(1) == {"source": "fsdd", "speaker": "b"}
    with pytest.raises(IndexError, match="utterance 3 out of range for 3 in 'valid'"):
        split.features(3)
    # Pickles by folder (small), and the copy maps the same file.
    data = pickle.dumps(split)
    assert len(data) < 500
    copy = pickle.loads(data)
    assert isinstance(copy.features(1), np.memmap) and copy.texts == split.texts
    np.testing.assert_array_equal(copy.features(1), split.features(1))


def test_open_split_errors(tmp_path):
    with pytest.raises(CorpusError, match="no split 'test' \\(splits: train, valid, "):
        open_split(tmp_path, "test")
    with pytest.raises(CorpusError) as info:
        open_split(tmp_path, "train")
    assert str(info.value) == (
        f"{tmp_path / 'train'}: split 'train' is not built; run build_corpus first"
    )
    (tmp_path / "heldout_speakers").mkdir()
    (tmp_path / "heldout_speakers" / "skipped.txt").write_text("FSDD data not found at x\n")
    with pytest.raises(CorpusError) as info:
        open_split(tmp_path, "heldout_speakers")
    assert str(info.value).endswith(
        "split 'heldout_speakers' was not built: FSDD data not found at x"
    )
