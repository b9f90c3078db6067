"""The RNN-T of :mod:`..model_config` in PyTorch: encoder, prediction network, joint, CTC head.

Parameter names are exactly the contract's (``state_dict()`` keys such as
``"encoder.0.w_ih"``, ``"predictor.embedding"``, ``"joint.output.weight"``). Every weight is
read through one hook, :meth:`RNNT.weight`, which applies the pruning mask and, once a
precision is set, fake quantization; so the forward pass computes with exactly the
"effective" weights that :meth:`RNNT.effective_parameters` exports.

The branching encoder (when ``config.branching`` is set) runs the stem, then the cheap
branch on every stem frame, and the expensive branch gated per frame by
``p_t = sigmoid(gate(s_t))``. At inference (``eval()``) the gate is hard: the expensive
branch runs on frame ``t`` iff ``p_t >= 1/2`` and holds its state otherwise, and the output
is the expensive branch's on those frames and the cheap branch's elsewhere. In training the
gate is soft (state and output blended by ``p_t``) or, with ``hard_gate=True``, hard in the
forward pass with a straight-through gradient to ``p_t``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..model_config import ModelConfig, is_quantized
from ..text import BLANK
from ..weight_quant import weight_precision
from .fake_quant import fake_quantize
from .lstm import LSTMStack, State, valid_mask

__all__ = ["RNNT", "Encoded"]


class Encoded(NamedTuple):
    """What :meth:`RNNT.encode` returns.

    Attributes
    ----------
    frames : torch.Tensor
        ``(B, T', H_enc)`` encoder output, zero past each length.
    lengths : torch.Tensor
        ``(B,)`` valid output frames per utterance.
    gate : torch.Tensor or None
        Branching encoder only: ``(B, T')`` gate probabilities ``p_t``, zero past each
        length; None otherwise.
    """

    frames: torch.Tensor
    lengths: torch.Tensor
    gate: torch.Tensor | None

    @property
    def expensive_frames(self) -> torch.Tensor:
        """Sum of the gate probabilities over all valid frames of the batch (differentiable).

        The expected number of frames on which the expensive branch runs; divided by
        ``lengths.sum()``, the fraction the trainer's compute penalty
        (``branching.penalty`` and ``budget``) acts on.
        """
        if self.gate is None:
            raise ValueError("expensive_frames needs a branching encoder's gate")
        # Summed in float32: under bfloat16 autocast the gate is bfloat16.
        return self.gate.float().sum()


class _Affine(nn.Module):
    """``weight: (out, in)`` and ``bias: (out,)``, initialised as ``nn.Linear``."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(inputs)
        self.weight = nn.Parameter(torch.empty(outputs, inputs).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(outputs).uniform_(-bound, bound))


class _Joint(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.joint.hidden
        self.encoder = _Affine(config.encoder_dim, width)
        self.predictor = _Affine(config.predictor_dim, width)
        self.output = _Affine(width, config.vocab_size)


class _Predictor(LSTMStack):
    """The prediction network's LSTM stack plus ``embedding: (V, E)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config.predictor.embed, config.predictor.hidden)
        self.embedding = nn.Parameter(torch.randn(config.vocab_size, config.predictor.embed))


class _StraightThroughGate(torch.autograd.Function):
    """Forward: the hard decision ``p >= 1/2`` (exactly 0 or 1); backward: the identity."""

    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        return (p >= 0.5).to(p.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class RNNT(nn.Module):
    """An RNN-T with contract-named parameters, pruning masks and fake quantization.

    Parameters
    ----------
    config : ModelConfig
        Architecture.
    precision : str, optional
        ``"int8"`` or ``"int4"`` to fake-quantize the quantized parameters
        (``model_config.is_quantized``); None computes in float. See :meth:`set_precision`.
    hard_gate : bool
        Train a branching encoder with a straight-through hard gate rather than a soft one.

    Attributes
    ----------
    masks : dict of str to torch.Tensor
        Pruning masks (0/1, the parameter's shape) by parameter name; see :meth:`set_mask`.
        Not part of ``state_dict()``: pruned weights are kept at zero, so the mask can be
        recovered from a checkpoint as ``weight != 0``.
    """

    def __init__(
        self, config: ModelConfig, precision: str | None = None, hard_gate: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, not {type(config).__name__}")
        encoder = config.encoder
        branching = config.branching
        self.config = config
        self.set_precision(precision)
        self.hard_gate = bool(hard_gate)
        self.masks: dict[str, torch.Tensor] = {}
        self._weight_cache: dict[str, tuple] = {}
        self.encoder = LSTMStack(config.input_dim, encoder.hidden, encoder.reduce)
        self.predictor = _Predictor(config)
        # ``joint`` is also the method computing the joint network, which ``add_module``
        # refuses to shadow; the contract still names the parameters ``joint.*``, so the
        # container is registered directly (it is only ever read through ``weight``).
        self._modules["joint"] = _Joint(config)
        if branching is not None:
            stem_dim = encoder.hidden[branching.stem_layers - 1]
            self.cheap = LSTMStack(stem_dim, branching.cheap_hidden)
            self.gate = _Affine(stem_dim, 1)
            with torch.no_grad():
                # Start with the expensive branch on (p ~ 0.9) and let the compute penalty
                # switch it off where the cheap branch does as well.
                self.gate.bias.fill_(2.0)
        self.ctc = _Affine(config.encoder_dim, config.vocab_size)

    # --- weights --------------------------------------------------------------------------

    @property
    def precision(self) -> str | None:
        """Fake-quantization precision (``"int8"``, ``"int4"``) or None for float."""
        return self._precision

    def set_precision(self, precision: str | None) -> None:
        """Fake-quantize from now on at ``precision`` (``"int8"``, ``"int4"``), or not (None).

        Training typically switches quantization on part-way (QAT after a float phase).
        """
        if precision is not None:
            weight_precision(precision)
        self._precision = precision

    def parameter(self, name: str) -> nn.Parameter:
        """The parameter called ``name`` in the contract (``"joint.output.weight"``).

        Use this rather than ``get_parameter``, which resolves ``joint`` to the method.
        """
        module: nn.Module = self
        *path, leaf = name.split(".")
        try:
            for part in path:
                module = module._modules[part]
            return module._parameters[leaf]
        except KeyError:
            raise KeyError(f"the model has no parameter {name!r}") from None

    def set_mask(self, name: str, mask: torch.Tensor | None) -> None:
        """Set (or, with None, remove) the pruning mask of parameter ``name``."""
        param = self.parameter(name)
        self._weight_cache.pop(name, None)
        if mask is None:
            self.masks.pop(name, None)
            return
        if mask.shape != param.shape:
            raise ValueError(
                f"mask for {name} must have shape {tuple(param.shape)}, not {tuple(mask.shape)}"
            )
        self.masks[name] = mask.to(dtype=param.dtype, device=param.device)

    def weight(self, name: str) -> torch.Tensor:
        """The tensor the model computes with for parameter ``name``: masked, fake-quantized.

        This is the one hook every forward computation reads its weights through. Without
        autograd (decoding) the result is cached until the parameter or its mask changes
        in place or the precision changes: step-by-step decoding reads the same weights
        hundreds of times per utterance.
        """
        w = self.parameter(name)
        mask = self.masks.get(name)
        quantize = self._precision is not None and is_quantized(name)
        if mask is None and not quantize:
            return w
        key = None
        if not torch.is_grad_enabled():
            # Tensor versions count in-place updates (optimizer steps, pruning, loading); the
            # storage address and dtype catch a replaced ``.data`` (``model.to(...)``).
            mask_version = None if mask is None else mask._version
            key = (w._version, w.data_ptr(), w.dtype, mask_version, quantize)
            hit = self._weight_cache.get(name)
            if hit is not None and hit[0] == key and hit[1] == self._precision:
                return hit[2]
        if mask is not None:
            w = w * mask
        if quantize:
            w = fake_quantize(w, self._precision)
        if key is not None:
            self._weight_cache[name] = (key, self._precision, w)
        return w

    def quantized_parameters(self) -> dict[str, torch.Tensor]:
        """Masked float weights of the quantized parameters (for ``grid_regularizer``)."""
        weights = {}
        for name, param in self.named_parameters():
            if is_quantized(name):
                mask = self.masks.get(name)
                weights[name] = param if mask is None else param * mask
        return weights

    @torch.no_grad()
    def effective_parameters(self, include_ctc: bool = False) -> dict[str, torch.Tensor]:
        """Every parameter as the model computes with it (masked, fake-quantized), detached.

        The CTC head is a training aid that is never bundled, so it is left out unless
        ``include_ctc``.
        """
        return {
            name: self.weight(name).detach().clone()
            for name, _ in self.named_parameters()
            if include_ctc or not name.startswith("ctc.")
        }

    def _hook(self, prefix: str):
        return lambda local: self.weight(f"{prefix}.{local}")

    def _affine(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return nn.functional.linear(x, self.weight(f"{name}.weight"), self.weight(f"{name}.bias"))

    # --- encoder --------------------------------------------------------------------------

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """Encode a padded batch of stacked features.

        Parameters
        ----------
        features : torch.Tensor
            ``(B, T, input_dim)``; frames past each length are ignored.
        lengths : torch.Tensor
            ``(B,)`` integer valid frames, each in ``[1, T]``.
        """
        config = self.config
        if features.dim() != 3 or features.shape[2] != config.input_dim:
            raise ValueError(
                f"features must have shape (B, T, {config.input_dim}), not {tuple(features.shape)}"
            )
        _check_lengths("lengths", lengths, features.shape[0], 1, features.shape[1])
        if config.branching is None:
            frames, lengths, _ = self.encoder(
                features, lengths, self._hook("encoder"), final_state=False
            )
            return Encoded(frames, lengths, None)
        stem_layers = config.branching.stem_layers
        stem, lengths, _ = self.encoder(
            features, lengths, self._hook("encoder"), layers=range(stem_layers), final_state=False
        )
        valid = valid_mask(lengths, stem.shape[1], stem.dtype)
        p = torch.sigmoid(self._affine(stem, "gate")[..., 0]) * valid
        if not self.training:
            run = (p >= 0.5).to(p.dtype)
        elif self.hard_gate:
            run = _StraightThroughGate.apply(p)
        else:
            run = p
        cheap, _, _ = self.cheap(stem, lengths, self._hook("cheap"), final_state=False)
        expensive, _, _ = self.encoder(
            stem,
            lengths,
            self._hook("encoder"),
            layers=range(stem_layers, self.encoder.depth),
            update=run,
        )
        # lerp is exact at the ends: the cheap output where run == 0, the expensive one at 1.
        return Encoded(torch.lerp(cheap, expensive, run[..., None]), lengths, p)

    def ctc_logits(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, T, V)`` CTC logits of encoder frames (a training aid)."""
        return self._affine(frames, "ctc")

    # --- prediction network -----------------------------------------------------------------

    def predict(
        self, tokens: torch.Tensor, state: State | None = None, final_state: bool = True
    ) -> tuple[torch.Tensor, State]:
        """Run the prediction network over ``tokens: (B, U)``.

        The caller prepends ``BLANK`` (the start symbol) to a transcript; step-by-step
        decoding passes one token per call with the returned state. Training passes
        ``final_state=False``: from a zero state it then runs the fused LSTM kernel (see
        :meth:`LSTMStack.forward`), whose forward and backward take half the loop's time.

        Returns
        -------
        tuple
            Outputs ``(B, U, H_pred)`` and the per-layer ``(h, c)`` state after the last token
            (empty with ``final_state=False``).
        """
        vocab = self.config.vocab_size
        if tokens.dim() != 2 or tokens.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"tokens must be a (B, U) integer tensor, not {tokens.dtype} {tuple(tokens.shape)}"
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            bad = tokens[(tokens < 0) | (tokens >= vocab)][0]
            raise ValueError(f"token {int(bad)} is outside the vocabulary [0, {vocab})")
        x = nn.functional.embedding(tokens, self.weight("predictor.embedding"))
        out, _, state = self.predictor(
            x, None, self._hook("predictor"), state=state, final_state=final_state
        )
        return out, state

    def start(self, batch: int) -> tuple[torch.Tensor, State]:
        """Prediction-network output and state after the start symbol, ``(B, H)`` each."""
        device = self.predictor.embedding.device
        out, state = self.predict(torch.full((batch, 1), BLANK, device=device))
        return out[:, 0], state

    # --- joint ----------------------------------------------------------------------------

    def _joint_output(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.config.joint.activation == "tanh":
            hidden = torch.tanh(hidden)
        else:
            hidden = torch.relu(hidden)
        return self._affine(hidden, "joint.output")

    def joint(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """``(B, T, U1, V)`` logits of every (encoder frame, predictor output) pair.

        Parameters
        ----------
        enc : torch.Tensor
            ``(B, T, H_enc)`` encoder frames.
        pred : torch.Tensor
            ``(B, U1, H_pred)`` prediction-network outputs.
        """
        if enc.dim() != 3 or pred.dim() != 3 or enc.shape[0] != pred.shape[0]:
            raise ValueError(
                f"joint needs enc (B, T, H) and pred (B, U1, H), not {tuple(enc.shape)} "
                f"and {tuple(pred.shape)}"
            )
        # Project each side once, then broadcast: B*T*U1*J adds instead of matmuls.
        e = self._affine(enc, "joint.encoder")
        p = self._affine(pred, "joint.predictor")
        return self._joint_output(e[:, :, None, :] + p[:, None, :, :])

    def joint_at(
        self, enc: torch.Tensor, pred: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """``(B, T, S, V)`` logits of frame ``t`` with the outputs ``pred[b, positions[b, t, k]]``.

        The pruned RNN-T loss's joint: ``S`` label positions per frame instead of all.
        """
        batch, frames, window = positions.shape
        e = self._affine(enc, "joint.encoder")
        p = self._affine(pred, "joint.predictor")  # project before gathering: U1 rows, not T S
        picked = p.gather(1, positions.reshape(batch, -1, 1).expand(-1, -1, p.shape[-1]))
        return self._joint_output(e[:, :, None, :] + picked.view(batch, frames, window, -1))

    def joint_step(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """``(B, V)`` logits of one encoder frame and one predictor output per utterance."""
        return self._joint_output(
            self._affine(enc, "joint.encoder") + self._affine(pred, "joint.predictor")
        )


def _check_lengths(name: str, lengths: torch.Tensor, batch: int, low: int, high: int) -> None:
    if (
        not isinstance(lengths, torch.Tensor)
        or lengths.shape != (batch,)
        or lengths.dtype not in (torch.int32, torch.int64)
    ):
        shape = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else lengths
        raise ValueError(f"{name} must be a ({batch},) integer tensor, not {shape!r}")
    if batch and (int(lengths.min()) < low or int(lengths.max()) > high):
        bad = lengths[(lengths < low) | (lengths > high)][0]
        raise ValueError(f"{name} must lie in [{low}, {high}], not {int(bad)}")
