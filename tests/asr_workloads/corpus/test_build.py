"""Building the tiny corpus end to end: contents, determinism, resuming, errors."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus.build import build_corpus
from edgenpu.asr_workloads.corpus.feature_cache import CorpusError, open_split
from edgenpu.asr_workloads.corpus.spec import SPLITS, CorpusSpecError, preset_spec
from edgenpu.asr_workloads.corpus.synthesizers import SynthesizerMissing
from edgenpu.asr_workloads.text import normalize

FSDD = Path(__file__).parents[3].parent / "shared" / "data" / "fsdd"
HAVE_FSDD = (FSDD / "recordings").is_dir()
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="espeak-ng and flite are needed (apt-get install espeak-ng flite)",
)


class Interrupted(Exception):
    """Stands for a build killed part way."""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    calls = []
    result = build_corpus(preset_spec("tiny"), out, jobs=2, progress=lambda *a: calls.append(a))
    return out, result, calls


def test_tiny_build_contents(built):
    out, result, calls = built
    spec = preset_spec("tiny")
    for split in SPLITS:
        size = getattr(spec.splits, split)
        if split == "heldout_speakers" and not HAVE_FSDD:
            assert result[split] is None
            continue
        expected = size.commands + (size.fsdd_digits + size.fsdd_strings) * HAVE_FSDD
        assert result[split] == expected
        data = open_split(out, split)
        assert len(data) == expected and data.frontend == spec.frontend
        for i in range(len(data)):
            feats = data.features(i)
            assert feats.shape == (data.frame_counts[i], 40) and feats.dtype == np.float16
            assert 30 < len(feats) < 1200 and np.all(np.isfinite(feats))
            assert normalize(data.text(i)) == data.text(i)
        sources = {data.info(i)["source"] for i in range(len(data))}
        if split == "heldout_synth":
            assert sources == {"flite"}
        elif split in ("heldout_voices",):
            assert sources == {"espeak-ng"}
        elif split == "heldout_speakers":
            assert {data.info(i)["speaker"] for i in range(len(data))} <= {"george", "lucas"}
    train = open_split(out, "train")
    for i in range(len(train)):
        info = train.info(i)
        assert {"source", "synth", "voice", "speaker", "augment"} <= set(info)
        if info["source"] == "fsdd":
            assert info["synth"] is None and info["speaker"] in ("jackson", "nicolas")
        else:
            assert info["synth"] == "espeak-ng" and info["voice"].startswith("en")
    voices = {train.info(i).get("voice") for i in range(len(train))} - {None}
    held = {open_split(out, "heldout_voices").info(i)["voice"] for i in range(3)}
    assert voices and not voices & held
    # Progress: from 0 to the total, never backwards; shards and temporaries are gone.
    total = sum(n for n in result.values() if n)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert not list(out.glob("*/shards-*")) and not list(out.rglob(".*tmp"))


def test_rebuild_is_a_no_op_and_a_fresh_build_is_identical(built, tmp_path):
    out, result, _ = built
    calls = []
    assert build_corpus(preset_spec("tiny"), out, progress=lambda *a: calls.append(a)) == result
    assert len(calls) == 1 and calls[0][0] == calls[0][1]
    again = tmp_path / "again"
    build_corpus(preset_spec("tiny"), again, jobs=1)
    for split in SPLITS:
        if result[split] is None:
            continue
        a, b = open_split(out, split), open_split(again, split)
        assert a.texts == b.texts
        assert [a.info(i) for i in range(len(a))] == [b.info(i) for i in range(len(b))]
        np.testing.assert_array_equal(a.frame_counts, b.frame_counts)
        for i in range(len(a)):
            np.testing.assert_array_equal(a.features(i), b.features(i))


def test_interrupted_build_resumes(built, tmp_path):
    out, result, _ = built

    def stop_after_two_shards(done, total):
        if done >= 10:
            raise Interrupted

    with pytest.raises(Interrupted):
        build_corpus(preset_spec("tiny"), tmp_path, jobs=1, progress=stop_after_two_shards)
    assert len(list(tmp_path.glob("train/shards-*/*.npz"))) == 2
    assert not (tmp_path / "train" / "index.json").exists()
    with pytest.raises(CorpusError, match="split 'train' is not built"):
        open_split(tmp_path, "train")
    calls = []
    assert build_corpus(preset_spec("tiny"), tmp_path, jobs=1, progress=lambda *a: calls.append(a))
    assert calls[0][0] == 10  # the two finished shards were not rendered again
    for split in SPLITS:
        if result[split] is not None:
            a, b = open_split(out, split), open_split(tmp_path, split)
            np.testing.assert_array_equal(
                np.concatenate([a.features(i) for i in range(len(a))]),
                np.concatenate([b.features(i) for i in range(len(b))]),
            )


def test_missing_synthesizer(tmp_path):
    with pytest.raises(SynthesizerMissing, match="'no-such-espeak' not found: install espeak-ng"):
        build_corpus(preset_spec("tiny"), tmp_path, espeak="no-such-espeak")
    assert not (tmp_path / "spec.yaml").exists()  # refused before anything was written


def test_uninstalled_voice_is_named(tmp_path):
    spec = preset_spec("tiny")
    heldout = dataclasses.replace(spec.voices.espeak_heldout, variants=("m7", "nosuchvariant"))
    bad = dataclasses.replace(spec, voices=dataclasses.replace(spec.voices, espeak_heldout=heldout))
    with pytest.raises(CorpusSpecError) as info:
        build_corpus(bad, tmp_path)
    assert str(info.value).startswith(
        "spec 'tiny': voices.espeak_heldout.variants: 'nosuchvariant' is not an installed "
        "espeak-ng voice"
    )


def test_another_spec_in_the_same_folder_is_refused(built):
    out, _, _ = built
    other = dataclasses.replace(preset_spec("tiny"), seed=8)
    with pytest.raises(CorpusError, match="the folder holds corpus 'tiny' of another spec"):
        build_corpus(other, out)


def test_without_fsdd_the_speaker_split_is_skipped(tmp_path):
    spec = preset_spec("tiny")
    small = dataclasses.replace(
        spec.splits,
        train=dataclasses.replace(spec.splits.train, commands=2),
        valid=dataclasses.replace(spec.splits.valid, commands=1),
        heldout_voices=dataclasses.replace(spec.splits.heldout_voices, commands=1),
        heldout_synth=dataclasses.replace(spec.splits.heldout_synth, commands=1),
    )
    spec = dataclasses.replace(spec, splits=small)
    with pytest.warns(UserWarning, match="FSDD data not found at .*nowhere"):
        result = build_corpus(spec, tmp_path / "c", jobs=1, fsdd_dir=tmp_path / "nowhere")
    assert result == {
        "train": 2, "valid": 1, "heldout_voices": 1, "heldout_synth": 1, "heldout_speakers": None
    }  # fmt: skip
    assert {open_split(tmp_path / "c", "train").info(i)["source"] for i in range(2)} == {
        "espeak-ng"
    }
    with pytest.raises(CorpusError) as info:
        open_split(tmp_path / "c", "heldout_speakers")
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(
        f"split 'heldout_speakers' was not built: FSDD data not found at {tmp_path / 'nowhere'}"
    )
