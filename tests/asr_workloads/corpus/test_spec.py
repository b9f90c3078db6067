"""Corpus specs from YAML: presets, and one clear error naming file and key per mistake."""

from __future__ import annotations

import copy

import pytest
import yaml

from edgenpu.asr_workloads.corpus.spec import (
    SPLITS,
    CorpusSpecError,
    load_spec,
    preset_names,
    preset_spec,
    spec_from_dict,
)


def test_presets():
    assert set(preset_names()) >= {"tiny", "default"}
    default, tiny = preset_spec("default"), preset_spec("tiny")
    fe = default.frontend
    assert (fe.sample_rate, fe.n_mels, fe.stack, fe.subsample) == (16000, 56, 1, 1)
    assert 20_000 <= default.splits.train.total <= 40_000
    assert sum(getattr(tiny.splits, s).total for s in SPLITS) < 60
    assert tiny.voices == default.voices
    # Held-out voices share no language+variant combination with training voices.
    v = default.voices
    assert not set(v.espeak_train.combinations()) & set(v.espeak_heldout.combinations())


def test_round_trip_and_digest(tmp_path):
    spec = preset_spec("tiny")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict()))
    back = load_spec(path)
    assert back == spec and back.digest() == spec.digest()
    other = spec.to_dict()
    other["seed"] += 1
    assert spec_from_dict(other).digest() != spec.digest()


def _bad(tmp_path, edit):
    data = copy.deepcopy(preset_spec("tiny").to_dict())
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CorpusSpecError) as info:
        load_spec(path)
    return str(info.value).replace(str(path), "bad.yaml")


def test_unknown_keys_are_named_with_their_path(tmp_path):
    assert _bad(tmp_path, lambda d: d.update(sed=1)).startswith("bad.yaml: unknown key 'sed'")
    message = _bad(tmp_path, lambda d: d["splits"]["train"].update(comands=5))
    assert message == (
        "bad.yaml: unknown key 'splits.train.comands' "
        "(known: commands, fsdd_digits, fsdd_strings, augment)"
    )
    message = _bad(tmp_path, lambda d: d["splits"].update(test={}))
    assert message.startswith("bad.yaml: unknown key 'splits.test'")
    message = _bad(tmp_path, lambda d: d["voices"]["espeak_train"].update(voice=[]))
    assert message.startswith("bad.yaml: unknown key 'voices.espeak_train.voice'")
    message = _bad(tmp_path, lambda d: d["frontend"].update(nmels=40))
    assert message.startswith("bad.yaml: unknown key 'frontend.nmels'")


def test_bad_values_are_named(tmp_path):
    message = _bad(tmp_path, lambda d: d["splits"]["train"].update(commands=-1))
    assert message == "bad.yaml: splits.train: commands must be a non-negative integer, not -1"
    message = _bad(tmp_path, lambda d: d["splits"]["heldout_synth"].update(fsdd_digits=3))
    assert message == "bad.yaml: splits: heldout_synth cannot hold fsdd_digits (only commands)"
    message = _bad(tmp_path, lambda d: d["frontend"].update(stack=3))
    assert message.startswith("bad.yaml: spec: frontend.stack and frontend.subsample must be 1")
    message = _bad(tmp_path, lambda d: d["augment"].update(gain_db=[3, -3]))
    assert message.startswith("bad.yaml: augment: gain_db must be a pair [lo, hi]")
    message = _bad(tmp_path, lambda d: d["voices"].update(espeak_speed=[100, 500]))
    assert message == "bad.yaml: voices: espeak_speed must lie in [80, 450], not [100, 500]"
    message = _bad(tmp_path, lambda d: d.pop("seed"))
    assert message == "bad.yaml: missing key 'seed'"


def test_overlapping_voices_and_speakers_are_refused(tmp_path):
    def share_voice(d):
        d["voices"]["espeak_heldout"]["variants"].append("m1")

    message = _bad(tmp_path, share_voice)
    assert message == (
        "bad.yaml: voices: espeak_heldout must not share a voice with espeak_train, but both "
        "hold en-gb+m1"
    )

    def share_speaker(d):
        d["voices"]["fsdd_heldout_speakers"].append("jackson")

    message = _bad(tmp_path, share_speaker)
    assert message == (
        "bad.yaml: voices: FSDD speaker 'jackson' is in both fsdd_train_speakers and "
        "fsdd_heldout_speakers"
    )


def test_unknown_preset():
    with pytest.raises(CorpusSpecError, match="no corpus preset 'huge' \\(presets: default, tiny"):
        preset_spec("huge")
