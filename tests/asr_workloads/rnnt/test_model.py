"""The RNN-T model: contract names, shapes, masks and fake quantization, branching encoder."""

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
from edgenpu.asr_workloads.rnnt.fake_quant import fake_quantize
from edgenpu.asr_workloads.rnnt.lstm import lstm_layer
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.weight_quant import dequantize

VOCAB = 29


def branching_config() -> ModelConfig:
    return ModelConfig(
        input_dim=10,
        encoder=EncoderConfig((12, 8), (2, 1)),
        predictor=PredictorConfig(6, (8, 8)),
        joint=JointConfig(14, "relu"),
        branching=BranchingConfig(stem_layers=1, cheap_hidden=(5, 8)),
    )


def plain_config() -> ModelConfig:
    return ModelConfig(
        input_dim=10,
        encoder=EncoderConfig((12, 8), (2, 3)),
        predictor=PredictorConfig(6, (8,)),
        joint=JointConfig(14),
    )


def contract_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes written out from the rules in model_config's docstring."""
    shapes = {}

    def lstm(prefix, sizes, inputs, reduce):
        for layer, (size, r) in enumerate(zip(sizes, reduce, strict=True)):
            shapes[f"{prefix}.{layer}.w_ih"] = (4 * size, r * inputs)
            shapes[f"{prefix}.{layer}.w_hh"] = (4 * size, size)
            shapes[f"{prefix}.{layer}.bias"] = (4 * size,)
            inputs = size

    enc = config.encoder
    lstm("encoder", enc.hidden, config.input_dim, enc.reduce)
    shapes["predictor.embedding"] = (VOCAB, config.predictor.embed)
    hidden = config.predictor.hidden
    lstm("predictor", hidden, config.predictor.embed, [1] * len(hidden))
    j = config.joint.hidden
    shapes.update(
        {
            "joint.encoder.weight": (j, enc.hidden[-1]),
            "joint.encoder.bias": (j,),
            "joint.predictor.weight": (j, hidden[-1]),
            "joint.predictor.bias": (j,),
            "joint.output.weight": (VOCAB, j),
            "joint.output.bias": (VOCAB,),
        }
    )
    if config.branching is not None:
        stem = enc.hidden[config.branching.stem_layers - 1]
        cheap = config.branching.cheap_hidden
        lstm("cheap", cheap, stem, [1] * len(cheap))
        shapes["gate.weight"] = (1, stem)
        shapes["gate.bias"] = (1,)
    shapes["ctc.weight"] = (VOCAB, enc.hidden[-1])
    shapes["ctc.bias"] = (VOCAB,)
    return shapes


@pytest.mark.parametrize("make", [branching_config, plain_config])
def test_state_dict_is_the_contract(make):
    config = make()
    model = RNNT(config)
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == contract_shapes(config)
    assert sorted(model.effective_parameters()) == sorted(k for k in state if "ctc." not in k)
    assert sorted(model.effective_parameters(include_ctc=True)) == sorted(state)
    # A checkpoint round-trips through the contract names.
    other = RNNT(config)
    other.load_state_dict(state)
    assert all(torch.equal(other.parameter(k), v) for k, v in state.items())


def test_shapes_and_lengths():
    torch.manual_seed(0)
    model = RNNT(plain_config())
    features = torch.randn(3, 13, 10)
    encoded = model.encode(features, torch.tensor([13, 6, 1]))
    # Time reduction 2 then 3: ceil(ceil(T / 2) / 3).
    assert encoded.frames.shape == (3, 3, 8) and encoded.lengths.tolist() == [3, 1, 1]
    assert encoded.gate is None
    assert torch.all(encoded.frames[1, 1:] == 0)
    pred, state = model.predict(torch.tensor([[0, 3, 4, 5], [0, 1, 2, 2], [0, 7, 7, 7]]))
    assert pred.shape == (3, 4, 8) and len(state) == 1 and state[0][0].shape == (3, 8)
    logits = model.joint(encoded.frames, pred)
    assert logits.shape == (3, 3, 4, VOCAB)
    torch.testing.assert_close(model.joint_step(encoded.frames[:, 1], pred[:, 2]), logits[:, 1, 2])
    positions = torch.tensor([[[0, 1], [1, 2], [2, 3]], [[0, 1], [0, 1], [3, 2]], [[1, 0]] * 3])
    windowed = model.joint_at(encoded.frames, pred, positions)
    torch.testing.assert_close(windowed, logits.gather(2, positions[..., None].expand_as(windowed)))
    assert model.ctc_logits(encoded.frames).shape == (3, 3, VOCAB)


def test_predict_step_by_step_matches_whole_sequence():
    torch.manual_seed(1)
    model = RNNT(branching_config())
    tokens = torch.tensor([[0, 5, 9, 1], [0, 2, 2, 28]])
    whole, _ = model.predict(tokens)
    out, state = model.predict(tokens[:, :1])
    steps = [out]
    for u in range(1, 4):
        out, state = model.predict(tokens[:, u : u + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole)


def test_training_predict_runs_fused_and_computes_the_same():
    # Training asks for no final state, so the prediction network runs the fused kernel.
    torch.manual_seed(3)
    model = RNNT(plain_config())
    tokens = torch.tensor([[0, 5, 9, 1], [0, 2, 2, 28]])
    stepped, state = model.predict(tokens)
    fused, no_state = model.predict(tokens, final_state=False)
    assert len(state) == 1 and no_state == ()
    torch.testing.assert_close(fused, stepped, atol=1e-6, rtol=1e-5)
    (grad_fused,) = torch.autograd.grad(fused.square().sum(), model.predictor.embedding)
    (grad_stepped,) = torch.autograd.grad(stepped.square().sum(), model.predictor.embedding)
    torch.testing.assert_close(grad_fused, grad_stepped, atol=1e-5, rtol=1e-4)


def test_padding_does_not_change_shorter_utterances():
    torch.manual_seed(2)
    for model in (RNNT(plain_config()), RNNT(branching_config()).eval()):
        short = torch.randn(1, 7, 10)
        alone = model.encode(short, torch.tensor([7]))
        batch = torch.cat(
            [torch.cat([short, 100 * torch.randn(1, 5, 10)], 1), torch.randn(1, 12, 10)]
        )
        both = model.encode(batch, torch.tensor([7, 12]))
        n = int(alone.lengths[0])
        torch.testing.assert_close(both.frames[0, :n], alone.frames[0], atol=1e-6, rtol=1e-5)
        assert torch.all(both.frames[0, n:] == 0)


def test_weights_are_read_through_masks_and_fake_quant():
    torch.manual_seed(3)
    model = RNNT(plain_config(), precision="int4")
    name = "joint.output.weight"
    mask = (torch.rand(VOCAB, 14) > 0.5).float()
    model.set_mask(name, mask)
    effective = model.effective_parameters()
    raw = model.parameter(name).detach()
    assert torch.equal(effective[name], dequantize(raw * mask, "int4", torch))
    assert torch.all(effective[name][mask == 0] == 0)
    assert torch.equal(effective["joint.output.bias"], model.parameter("joint.output.bias"))
    # The forward pass uses exactly the effective weights: a float model loaded with them
    # computes the same logits.
    plain = RNNT(plain_config())
    plain.load_state_dict(model.effective_parameters(include_ctc=True))
    features, lengths = torch.randn(2, 9, 10), torch.tensor([9, 5])
    tokens = torch.tensor([[0, 3, 4], [0, 6, 6]])
    expect = plain.joint(plain.encode(features, lengths).frames, plain.predict(tokens)[0])
    got = model.joint(model.encode(features, lengths).frames, model.predict(tokens)[0])
    torch.testing.assert_close(got, expect, atol=0, rtol=0)
    # Pruned weights get no gradient; kept ones get the straight-through gradient.
    got.square().sum().backward()
    grad = model.parameter(name).grad
    assert torch.all(grad[mask == 0] == 0) and grad[mask == 1].abs().sum() > 0


def test_quantized_parameters_cover_the_quantized_parameters():
    model = RNNT(branching_config())
    names = set(model.quantized_parameters())
    assert "gate.weight" in names and "predictor.embedding" in names
    assert "ctc.weight" not in names and not any(n.endswith("bias") for n in names)


def test_branching_hard_gate_at_inference():
    torch.manual_seed(4)
    model = RNNT(branching_config()).eval()
    with torch.no_grad():
        model.parameter("gate.weight").normal_(0, 2)
        model.parameter("gate.bias").zero_()
    features, lengths = torch.randn(1, 16, 10), torch.tensor([16])
    encoded = model.encode(features, lengths)
    runs = (encoded.gate[0] >= 0.5).tolist()
    assert 0 < sum(runs) < len(runs)  # both branches are exercised
    # Recompute from the contract's words: stem, gate, cheap on all frames, expensive only
    # on frames with p >= 1/2 (state held elsewhere).
    w = model.parameter
    stem, _ = lstm_layer(
        features.reshape(1, 8, 20),  # reduce 2: pairs of frames side by side
        w("encoder.0.w_ih"),
        w("encoder.0.w_hh"),
        w("encoder.0.bias"),
    )
    p = torch.sigmoid(stem @ w("gate.weight").T + w("gate.bias"))[0, :, 0]
    torch.testing.assert_close(p, encoded.gate[0])
    cheap = stem
    for layer in range(2):
        cheap, _ = lstm_layer(
            cheap, w(f"cheap.{layer}.w_ih"), w(f"cheap.{layer}.w_hh"), w(f"cheap.{layer}.bias")
        )
    chosen = [t for t, run in enumerate(runs) if run]
    expensive, _ = lstm_layer(
        stem[:, chosen], w("encoder.1.w_ih"), w("encoder.1.w_hh"), w("encoder.1.bias")
    )
    expected = cheap.clone()
    expected[:, chosen] = expensive
    torch.testing.assert_close(encoded.frames, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("hard", [False, True])
def test_branching_training_gate_gets_gradient(hard):
    torch.manual_seed(5)
    model = RNNT(branching_config(), hard_gate=hard).train()
    features, lengths = torch.randn(2, 10, 10), torch.tensor([10, 6])
    encoded = model.encode(features, lengths)
    assert torch.all(encoded.gate[1, 3:] == 0)
    expected_frames = encoded.expensive_frames
    torch.testing.assert_close(expected_frames, encoded.gate.sum())
    (encoded.frames.square().sum() + expected_frames).backward()
    assert model.parameter("gate.weight").grad.abs().sum() > 0
    if hard:
        # Forward is the inference computation exactly.
        frames = model.eval().encode(features, lengths).frames
        torch.testing.assert_close(encoded.frames.detach(), frames, atol=0, rtol=0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="weight precision must be one of int8, int4"):
        RNNT(plain_config(), precision="int3")
    model = RNNT(plain_config())
    with pytest.raises(ValueError, match="weight precision must be one of int8, int4, not 'int16'"):
        model.set_precision("int16")
    with pytest.raises(ValueError, match="expensive_frames needs a branching encoder"):
        _ = model.encode(torch.zeros(1, 4, 10), torch.tensor([4])).expensive_frames
    with pytest.raises(ValueError, match=r"features must have shape \(B, T, 10\), not \(2, 5, 9\)"):
        model.encode(torch.zeros(2, 5, 9), torch.tensor([5, 5]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\], not 6"):
        model.encode(torch.zeros(2, 5, 10), torch.tensor([5, 6]))
    with pytest.raises(ValueError, match=r"token 29 is outside the vocabulary \[0, 29\)"):
        model.predict(torch.tensor([[0, 29]]))
    with pytest.raises(ValueError, match=r"mask for joint.output.weight must have shape"):
        model.set_mask("joint.output.weight", torch.ones(3, 3))
    with pytest.raises(KeyError, match="no parameter 'joint.nope.weight'"):
        model.parameter("joint.nope.weight")
    with pytest.raises(ValueError, match=r"must be 2-D"):
        fake_quantize(torch.zeros(3), "int8")


def test_inference_weight_cache_follows_changes():
    torch.manual_seed(6)
    model = RNNT(plain_config(), precision="int8")
    name = "joint.output.weight"
    with torch.no_grad():
        first = model.weight(name)
        assert model.weight(name) is first  # cached while nothing changes
        model.parameter(name).mul_(2)  # an optimizer-like in-place update
        assert torch.equal(model.weight(name), dequantize(model.parameter(name), "int8", torch))
        model.set_mask(name, torch.zeros(VOCAB, 14))
        assert torch.all(model.weight(name) == 0)
        model.masks[name].fill_(1)  # the mask changed in place
        assert torch.equal(model.weight(name), dequantize(model.parameter(name), "int8", torch))
        model.set_precision("int4")
        assert torch.equal(model.weight(name), dequantize(model.parameter(name), "int4", torch))
    # With autograd on, the weight is recomputed (and carries a gradient path).
    assert model.weight(name).requires_grad
