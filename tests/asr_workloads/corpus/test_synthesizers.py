"""espeak-ng and flite rendering, voice listings, and the errors when they are missing."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus.synthesizers import (
    EspeakVoice,
    FliteVoice,
    SynthesizerError,
    SynthesizerMissing,
    _parse_streamed_wav,
    espeak_languages,
    espeak_variants,
    flite_voices,
    render,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
needs_flite = pytest.mark.skipif(
    shutil.which("flite") is None, reason="flite not installed (apt-get install flite)"
)


def test_missing_program_names_the_package():
    with pytest.raises(SynthesizerMissing) as info:
        render("hello", EspeakVoice("en-us", "m1"), executable="no-such-espeak-ng")
    assert str(info.value) == (
        "'no-such-espeak-ng' not found: install espeak-ng (Debian package 'espeak-ng': "
        "apt-get install espeak-ng)"
    )
    with pytest.raises(SynthesizerMissing, match="Debian package 'flite'"):
        render("hello", FliteVoice("slt"), executable="no-such-flite")


def test_voice_validation():
    with pytest.raises(ValueError, match=r"speed must be an integer in \[80, 450\], not 500"):
        EspeakVoice("en-us", "m1", speed=500)
    with pytest.raises(ValueError, match="variant must be a voice name, not '-x'"):
        EspeakVoice("en-us", "-x")
    with pytest.raises(ValueError, match=r"duration_stretch must be a number in \[0.5, 2\]"):
        FliteVoice("slt", duration_stretch=3.0)
    with pytest.raises(ValueError, match="text must be one non-empty line"):
        render("two\nlines", FliteVoice("slt"))


def test_streamed_wav_with_bogus_sizes():
    pcm = np.array([0, 16384, -32768], dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    # espeak-ng's header on a pipe: both sizes claim about 2**31 bytes.
    data = (
        b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", 0x7FFFF000) + pcm
    )  # fmt: skip
    audio, rate = _parse_streamed_wav(data, "test")
    assert rate == 22050
    np.testing.assert_array_equal(audio, [0.0, 0.5, -1.0])
    with pytest.raises(SynthesizerError, match="test: output is not a WAV stream"):
        _parse_streamed_wav(b"garbage", "test")


@needs_espeak
def test_espeak_render_and_settings():
    voice = EspeakVoice("en-us", "f2", speed=175, pitch=50)
    audio, rate = render("call five five five", voice)
    assert rate == 22050 and audio.dtype == np.float32
    assert 0.5 < len(audio) / rate < 3 and 0.05 < np.max(np.abs(audio)) < 1
    again, _ = render("call five five five", voice)
    np.testing.assert_array_equal(audio, again)  # espeak-ng is deterministic
    slow, _ = render("call five five five", EspeakVoice("en-us", "f2", speed=100, pitch=50))
    assert len(slow) > 1.3 * len(audio)


@needs_espeak
def test_espeak_listings():
    languages, variants = espeak_languages(), espeak_variants()
    assert {"en-us", "en-gb", "en-gb-scotland"} <= set(languages)
    assert not any(name.startswith("mb") for name in languages)
    assert {"m1", "f1", "klatt"} <= set(variants) and len(variants) > 50


@needs_flite
def test_flite_render_and_listing():
    assert {"kal", "slt", "rms", "awb", "kal16"} <= set(flite_voices())
    assert "awb_time" not in flite_voices()
    audio, rate = render("call five five five", FliteVoice("slt"))
    assert rate == 16000 and len(audio) / rate > 0.5
    audio8, rate8 = render("call five five five", FliteVoice("kal"))
    assert rate8 == 8000
    slow, _ = render("call five five five", FliteVoice("kal", duration_stretch=1.5))
    assert len(slow) > 1.3 * len(audio8)
