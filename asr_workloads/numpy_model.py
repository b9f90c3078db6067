"""The RNN-T forward pass and greedy decoding in numpy (float32), from a :class:`Bundle`.

Follows :mod:`.model_config` to the letter: LSTM gates in the order i, f, g, o with one
bias and zero initial state; time reduction by concatenating groups of ``reduce`` frames,
the last group zero-padded; the branching encoder's hard gate (the expensive branch runs on
a stem frame iff ``sigmoid(gate(s_t)) >= 1/2``, its state held on the other frames); the
joint ``output(act(encoder(e_t) + predictor(p_u)))``. The weights are the bundle's
(:meth:`Bundle.weights`: dequantized and masked), so a quantized bundle computes with exactly
the fake-quantized weights that training saw, in float32 arithmetic.

As on the hardware, each LSTM layer's input projection is done for all frames at once and
only the recurrent product is left inside the time loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .bundle import Bundle
from .frontend import features as frontend_features
from .text import BLANK
from .text import decode as ids_to_text

__all__ = [
    "DEFAULT_MAX_SYMBOLS",
    "EncoderOutput",
    "PredictorState",
    "decode_frames",
    "encode",
    "greedy_decode",
    "greedy_search",
    "joint",
    "lstm_layer",
    "lstm_step",
    "predictor_step",
    "reduce_time",
    "sigmoid",
    "transcribe",
]

#: Default bound on the symbols greedy decoding emits per encoder frame.
DEFAULT_MAX_SYMBOLS = 5

#: The prediction network's state: ``(h, c)`` per layer, each of shape ``(hidden,)``.
PredictorState = tuple[tuple[np.ndarray, np.ndarray], ...]


@dataclasses.dataclass(frozen=True, eq=False)
class EncoderOutput:
    """What the encoder produced for an utterance.

    Parameters
    ----------
    frames : numpy.ndarray
        float32, shape ``(T', encoder_dim)``.
    expensive : numpy.ndarray
        bool, shape ``(T',)``: the frames on which the expensive branch ran (all of them
        when the encoder does not branch, since then the whole encoder runs on every frame).
    gate : numpy.ndarray or None
        float32 gate probabilities ``p_t``, shape ``(T',)``; ``None`` without branching.
    """

    frames: np.ndarray
    expensive: np.ndarray
    gate: np.ndarray | None = None


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, written with tanh so that large inputs cannot overflow ``exp``."""
    return np.float32(0.5) * np.tanh(np.float32(0.5) * x) + np.float32(0.5)


def reduce_time(x: np.ndarray, factor: int) -> np.ndarray:
    """Concatenate groups of ``factor`` frames: ``(T, F) -> (ceil(T / factor), factor F)``.

    Output frame ``t`` is ``[x[f t], ..., x[f t + f - 1]]``; the last group is zero-padded.
    """
    frames, width = x.shape
    if factor == 1:
        return x
    groups = -(-frames // factor)
    padded = np.zeros((groups * factor, width), dtype=x.dtype)
    padded[:frames] = x
    return padded.reshape(groups, factor * width)


def lstm_step(
    projected: np.ndarray, w_hh: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step from the input projection (``W_ih x + bias``) of the current frame."""
    gates = projected + w_hh @ h
    size = len(h)
    act = sigmoid(gates)  # the g quarter is recomputed with tanh below; one call is cheaper
    c = act[size : 2 * size] * c + act[:size] * np.tanh(gates[2 * size : 3 * size])
    return act[3 * size :] * np.tanh(c), c


def lstm_layer(x: np.ndarray, weights: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    """Run the LSTM layer ``prefix`` (e.g. ``"encoder.0"``) over ``x`` of shape ``(T, In)``.

    Returns the hidden states, float32 ``(T, H)``, from a zero initial state.
    """
    w_hh = weights[f"{prefix}.w_hh"]
    size = w_hh.shape[1]
    projected = x @ weights[f"{prefix}.w_ih"].T + weights[f"{prefix}.bias"]
    h = np.zeros(size, dtype=np.float32)
    c = np.zeros(size, dtype=np.float32)
    out = np.empty((len(x), size), dtype=np.float32)
    for t in range(len(x)):
        h, c = lstm_step(projected[t], w_hh, h, c)
        out[t] = h
    return out


def _check_features(bundle: Bundle, features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    width = bundle.config.input_dim
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"features must be of shape (T, {width}), not {x.shape}")
    return x


def encode(bundle: Bundle, features: np.ndarray) -> EncoderOutput:
    """Run the encoder over one utterance's features.

    Parameters
    ----------
    bundle : Bundle
        The model.
    features : numpy.ndarray
        Shape ``(T, input_dim)`` (front-end output, stacked and subsampled).

    Returns
    -------
    EncoderOutput
        ``T' = ceil(T / time_reduction)`` frames, which frames took the expensive branch and
        (branching encoders) the gate probabilities.
    """
    x = _check_features(bundle, features)
    weights = bundle.weights()
    encoder = bundle.config.encoder
    branching = bundle.config.branching
    stem = len(encoder.hidden) if branching is None else branching.stem_layers
    for layer in range(stem):
        x = lstm_layer(reduce_time(x, encoder.reduce[layer]), weights, f"encoder.{layer}")
    if branching is None:
        return EncoderOutput(x, np.ones(len(x), dtype=bool))
    gate = sigmoid(x @ weights["gate.weight"].T + weights["gate.bias"])[:, 0]
    expensive = gate >= 0.5
    cheap = x
    for layer in range(len(branching.cheap_hidden)):
        cheap = lstm_layer(cheap, weights, f"cheap.{layer}")
    # The expensive branch's state is held on skipped frames, so over the frames it runs on
    # it is a plain LSTM stack of that subsequence.
    chosen = x[expensive]
    for layer in range(stem, len(encoder.hidden)):
        chosen = lstm_layer(chosen, weights, f"encoder.{layer}")
    out = cheap.copy()
    out[expensive] = chosen
    return EncoderOutput(out, expensive, gate)


def predictor_step(
    bundle: Bundle, token: int, state: PredictorState | None = None
) -> tuple[np.ndarray, PredictorState]:
    """Advance the prediction network by one symbol.

    Parameters
    ----------
    bundle : Bundle
        The model.
    token : int
        The previous symbol; ``BLANK`` is the start symbol.
    state : PredictorState or None
        The state after the previous step; ``None`` is the zero initial state.

    Returns
    -------
    tuple of (numpy.ndarray, PredictorState)
        The output (float32, ``(predictor_dim,)``) and the new state.
    """
    weights = bundle.weights()
    vocab = bundle.config.vocab_size
    if isinstance(token, bool) or not isinstance(token, int | np.integer) or not 0 <= token < vocab:
        raise ValueError(f"token must be an integer in [0, {vocab}), not {token!r}")
    hidden = bundle.config.predictor.hidden
    if state is None:
        state = tuple((np.zeros(h, np.float32), np.zeros(h, np.float32)) for h in hidden)
    elif len(state) != len(hidden):
        raise ValueError(f"state must have one (h, c) per layer ({len(hidden)}), not {len(state)}")
    x = weights["predictor.embedding"][token]
    new_state = []
    for layer, (h, c) in enumerate(state):
        prefix = f"predictor.{layer}"
        projected = weights[f"{prefix}.w_ih"] @ x + weights[f"{prefix}.bias"]
        h, c = lstm_step(projected, weights[f"{prefix}.w_hh"], h, c)
        new_state.append((h, c))
        x = h
    return x, tuple(new_state)


def _activation(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    return np.tanh(x) if bundle.config.joint.activation == "tanh" else np.maximum(x, 0)


def joint(bundle: Bundle, enc_t: np.ndarray, pred_u: np.ndarray) -> np.ndarray:
    """Logits ``(V,)`` of one encoder frame ``(encoder_dim,)`` and predictor output.

    Leading dimensions broadcast: ``(T, 1, H_enc)`` and ``(1, U, H_pred)`` give ``(T, U, V)``.
    """
    w = bundle.weights()
    enc = np.asarray(enc_t, dtype=np.float32) @ w["joint.encoder.weight"].T
    pred = np.asarray(pred_u, dtype=np.float32) @ w["joint.predictor.weight"].T
    hidden = _activation(bundle, enc + w["joint.encoder.bias"] + pred + w["joint.predictor.bias"])
    return hidden @ w["joint.output.weight"].T + w["joint.output.bias"]


def decode_frames(
    bundle: Bundle, frames: np.ndarray, max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS
) -> list[int]:
    """Greedy RNN-T search (:func:`greedy_search`) over encoder output frames
    ``(T', encoder_dim)``.

    Returns
    -------
    list of int
        The emitted token ids (never ``BLANK``).
    """
    if (
        isinstance(max_symbols_per_frame, bool)
        or not isinstance(max_symbols_per_frame, int)
        or max_symbols_per_frame < 1
    ):
        raise ValueError(
            f"max_symbols_per_frame must be a positive integer, not {max_symbols_per_frame!r}"
        )
    frames = np.asarray(frames, dtype=np.float32)
    width = bundle.config.encoder_dim
    if frames.ndim != 2 or frames.shape[1] != width:
        raise ValueError(f"encoder frames must be of shape (T, {width}), not {frames.shape}")
    w = bundle.weights()
    # The joint's first layer is linear: project the encoder frames once, the predictor
    # output once per emitted symbol, and only add them inside the loop.
    enc_proj = frames @ w["joint.encoder.weight"].T + w["joint.encoder.bias"]
    w_out, b_out = w["joint.output.weight"], w["joint.output.bias"]
    w_pred, b_pred = w["joint.predictor.weight"], w["joint.predictor.bias"]
    state = None

    def predict(token: int) -> np.ndarray:
        nonlocal state
        pred, state = predictor_step(bundle, token, state)
        return w_pred @ pred + b_pred

    def logits(frame: np.ndarray, prediction: np.ndarray) -> np.ndarray:
        return w_out @ _activation(bundle, frame + prediction) + b_out

    return greedy_search(enc_proj, predict, logits, max_symbols_per_frame)


def greedy_search(
    frames: Iterable[Any],
    predict: Callable[[int], Any],
    logits: Callable[[Any, Any], np.ndarray],
    max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS,
) -> list[int]:
    """Greedy RNN-T search, the one every decoder of the project runs (this float model,
    the compiler's integer reference, a compiled program on the simulator).

    ``predict(token)`` advances the prediction network on ``token`` (``BLANK`` first) and
    returns its output; ``logits(frame, prediction)`` is the joint. On each frame the most
    likely symbol (the lowest id on a tie) is emitted and fed back, until blank is most
    likely or ``max_symbols_per_frame`` symbols were emitted on that frame.
    """
    prediction = predict(BLANK)
    tokens: list[int] = []
    for frame in frames:
        for _ in range(max_symbols_per_frame):
            token = int(np.argmax(logits(frame, prediction)))
            if token == BLANK:
                break
            tokens.append(token)
            prediction = predict(token)
    return tokens


def greedy_decode(
    bundle: Bundle, features: np.ndarray, max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS
) -> list[int]:
    """Token ids of one utterance's features ``(T, input_dim)``: encode, then greedy search."""
    return decode_frames(bundle, encode(bundle, features).frames, max_symbols_per_frame)


def transcribe(
    bundle: Bundle,
    audio: np.ndarray,
    sample_rate: int,
    max_symbols_per_frame: int = DEFAULT_MAX_SYMBOLS,
) -> str:
    """The transcript of mono ``audio`` at ``sample_rate`` Hz.

    Features come from :func:`.frontend.features` with the bundle's front end (which
    resamples to its rate), then greedy decoding and :func:`.text.decode`.
    """
    feats = frontend_features(audio, sample_rate, bundle.frontend)
    return ids_to_text(greedy_decode(bundle, feats, max_symbols_per_frame))
