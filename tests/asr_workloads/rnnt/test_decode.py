"""Batched greedy decoding agrees with the one-utterance reference."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.model_config import (
    BranchingConfig,
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
)
from edgenpu.asr_workloads.rnnt.decode import greedy_decode, greedy_decode_one
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.text import BLANK


def random_model(branching: bool, seed: int) -> RNNT:
    config = ModelConfig(
        input_dim=6,
        encoder=EncoderConfig((10, 10), (2, 1)),
        predictor=PredictorConfig(5, (10,)),
        joint=JointConfig(12),
        branching=BranchingConfig(1, (10,)) if branching else None,
    )
    torch.manual_seed(seed)
    model = RNNT(config, precision="int8").eval()
    with torch.no_grad():
        # An untrained model at its initial scale barely looks at its input and repeats one
        # symbol; larger weights make the argmax vary from frame to frame and from symbol to
        # symbol, and a blank bias makes blanks common too, so the cases below are not trivial.
        for name, param in model.named_parameters():
            if name.startswith(("encoder.", "cheap.")) and not name.endswith("bias"):
                param.mul_(3)
        model.parameter("joint.encoder.weight").normal_(0, 4)
        model.parameter("joint.predictor.weight").normal_(0, 2)
        model.parameter("joint.output.weight").normal_(0, 1)
        model.parameter("joint.output.bias").zero_()[BLANK] = 2.0
    return model


@pytest.mark.parametrize("branching", [False, True])
@pytest.mark.parametrize("max_symbols", [1, 2, 4])
def test_batched_matches_reference(branching, max_symbols):
    model = random_model(branching, seed=2)
    lengths = torch.tensor([17, 9, 4, 12, 1])
    features = torch.randn(5, 17, 6)
    batched = greedy_decode(model, features, lengths, max_symbols=max_symbols)
    reference = [
        greedy_decode_one(model, features[b, : int(n)], max_symbols=max_symbols)
        for b, n in enumerate(lengths)
    ]
    assert batched == reference
    emitted = [token for hypothesis in batched for token in hypothesis]
    assert len(set(emitted)) > 1 and BLANK not in emitted  # a non-trivial case
    frames = (lengths + 1) // 2
    assert all(len(h) <= max_symbols * int(n) for h, n in zip(batched, frames, strict=True))
    assert any(len(h) < max_symbols * int(n) for h, n in zip(batched, frames, strict=True))


def test_max_symbols_caps_labels_per_frame():
    model = random_model(False, seed=7)
    with torch.no_grad():
        model.parameter("joint.output.bias")[BLANK] -= 100.0  # never blank
    features = torch.randn(2, 8, 6)
    hypotheses = greedy_decode(model, features, torch.tensor([8, 5]), max_symbols=3)
    assert [len(h) for h in hypotheses] == [3 * 4, 3 * 3]


def test_bad_max_symbols_is_named():
    model = random_model(False, seed=8)
    with pytest.raises(ValueError, match="max_symbols must be a positive integer, not 0"):
        greedy_decode(model, torch.zeros(1, 4, 6), torch.tensor([4]), max_symbols=0)
