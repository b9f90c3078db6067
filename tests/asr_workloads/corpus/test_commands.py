"""Command sampling: spoken, in-vocabulary, varied, and reproducible from a seed."""

from __future__ import annotations

import numpy as np
import pytest

from edgenpu.asr_workloads.corpus import slots
from edgenpu.asr_workloads.corpus.commands import sample_commands
from edgenpu.asr_workloads.text import encode, normalize


@pytest.fixture(scope="module")
def commands():
    return sample_commands(np.random.default_rng(0), 5000)


def test_commands_are_normalized_and_encodable(commands):
    for text in commands:
        assert normalize(text) == text, text
        assert len(encode(text)) == len(text)


def test_slot_values_are_normalized():
    for name in slots.__all__:
        values = getattr(slots, name)
        assert len(values) == len(set(values)), name
        for value in values:
            assert normalize(value) == value, (name, value)


def test_commands_are_varied(commands):
    distinct = set(commands)
    words = {w for text in commands for w in text.split()}
    # Slot combinations make nearly every command new; short ones ("stop") repeat.
    assert len(distinct) > 0.7 * len(commands)
    assert len(words) > 900
    # Names, digit strings and numbers all appear in spoken form.
    assert any(text.startswith(("call", "dial")) and " five " in f" {text} " for text in commands)
    assert sum(any(n in text.split() for n in slots.LAST_NAMES) for text in commands) > 500
    lengths = [len(text.split()) for text in commands]
    assert min(lengths) == 1 and max(lengths) > 12


def test_same_seed_same_commands():
    a = sample_commands(np.random.default_rng(42), 200)
    b = sample_commands(np.random.default_rng(42), 200)
    c = sample_commands(np.random.default_rng(43), 200)
    assert a == b
    assert a != c


def test_bad_arguments():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, not int"):
        sample_commands(0, 3)
    with pytest.raises(ValueError, match="n must be a non-negative integer, not -1"):
        sample_commands(np.random.default_rng(0), -1)
