"""The build plan: determinism and which voices and speakers each split may use."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgenpu.asr_workloads.corpus.fsdd import find_recordings
from edgenpu.asr_workloads.corpus.plan import plan_corpus, plan_digest
from edgenpu.asr_workloads.corpus.spec import SPLITS, preset_spec
from edgenpu.asr_workloads.text import normalize

FSDD = Path(__file__).parents[3].parent / "shared" / "data" / "fsdd"


def _spec(**sizes):
    spec = preset_spec("tiny")
    splits = dataclasses.replace(
        spec.splits,
        **{
            name: dataclasses.replace(getattr(spec.splits, name), **kw)
            for name, kw in sizes.items()
        },
    )
    return dataclasses.replace(spec, splits=splits)


def test_same_seed_same_plan_and_split_streams_are_independent():
    spec = _spec(train={"commands": 300}, valid={"commands": 100})
    a, b = plan_corpus(spec, None), plan_corpus(spec, None)
    assert a == b
    assert [plan_digest(spec, a[s]) for s in SPLITS] == [plan_digest(spec, b[s]) for s in SPLITS]
    reseeded = plan_corpus(dataclasses.replace(spec, seed=spec.seed + 1), None)
    assert [u.text for u in reseeded["train"]] != [u.text for u in a["train"]]
    # Growing valid leaves train as it was, and valid's first utterances too.
    grown = plan_corpus(_spec(train={"commands": 300}, valid={"commands": 150}), None)
    assert grown["train"] == a["train"]
    assert grown["valid"][:100] == a["valid"][:100]


def test_voices_per_split():
    spec = _spec(
        train={"commands": 400}, valid={"commands": 100}, heldout_voices={"commands": 200},
        heldout_synth={"commands": 100},
    )  # fmt: skip
    plans = plan_corpus(spec, None)
    train_voices = {(u.voice.language, u.voice.variant) for u in plans["train"]}
    held = {(u.voice.language, u.voice.variant) for u in plans["heldout_voices"]}
    assert len(train_voices) > 300  # spread over the 630 combinations
    assert not train_voices & held
    assert {u.source for u in plans["train"] + plans["valid"]} == {"espeak-ng"}
    assert {u.source for u in plans["heldout_synth"]} == {"flite"}
    assert {u.voice.voice for u in plans["heldout_synth"]} <= set(spec.voices.flite)
    speeds = [u.voice.speed for u in plans["train"]]
    assert min(speeds) >= 140 and max(speeds) <= 210 and len(set(speeds)) > 30
    # Evaluation commands avoid the training texts where possible.
    train_texts = {u.text for u in plans["train"]}
    assert sum(u.text in train_texts for u in plans["valid"]) <= 3
    assert plans["heldout_speakers"] == []  # no FSDD data given
    for utts in plans.values():
        assert all(normalize(u.text) == u.text for u in utts)


@pytest.mark.skipif(not (FSDD / "recordings").is_dir(), reason=f"FSDD data not found at {FSDD}")
def test_fsdd_speakers_and_takes():
    spec = _spec(
        train={"fsdd_digits": 900, "fsdd_strings": 50}, valid={"fsdd_digits": 100},
        heldout_speakers={"fsdd_digits": 30, "fsdd_strings": 30},
    )  # fmt: skip
    plans = plan_corpus(spec, find_recordings(FSDD))
    train = [u for u in plans["train"] if u.source == "fsdd"]
    assert {u.speaker for u in train} == {"jackson", "nicolas"}
    digits = [u.recordings[0] for u in train[:900]]
    assert len(set(digits)) == 900  # every training take once before any twice
    valid = {u.recordings[0] for u in plans["valid"] if u.source == "fsdd"}
    assert not valid & {r for u in train for r in u.recordings}
    assert {u.speaker for u in plans["heldout_speakers"]} <= {"george", "lucas"}
    strings = [u for u in plans["heldout_speakers"] if len(u.recordings) > 1]
    assert len(strings) == 30
    for u in strings:
        assert 2 <= len(u.recordings) <= 7 and len(u.gaps_s) == len(u.recordings) - 1
        assert all(name.split("_")[1] == u.speaker for name in u.recordings)
        spoken = u.text.split()
        assert len(spoken) == len(u.recordings)


def test_unknown_fsdd_speaker(tmp_path):
    spec = _spec(train={"fsdd_digits": 1})
    with pytest.raises(ValueError, match="FSDD speaker 'jackson' has no recordings"):
        plan_corpus(spec, {"ann": ()})
