"""LSTM stacks with contract-named weights, run the way the hardware compiler runs them.

Each layer holds plain parameters ``w_ih: (4H, r In)``, ``w_hh: (4H, H)`` and ``bias: (4H,)``
(gates i, f, g, o; one bias), named as :mod:`..model_config` fixes them. A layer runs as:

1. time reduction: groups of ``r`` input frames concatenated, the last group zero-padded;
2. the input projection of *all* frames in one matrix multiply (hoisted out of the
   recurrence, as the compiler does: it is the bulk of the work and needs no state);
3. a loop over time for the recurrent part only (:mod:`.recurrence`, with a hand-written
   backward pass through time).

Training, where no caller needs the final state, runs a plain layer through PyTorch's fused
LSTM kernel instead (:func:`fused_lstm_layer`): the same function (gates i, f, g, o, one
bias), its backward about 1.6 times faster than the loop's at the encoder's sizes.

Padded batches carry per-utterance lengths: past its end a sequence's outputs are zero and
its state stops updating, so a short utterance computes the same in any batch. Weights are
read through one hook (``weight(local_name) -> tensor``), so a model can run the stack with
"effective" weights (masked and fake-quantized) while the parameters stay float.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from .recurrence import lstm_recurrence

__all__ = [
    "LSTMLayer",
    "LSTMStack",
    "State",
    "WeightHook",
    "fused_lstm_layer",
    "lstm_layer",
    "select_state",
    "time_reduce",
    "valid_mask",
]

#: Maps a parameter name local to the stack (``"0.w_ih"``) to the tensor to compute with.
WeightHook = Callable[[str], torch.Tensor]

#: Per-layer ``(h, c)``, each ``(B, H_l)``.
State = tuple[tuple[torch.Tensor, torch.Tensor], ...]


def valid_mask(lengths: torch.Tensor, frames: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, frames)`` mask: 1 where ``t < lengths[b]``, else 0."""
    steps = torch.arange(frames, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).to(dtype)


def time_reduce(
    x: torch.Tensor, lengths: torch.Tensor | None, reduce: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate groups of ``reduce`` frames: ``(B, T, D)`` to ``(B, ceil(T/r), r D)``.

    Output frame ``t`` is ``[x[r t], ..., x[r t + r - 1]]``. Frames at or past a sequence's
    length are zeroed first, so its last group is zero-padded whatever the batch padding
    holds; its new length is ``ceil(length / r)``.
    """
    if reduce == 1:
        return x, lengths
    batch, frames, width = x.shape
    if lengths is not None:
        x = x * valid_mask(lengths, frames, x.dtype)[:, :, None]
    groups = -(-frames // reduce)
    x = nn.functional.pad(x, (0, 0, 0, groups * reduce - frames))
    x = x.reshape(batch, groups, reduce * width)
    return x, None if lengths is None else -(-lengths // reduce)


def lstm_layer(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    update: torch.Tensor | None = None,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run one LSTM layer over ``x: (B, T, In)``.

    Parameters
    ----------
    x : torch.Tensor
        Input frames (already time-reduced).
    w_ih, w_hh, bias : torch.Tensor
        Weights, gates in the order i, f, g, o.
    update : torch.Tensor, optional
        ``(B, T)`` weight of each step's new state against the held one, in ``[0, 1]``:
        0 past a sequence's end, and a gate's decision (hard 0/1) or probability (soft)
        for a gated branch. The state becomes ``lerp(old, new, update)``, exactly ``new``
        at 1 and exactly ``old`` at 0. The step's output is the fresh ``h`` times
        ``update > 0`` (zero where the step does not run at all). None: every step runs.
    state : tuple of torch.Tensor, optional
        Initial ``(h, c)``, each ``(B, H)``; zeros by default.

    Returns
    -------
    tuple
        Outputs ``(B, T, H)`` and the final ``(h, c)``.
    """
    batch, frames, _ = x.shape
    hidden = w_hh.shape[1]
    if state is None:
        h = x.new_zeros(batch, hidden)
        c = x.new_zeros(batch, hidden)
    else:
        h, c = state
    # The input projection of every frame at once: one large GEMM outside the recurrence.
    projected = torch.addmm(bias, x.reshape(batch * frames, -1), w_ih.t())
    projected = projected.view(batch, frames, 4 * hidden)
    outputs, h, c = lstm_recurrence(projected, w_hh, h, c, update)
    return outputs, (h, c)


@functools.cache
def _fused_module(input_size: int, hidden: int) -> nn.LSTM:
    # Only its forward is used, with the caller's tensors swapped in for its parameters.
    return nn.LSTM(input_size, hidden, batch_first=True)


def fused_lstm_layer(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    lengths: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`lstm_layer`'s outputs from a zero state, by PyTorch's fused LSTM kernel.

    Returns ``(B, T, H)`` outputs, zero past each length. A unidirectional LSTM's valid
    outputs do not depend on the padding after them, so the padded batch runs unpacked
    (packing costs more than it saves) and the frames past each length are zeroed after;
    the final state is not returned, since past a length it is the padding's.
    """
    weights = {
        "weight_ih_l0": w_ih,
        "weight_hh_l0": w_hh,
        "bias_ih_l0": bias,
        "bias_hh_l0": torch.zeros_like(bias),
    }
    outputs, _ = functional_call(_fused_module(x.shape[2], w_hh.shape[1]), weights, (x,))
    if lengths is not None:
        outputs = outputs * valid_mask(lengths, x.shape[1], x.dtype)[:, :, None]
    return outputs


def select_state(keep_new: torch.Tensor, new: State, old: State) -> State:
    """Per utterance, ``new`` where ``keep_new`` (bool ``(B,)``) else ``old``."""
    pick = keep_new[:, None]
    return tuple(
        (torch.where(pick, hn, ho), torch.where(pick, cn, co))
        for (hn, cn), (ho, co) in zip(new, old, strict=True)
    )


class LSTMLayer(nn.Module):
    """The parameters of one layer (``w_ih``, ``w_hh``, ``bias``) and its time reduction.

    Initialised as PyTorch's ``nn.LSTM`` (uniform in ``±1/sqrt(H)``), plus 1 on the forget
    gate's bias so that early in training the cell keeps its state and gradients reach back
    through time.

    Parameters
    ----------
    input_size : int
        Width of an input frame before time reduction.
    hidden : int
        Cell size ``H``.
    reduce : int
        Frames concatenated before the layer.
    """

    def __init__(self, input_size: int, hidden: int, reduce: int = 1) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden", hidden), ("reduce", reduce)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LSTM {name} must be a positive integer, not {value!r}")
        self.input_size = input_size
        self.hidden = hidden
        self.reduce = reduce
        bound = 1.0 / math.sqrt(hidden)
        self.w_ih = nn.Parameter(torch.empty(4 * hidden, reduce * input_size))
        self.w_hh = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.bias = nn.Parameter(torch.empty(4 * hidden))
        with torch.no_grad():
            for p in (self.w_ih, self.w_hh, self.bias):
                p.uniform_(-bound, bound)
            self.bias[hidden : 2 * hidden] += 1.0


class LSTMStack(nn.Module):
    """Layers registered as ``"0"``, ``"1"``, ... so their parameters are ``"{l}.w_ih"`` etc.

    Parameters
    ----------
    input_size : int
        Width of the stack's input frames.
    hidden : sequence of int
        Cell size of each layer.
    reduce : sequence of int, optional
        Time reduction before each layer; all 1 by default.
    """

    def __init__(
        self, input_size: int, hidden: Sequence[int], reduce: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        reduce = [1] * len(hidden) if reduce is None else list(reduce)
        if not hidden or len(reduce) != len(hidden):
            raise ValueError(
                f"an LSTM stack needs one reduce per layer, not hidden={list(hidden)!r}, "
                f"reduce={reduce!r}"
            )
        width = input_size
        for index, (size, r) in enumerate(zip(hidden, reduce, strict=True)):
            self.add_module(str(index), LSTMLayer(width, size, r))
            width = size
        self.depth = len(hidden)

    def layer(self, index: int) -> LSTMLayer:
        """Layer ``index``."""
        return self.get_submodule(str(index))

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        weight: WeightHook | None = None,
        state: State | None = None,
        layers: range | None = None,
        update: torch.Tensor | None = None,
        final_state: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """Run ``layers`` (all by default) of the stack over ``x: (B, T, In)``.

        Parameters
        ----------
        x : torch.Tensor
            Input frames of the first layer run.
        lengths : torch.Tensor, optional
            ``(B,)`` valid frames per sequence; None when every frame is valid.
        weight : WeightHook, optional
            Source of the weights by local name; the stack's own parameters by default.
        state : State, optional
            Initial ``(h, c)`` per layer run; zeros by default.
        layers : range, optional
            Consecutive layer indices to run (a branch of a branching encoder).
        update : torch.Tensor, optional
            ``(B, T)`` gate weight of each frame's state update (see :func:`lstm_layer`),
            at the rate of the first layer run's output; the layers run must then not
            reduce time.
        final_state : bool, optional
            False when the caller discards the final state: while gradients are recorded,
            ungated layers from a zero state then run :func:`fused_lstm_layer` (the loop
            keeps inference exactly as streaming computes it), and the returned state is
            empty.

        Returns
        -------
        tuple
            Outputs ``(B, T', H)`` (zero past each length), output lengths (None if
            ``lengths`` was None) and the final state of each layer run.
        """
        fused = not final_state and update is None and state is None and torch.is_grad_enabled()
        layers = range(self.depth) if layers is None else layers
        read = weight if weight is not None else self.get_parameter
        states = []
        for position, index in enumerate(layers):
            layer = self.layer(index)
            if update is not None and layer.reduce != 1:
                raise ValueError(f"a gated LSTM layer cannot reduce time (layer {index})")
            x, lengths = time_reduce(x, lengths, layer.reduce)
            if fused:
                x = fused_lstm_layer(
                    x, read(f"{index}.w_ih"), read(f"{index}.w_hh"), read(f"{index}.bias"), lengths
                )
                continue
            step = update
            if lengths is not None:
                valid = valid_mask(lengths, x.shape[1], x.dtype)
                step = valid if update is None else update * valid
            x, last = lstm_layer(
                x,
                read(f"{index}.w_ih"),
                read(f"{index}.w_hh"),
                read(f"{index}.bias"),
                update=step,
                state=None if state is None else state[position],
            )
            states.append(last)
        return x, lengths, tuple(states)
