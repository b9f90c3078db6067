"""The numpy RNN-T against a straightforward per-step reference written here: explicit gate
matrices, no hoisted projections, float64, a per-frame loop for the branching encoder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.bundle_params import parameter_shapes
from edgenpu.asr_workloads.frontend import FrontEndConfig, features
from edgenpu.asr_workloads.model_config import (
    BranchingConfig,
    EncoderConfig,
    JointConfig,
    ModelConfig,
    PredictorConfig,
    is_prunable,
    is_quantized,
)
from edgenpu.asr_workloads.numpy_model import (
    decode_frames,
    encode,
    greedy_decode,
    joint,
    predictor_step,
    reduce_time,
    transcribe,
)
from edgenpu.asr_workloads.text import BLANK, VOCABULARY
from edgenpu.asr_workloads.wav import read_wav
from edgenpu.asr_workloads.weight_quant import dequantize

FSDD = Path(__file__).parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"
FRONTEND = FrontEndConfig(n_mels=10, stack=3, subsample=2, f_min=100.0)
PLAIN = ModelConfig(
    input_dim=30,
    encoder=EncoderConfig((12, 10, 8), (1, 2, 1)),
    predictor=PredictorConfig(embed=6, hidden=(9, 7)),
    joint=JointConfig(hidden=11),
)
BRANCHING = ModelConfig(
    input_dim=30,
    encoder=EncoderConfig((12, 10, 8), (2, 1, 1)),
    predictor=PredictorConfig(embed=6, hidden=(9,)),
    joint=JointConfig(hidden=11, activation="relu"),
    branching=BranchingConfig(stem_layers=1, cheap_hidden=(5, 8)),
)


def random_weights(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0, 0.6, shape).astype(np.float32)
        for name, shape in parameter_shapes(config).items()
    }


def random_features(frames: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, 30)).astype(np.float32)


# --- the reference --------------------------------------------------------------------------


def ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_cell(x, h, c, w, prefix):
    """One LSTM step with each gate's matrices taken apart (gate order i, f, g, o)."""
    w_i, w_f, w_g, w_o = np.split(w[f"{prefix}.w_ih"].astype(np.float64), 4)
    u_i, u_f, u_g, u_o = np.split(w[f"{prefix}.w_hh"].astype(np.float64), 4)
    b_i, b_f, b_g, b_o = np.split(w[f"{prefix}.bias"].astype(np.float64), 4)
    i = ref_sigmoid(w_i @ x + u_i @ h + b_i)
    f = ref_sigmoid(w_f @ x + u_f @ h + b_f)
    g = np.tanh(w_g @ x + u_g @ h + b_g)
    o = ref_sigmoid(w_o @ x + u_o @ h + b_o)
    c = f * c + i * g
    return o * np.tanh(c), c


def ref_zero_state(w, prefix):
    size = w[f"{prefix}.w_hh"].shape[1]
    return np.zeros(size), np.zeros(size)


def ref_lstm(xs, w, prefix):
    h, c = ref_zero_state(w, prefix)
    out = []
    for x in xs:
        h, c = ref_cell(x, h, c, w, prefix)
        out.append(h)
    return np.array(out).reshape(len(xs), len(h))


def ref_reduce(xs, r):
    width = xs.shape[1]
    out = []
    for start in range(0, len(xs), r):
        group = [xs[k] if k < len(xs) else np.zeros(width) for k in range(start, start + r)]
        out.append(np.concatenate(group))
    return np.array(out).reshape(-(-len(xs) // r), r * width)


def ref_encode(config, w, feats):
    """Encoder frames and, per frame, whether the expensive branch ran."""
    x = np.asarray(feats, dtype=np.float64)
    layers = len(config.encoder.hidden)
    stem = layers if config.branching is None else config.branching.stem_layers
    for layer in range(stem):
        x = ref_lstm(ref_reduce(x, config.encoder.reduce[layer]), w, f"encoder.{layer}")
    if config.branching is None:
        return x, np.ones(len(x), bool)
    cheap_layers = [f"cheap.{i}" for i in range(len(config.branching.cheap_hidden))]
    expensive_layers = [f"encoder.{i}" for i in range(stem, layers)]
    states = {p: ref_zero_state(w, p) for p in cheap_layers + expensive_layers}
    out, ran = [], []
    for s in x:
        p = ref_sigmoid(w["gate.weight"][0].astype(np.float64) @ s + w["gate.bias"][0])
        y = s
        for prefix in cheap_layers:
            states[prefix] = ref_cell(y, *states[prefix], w, prefix)
            y = states[prefix][0]
        if p >= 0.5:  # otherwise the expensive branch's states stay as they were
            y = s
            for prefix in expensive_layers:
                states[prefix] = ref_cell(y, *states[prefix], w, prefix)
                y = states[prefix][0]
        out.append(y)
        ran.append(p >= 0.5)
    return np.array(out).reshape(len(x), config.encoder_dim), np.array(ran, bool)


def ref_predict(config, w, tokens):
    """Predictor outputs after each of ``tokens`` (starting from the zero state)."""
    prefixes = [f"predictor.{i}" for i in range(len(config.predictor.hidden))]
    states = [ref_zero_state(w, p) for p in prefixes]
    outs = []
    for token in tokens:
        x = w["predictor.embedding"][token].astype(np.float64)
        for k, prefix in enumerate(prefixes):
            states[k] = ref_cell(x, *states[k], w, prefix)
            x = states[k][0]
        outs.append(x)
    return outs


def ref_joint(config, w, e, p):
    a = w["joint.encoder.weight"] @ e + w["joint.encoder.bias"]
    a = a + w["joint.predictor.weight"] @ p + w["joint.predictor.bias"]
    a = np.tanh(a) if config.joint.activation == "tanh" else np.maximum(a, 0)
    return w["joint.output.weight"] @ a + w["joint.output.bias"]


def ref_greedy(config, w, frames, max_symbols):
    tokens, t, emitted = [], 0, 0
    history = [BLANK]
    pred = ref_predict(config, w, history)[-1]
    while t < len(frames):
        best = (
            BLANK
            if emitted == max_symbols
            else int(np.argmax(ref_joint(config, w, frames[t], pred)))
        )
        if best == BLANK:
            t, emitted = t + 1, 0
            continue
        tokens.append(best)
        emitted += 1
        history.append(best)
        pred = ref_predict(config, w, history)[-1]
    return tokens


# --- encoder --------------------------------------------------------------------------------


def test_reduce_time_concatenates_groups_and_zero_pads_the_last():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(reduce_time(x, 2), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]])
    np.testing.assert_array_equal(reduce_time(x, 5), x.reshape(1, 10))
    assert reduce_time(x, 1) is x
    assert reduce_time(x[:0], 3).shape == (0, 6)


@pytest.mark.parametrize("precision", [None, "int8", "int4"])
def test_plain_encoder_matches_the_reference(precision):
    weights = random_weights(PLAIN)
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, precision)
    if precision is not None:
        weights = {
            n: dequantize(w, precision, np) if is_quantized(n) else w for n, w in weights.items()
        }
    feats = random_features(13)
    out = encode(bundle, feats)
    expected, _ = ref_encode(PLAIN, weights, feats)
    assert out.frames.shape == (7, 8) and out.frames.dtype == np.float32
    np.testing.assert_allclose(out.frames, expected, atol=2e-5)
    assert out.expensive.all() and out.gate is None


@pytest.mark.parametrize("frames", [0, 1, 2, 5, 8])
def test_time_reduction_gives_ceil_frames(frames):
    bundle = bundle_from_weights(PLAIN, FRONTEND, random_weights(PLAIN), None)
    assert encode(bundle, random_features(frames)).frames.shape == (math.ceil(frames / 2), 8)


def test_the_last_group_is_padded_with_zero_frames():
    bundle = bundle_from_weights(BRANCHING, FRONTEND, random_weights(BRANCHING), None)
    feats = random_features(9)  # layer 0 reduces by 2: the fifth group lacks a frame
    padded = np.concatenate([feats, np.zeros((1, 30), np.float32)])
    np.testing.assert_array_equal(encode(bundle, feats).frames, encode(bundle, padded).frames)


def test_branching_encoder_holds_the_expensive_state_on_skipped_frames():
    weights = random_weights(BRANCHING, seed=3)
    weights["gate.bias"][:] = 0  # about half the frames each way
    bundle = bundle_from_weights(BRANCHING, FRONTEND, weights, None)
    feats = random_features(40, seed=4)
    out = encode(bundle, feats)
    expected, ran = ref_encode(BRANCHING, weights, feats)
    # Held state only shows after a skipped frame: the test needs skips between runs.
    assert np.any(ran[2:] & ~ran[1:-1] & ran[:-2]), ran
    np.testing.assert_array_equal(out.expensive, ran)
    np.testing.assert_allclose(out.frames, expected, atol=2e-5)
    np.testing.assert_array_equal(out.expensive, out.gate >= 0.5)


def test_gate_extremes_give_one_branch_or_the_other():
    weights = random_weights(BRANCHING, seed=3)
    feats = random_features(20, seed=4)
    weights["gate.bias"][:] = -1e4
    never = encode(bundle_from_weights(BRANCHING, FRONTEND, weights, None), feats)
    stem = ref_lstm(ref_reduce(feats, 2), weights, "encoder.0")
    cheap = ref_lstm(ref_lstm(stem, weights, "cheap.0"), weights, "cheap.1")
    assert not never.expensive.any()
    np.testing.assert_allclose(never.frames, cheap, atol=2e-5)
    weights["gate.bias"][:] = 1e4
    always = encode(bundle_from_weights(BRANCHING, FRONTEND, weights, None), feats)
    full = ref_lstm(ref_lstm(stem, weights, "encoder.1"), weights, "encoder.2")
    assert always.expensive.all()
    np.testing.assert_allclose(always.frames, full, atol=2e-5)


def test_pruned_weights_take_no_part():
    weights = random_weights(PLAIN)
    rng = np.random.default_rng(5)
    masks = {n: rng.random(w.shape) < 0.3 for n, w in weights.items() if is_prunable(n)}
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, None, masks)
    pruned = {n: np.where(masks[n], w, 0) if n in masks else w for n, w in weights.items()}
    feats = random_features(6)
    np.testing.assert_allclose(
        encode(bundle, feats).frames, ref_encode(PLAIN, pruned, feats)[0], atol=2e-5
    )


# --- predictor and joint --------------------------------------------------------------------


def test_predictor_steps_match_the_reference():
    weights = random_weights(PLAIN)
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, None)
    tokens = [BLANK, 3, 17, 3, 28]
    expected = ref_predict(PLAIN, weights, tokens)
    state = None
    for token, want in zip(tokens, expected, strict=True):
        out, state = predictor_step(bundle, token, state)
        assert out.shape == (7,) and out.dtype == np.float32
        np.testing.assert_allclose(out, want, atol=2e-5)
    assert [h.shape for h, _ in state] == [(9,), (7,)]


def test_joint_matches_the_reference_and_broadcasts():
    weights = random_weights(BRANCHING)
    bundle = bundle_from_weights(BRANCHING, FRONTEND, weights, None)
    rng = np.random.default_rng(6)
    enc, pred = rng.normal(size=(4, 8)), rng.normal(size=(3, 9))
    grid = joint(bundle, enc[:, None, :], pred[None, :, :])
    assert grid.shape == (4, 3, 29)
    for t in range(4):
        for u in range(3):
            want = ref_joint(BRANCHING, weights, enc[t], pred[u])
            np.testing.assert_allclose(joint(bundle, enc[t], pred[u]), want, atol=2e-5)
            np.testing.assert_allclose(grid[t, u], want, atol=2e-5)


# --- greedy decoding ------------------------------------------------------------------------


@pytest.mark.parametrize("max_symbols", [1, 3])
def test_greedy_decode_matches_the_reference(max_symbols):
    weights = random_weights(PLAIN, seed=7)
    weights["joint.output.bias"][BLANK] += 2.5  # blanks and symbols both common
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, "int8")
    effective = bundle.weights()
    frames = encode(bundle, random_features(40, seed=8)).frames
    tokens = decode_frames(bundle, frames, max_symbols)
    assert tokens == ref_greedy(PLAIN, effective, frames.astype(np.float64), max_symbols)
    assert BLANK not in tokens
    assert 0 < len(tokens) < len(frames) * max_symbols
    assert tokens == greedy_decode(bundle, random_features(40, seed=8), max_symbols)


def test_greedy_decode_bounds():
    weights = random_weights(PLAIN)
    feats = random_features(10)
    weights["joint.output.bias"][BLANK] = 1e4
    assert greedy_decode(bundle_from_weights(PLAIN, FRONTEND, weights, None), feats) == []
    weights["joint.output.bias"][BLANK] = 0
    weights["joint.output.bias"][VOCABULARY.index("e")] = 1e4
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, None)
    assert greedy_decode(bundle, feats, 4) == [VOCABULARY.index("e")] * 5 * 4
    assert greedy_decode(bundle, feats[:0]) == []


def expected_frames(samples: int, fe: FrontEndConfig, reduction: int) -> int:
    mel = 1 + (samples - fe.window_samples) // fe.hop_samples
    stacked = -(-(mel - fe.stack + 1) // fe.subsample)
    return -(-stacked // reduction)


def test_transcribe_runs_the_bundles_front_end():
    weights = random_weights(PLAIN)
    weights["joint.output.bias"][VOCABULARY.index("z")] = 1e4
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, "int4")
    audio = np.random.default_rng(9).uniform(-0.5, 0.5, 16000)
    assert transcribe(bundle, audio, 16000, max_symbols_per_frame=1) == "z" * expected_frames(
        16000, FRONTEND, 2
    )
    assert transcribe(bundle, audio[:100], 16000) == ""


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_transcribe_resamples_real_speech():
    weights = random_weights(PLAIN)
    weights["joint.output.bias"][VOCABULARY.index("o")] = 1e4
    bundle = bundle_from_weights(PLAIN, FRONTEND, weights, None)
    audio, rate = read_wav(FSDD / "0_george_0.wav")
    assert rate == 8000
    reduced = -(-len(features(audio, rate, FRONTEND)) // 2)
    assert reduced > 5
    assert transcribe(bundle, audio, rate, max_symbols_per_frame=2) == "oo" * reduced


# --- errors ---------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    bundle = bundle_from_weights(PLAIN, FRONTEND, random_weights(PLAIN), None)
    with pytest.raises(ValueError, match=r"features must be of shape \(T, 30\), not \(4, 29\)"):
        encode(bundle, np.zeros((4, 29)))
    with pytest.raises(ValueError, match=r"token must be an integer in \[0, 29\), not 29"):
        predictor_step(bundle, 29)
    with pytest.raises(ValueError, match="state must have one \\(h, c\\) per layer \\(2\\), not 1"):
        predictor_step(bundle, 0, ((np.zeros(9), np.zeros(9)),))
    with pytest.raises(ValueError, match="max_symbols_per_frame must be a positive integer, not 0"):
        decode_frames(bundle, np.zeros((2, 8)), 0)
    with pytest.raises(ValueError, match=r"encoder frames must be of shape \(T, 8\), not \(2, 7\)"):
        decode_frames(bundle, np.zeros((2, 7)))
