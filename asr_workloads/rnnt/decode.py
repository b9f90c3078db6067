"""Greedy RNN-T decoding: batched, and a one-utterance reference it must agree with.

At each encoder frame the decoder asks the joint for the most likely symbol given the
prediction network's output; a label is emitted (and fed back to the prediction network),
and the same frame is asked again, until blank or ``max_symbols`` labels; then it moves to
the next frame. Capping the labels per frame bounds the work per frame, as the host runtime
must on the device.
"""

from __future__ import annotations

import torch

from ..numpy_model import DEFAULT_MAX_SYMBOLS
from ..text import BLANK
from .lstm import select_state
from .model import RNNT

__all__ = ["greedy_decode", "greedy_decode_one"]


def _check_max_symbols(max_symbols: int) -> None:
    if not isinstance(max_symbols, int) or isinstance(max_symbols, bool) or max_symbols < 1:
        raise ValueError(f"max_symbols must be a positive integer, not {max_symbols!r}")


@torch.no_grad()
def greedy_decode(
    model: RNNT,
    features: torch.Tensor,
    lengths: torch.Tensor,
    max_symbols: int = DEFAULT_MAX_SYMBOLS,
) -> list[list[int]]:
    """Greedy decoding of a padded batch, all utterances stepped together.

    Parameters
    ----------
    model : RNNT
        The model; it is run as is (call ``model.eval()`` for the hard branching gate).
    features : torch.Tensor
        ``(B, T, input_dim)`` stacked features.
    lengths : torch.Tensor
        ``(B,)`` valid frames.
    max_symbols : int
        Most labels emitted per encoder frame.

    Returns
    -------
    list of list of int
        Token ids per utterance (no blanks).
    """
    _check_max_symbols(max_symbols)
    frames, frame_lengths, _ = model.encode(features, lengths)
    batch = frames.shape[0]
    pred, state = model.start(batch)
    hypotheses: list[list[int]] = [[] for _ in range(batch)]
    for t in range(frames.shape[1]):
        asking = t < frame_lengths
        for _ in range(max_symbols):
            if not bool(asking.any()):
                break
            token = model.joint_step(frames[:, t], pred).argmax(dim=-1)
            emit = asking & (token != BLANK)
            if not bool(emit.any()):
                break
            for b in emit.nonzero()[:, 0].tolist():
                hypotheses[b].append(int(token[b]))
            # The prediction network runs on the whole batch; utterances that did not emit
            # keep their output and state.
            out, new_state = model.predict(token[:, None], state)
            pred = torch.where(emit[:, None], out[:, 0], pred)
            state = select_state(emit, new_state, state)
            asking = emit
    return hypotheses


@torch.no_grad()
def greedy_decode_one(
    model: RNNT, features: torch.Tensor, max_symbols: int = DEFAULT_MAX_SYMBOLS
) -> list[int]:
    """Greedy decoding of one utterance ``(T, input_dim)``, symbol by symbol (reference)."""
    _check_max_symbols(max_symbols)
    if features.dim() != 2:
        raise ValueError(f"features must be (T, input_dim), not {tuple(features.shape)}")
    lengths = torch.tensor([features.shape[0]])
    frames, _, _ = model.encode(features[None], lengths)
    pred, state = model.start(1)
    hypothesis: list[int] = []
    for t in range(frames.shape[1]):
        for _ in range(max_symbols):
            token = int(model.joint_step(frames[:, t], pred)[0].argmax())
            if token == BLANK:
                break
            hypothesis.append(token)
            out, state = model.predict(torch.tensor([[token]]), state)
            pred = out[:, 0]
    return hypothesis
