"""The FSDD reader: recordings by speaker, and digit strings made of one speaker's takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus.fsdd import FsddError, digit_string, find_recordings
from edgenpu.asr_workloads.wav import read_wav, write_wav

FSDD = Path(__file__).parents[3].parent / "shared" / "data" / "fsdd"
needs_fsdd = pytest.mark.skipif(
    not (FSDD / "recordings").is_dir(), reason=f"FSDD data not found at {FSDD}"
)


@needs_fsdd
def test_real_recordings_by_speaker():
    recs = find_recordings(FSDD)
    assert set(recs) == {"george", "jackson", "lucas", "nicolas"}
    for speaker, takes in recs.items():
        assert len(takes) == 500
        assert all(r.speaker == speaker for r in takes)
        assert [r.digit for r in takes[::50]] == list(range(10))


@needs_fsdd
def test_real_digit_string():
    recs = find_recordings(FSDD)["jackson"]
    takes = [recs[50 * 5], recs[50 * 5 + 1], recs[50 * 1]]
    audio, rate, text = digit_string(takes, [0.1, 0.2], np.random.default_rng(0))
    assert text == "five five one"
    assert rate == 8000
    lengths = [len(read_wav(r.path)[0]) for r in takes]
    assert len(audio) == sum(lengths) + 800 + 1600
    gap = audio[lengths[0] : lengths[0] + 800]
    assert 0 < np.std(gap) < 0.05  # background-level noise, not digital silence


def _fake_fsdd(root: Path) -> None:
    (root / "recordings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for digit in (1, 2):
        for index in range(2):
            tone = 0.5 * np.sin(np.arange(800) * (digit + 1) / 10) + 0.001 * rng.normal(size=800)
            write_wav(root / "recordings" / f"{digit}_ann_{index}.wav", tone, 8000)
    write_wav(root / "recordings" / "1_bob_0.wav", np.zeros(800), 8000)


def test_digit_string_layout(tmp_path):
    _fake_fsdd(tmp_path)
    recs = find_recordings(tmp_path)
    assert [(r.digit, r.index) for r in recs["ann"]] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    audio, rate, text = digit_string(recs["ann"][::-1], [0.05, 0.0, 0.1], np.random.default_rng(1))
    assert text == "two two one one"
    assert len(audio) == 4 * 800 + 400 + 800
    with pytest.raises(ValueError, match="a digit string must be one speaker's, not ann, bob"):
        digit_string([recs["ann"][0], recs["bob"][0]], [0.1], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"gaps_s must hold 1 non-negative values, not \[\]"):
        digit_string(recs["ann"][:2], [], np.random.default_rng(0))


def test_bad_folders(tmp_path):
    with pytest.raises(FsddError, match="FSDD recordings folder not found"):
        find_recordings(tmp_path / "nowhere")
    (tmp_path / "recordings").mkdir()
    write_wav(tmp_path / "recordings" / "hello.wav", np.zeros(10), 8000)
    with pytest.raises(FsddError, match=r"hello.wav: not an FSDD file name"):
        find_recordings(tmp_path)
