"""The RNN-T architecture as data: sizes, and the names and meaning of every parameter.

This is the contract between the PyTorch models (``asr_workloads.rnnt``), the bundled
checkpoint format and its numpy model, and the compiler. It needs numpy only.

Parameters (``name: shape``; LSTM gates in PyTorch's order i, f, g, o, with
``c' = f c + i g`` and ``h' = o tanh(c')``, zero initial state):

* ``encoder.{l}.w_ih: (4 H_l, reduce_l * In_l)``, ``encoder.{l}.w_hh: (4 H_l, H_l)``,
  ``encoder.{l}.bias: (4 H_l,)`` (one bias: PyTorch's ``b_ih + b_hh``). ``In_0`` is the
  front end's stacked feature width; ``In_l = H_{l-1}``. Before layer ``l`` its input
  frames are concatenated in groups of ``reduce_l`` (time reduction): output frame ``t`` is
  ``[x[r t], ..., x[r t + r - 1]]``, the last group zero-padded, so ``T' = ceil(T / r)``.
* ``predictor.embedding: (V, E)``: row ``BLANK`` is the start symbol;
  ``predictor.{l}.w_ih``, ``.w_hh``, ``.bias`` as for the encoder (no time reduction).
* ``joint.encoder.weight: (J, H_enc)``, ``joint.encoder.bias: (J,)``,
  ``joint.predictor.weight: (J, H_pred)``, ``joint.predictor.bias: (J,)``,
  ``joint.output.weight: (V, J)``, ``joint.output.bias: (V,)``:
  ``logits = output(act(encoder(e_t) + predictor(p_u)))``, ``act`` tanh or relu.
* Branching encoder only: encoder layers ``0 .. stem_layers - 1`` are a shared stem; the
  rest are the *expensive* branch; ``cheap.{l}.w_ih/.w_hh/.bias`` is the *cheap* branch
  (an LSTM stack on the stem's output, no time reduction; its last size equals the
  expensive branch's); ``gate.weight: (1, H_stem)``, ``gate.bias: (1,)``. Per stem frame
  ``p_t = sigmoid(gate(s_t))``; at inference the expensive branch runs on frame ``t`` iff
  ``p_t >= 1/2`` (its state is held unchanged on the other frames) and the encoder output is
  the expensive branch's output on those frames and the cheap branch's elsewhere. The cheap
  branch runs on every frame.
* Training only, never bundled: ``ctc.weight: (V, H_enc)``, ``ctc.bias: (V,)``.

Every 2-D parameter but ``ctc.weight`` is quantized per output row (see
:mod:`.weight_quant`); the matrices the MAC array multiplies (``w_ih``, ``w_hh``, the joint's
weights) are also the ones pruning may sparsify.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .text import VOCABULARY

__all__ = [
    "ACTIVATIONS",
    "BranchingConfig",
    "EncoderConfig",
    "JointConfig",
    "ModelConfig",
    "PredictorConfig",
    "check_keys",
    "from_mapping",
    "is_prunable",
    "is_quantized",
]

ACTIVATIONS = ("tanh", "relu")


def _sizes(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{name} must be a non-empty list of positive integers, not {value!r}")
    for size in value:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name} must hold positive integers, not {size!r}")
    return tuple(value)


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def check_keys(data: Any, known: Any, where: str = "") -> None:
    """Raise ValueError unless ``data`` is a mapping whose keys are all in ``known``.

    The message names the first unknown key as ``where.key`` (``key`` at the top level) and
    lists the known ones.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'the data'} must be a mapping, not {type(data).__name__}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(f"unknown key {name} (known: {', '.join(sorted(known))})")


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build the dataclass ``cls`` from a mapping, naming an unknown key with ``where``."""
    check_keys(data, {f.name for f in dataclasses.fields(cls)}, where)
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """LSTM stack over stacked frames.

    Parameters
    ----------
    hidden : tuple of int
        Cell size of each layer.
    reduce : tuple of int, optional
        Frames concatenated before each layer (time reduction); all 1 by default.
    """

    hidden: tuple[int, ...]
    reduce: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _sizes("encoder.hidden", self.hidden))
        reduce = (1,) * len(self.hidden) if self.reduce is None else self.reduce
        object.__setattr__(self, "reduce", _sizes("encoder.reduce", reduce))
        if len(self.reduce) != len(self.hidden):
            raise ValueError(
                f"encoder.reduce must have one entry per layer ({len(self.hidden)}), "
                f"not {len(self.reduce)}"
            )


@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    """Embedding of the previous symbol followed by an LSTM stack."""

    embed: int
    hidden: tuple[int, ...]

    def __post_init__(self) -> None:
        _positive("predictor.embed", self.embed)
        object.__setattr__(self, "hidden", _sizes("predictor.hidden", self.hidden))


@dataclasses.dataclass(frozen=True)
class JointConfig:
    """Joint network width and activation (``"tanh"`` or ``"relu"``)."""

    hidden: int
    activation: str = "tanh"

    def __post_init__(self) -> None:
        _positive("joint.hidden", self.hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"joint.activation must be one of {', '.join(ACTIVATIONS)}, not {self.activation!r}"
            )


@dataclasses.dataclass(frozen=True)
class BranchingConfig:
    """A cheap and an expensive encoder branch behind a learned per-frame gate.

    Parameters
    ----------
    stem_layers : int
        Leading encoder layers shared by both branches (at least 1: the gate reads them).
    cheap_hidden : tuple of int
        Cell sizes of the cheap branch; the last equals the encoder's last size.
    penalty : float
        Weight of the compute penalty in the training loss. Its argument is ``f``, the
        fraction of a batch's valid frames the expensive branch runs on (the mean gate
        probability).
    budget : float or None
        None: the penalty is ``penalty * f``. A target fraction ``b``: it is
        ``penalty * (f - b)**2``, pulling the fraction towards the budget from both sides
        (a target-rate loss, as in Verelst and Tuytelaars's dynamic convolutions). Without
        a budget the gate closes on nearly every frame within the first 800 steps, before
        any penalty (the cheap branch learns faster, and a soft gate scales the expensive
        branch's gradient by ``p``): 2 to 4 % of frames stay expensive. A budget keeps the
        expensive branch trained, and the gate learns which frames to spend it on.
    """

    stem_layers: int
    cheap_hidden: tuple[int, ...]
    penalty: float = 0.1
    budget: float | None = None

    def __post_init__(self) -> None:
        _positive("branching.stem_layers", self.stem_layers)
        object.__setattr__(
            self, "cheap_hidden", _sizes("branching.cheap_hidden", self.cheap_hidden)
        )
        if not isinstance(self.penalty, int | float) or self.penalty < 0:
            raise ValueError(f"branching.penalty must be a number >= 0, not {self.penalty!r}")
        budget = self.budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget < 1
        ):
            raise ValueError(f"branching.budget must be a number in (0, 1), not {budget!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A whole RNN-T: input width, vocabulary size, and its three parts' sizes."""

    input_dim: int
    encoder: EncoderConfig
    predictor: PredictorConfig
    joint: JointConfig
    branching: BranchingConfig | None = None
    vocab_size: int = len(VOCABULARY)

    def __post_init__(self) -> None:
        _positive("input_dim", self.input_dim)
        _positive("vocab_size", self.vocab_size)
        if self.branching is not None:
            stem = self.branching.stem_layers
            if stem >= len(self.encoder.hidden):
                raise ValueError(
                    f"branching.stem_layers must leave at least one encoder layer for the "
                    f"expensive branch ({len(self.encoder.hidden)} layers), not {stem}"
                )
            if any(r != 1 for r in self.encoder.reduce[stem:]):
                raise ValueError(
                    "encoder.reduce must be 1 after the branching stem (the gate decides per "
                    f"stem frame), not {list(self.encoder.reduce[stem:])}"
                )
            if self.branching.cheap_hidden[-1] != self.encoder.hidden[-1]:
                raise ValueError(
                    f"branching.cheap_hidden must end with the encoder's last size "
                    f"{self.encoder.hidden[-1]}, not {self.branching.cheap_hidden[-1]}"
                )

    @property
    def encoder_dim(self) -> int:
        """Width of an encoder output frame."""
        return self.encoder.hidden[-1]

    @property
    def predictor_dim(self) -> int:
        """Width of a prediction-network output."""
        return self.predictor.hidden[-1]

    @property
    def time_reduction(self) -> int:
        """Input frames per encoder output frame (product of ``encoder.reduce``)."""
        product = 1
        for r in self.encoder.reduce:
            product *= r
        return product

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready values (tuples as lists)."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            return value

        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any, where: str = "model") -> ModelConfig:
        """Build from ``to_dict``-shaped data; an unknown key is named as ``where.key``."""
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a mapping, not {type(data).__name__}")
        parts = {
            "encoder": EncoderConfig,
            "predictor": PredictorConfig,
            "joint": JointConfig,
            "branching": BranchingConfig,
        }
        fields = dict(data)
        for key, part in parts.items():
            if fields.get(key) is not None:
                fields[key] = from_mapping(part, fields[key], f"{where}.{key}")
        return from_mapping(cls, fields, where)


def is_quantized(name: str) -> bool:
    """Whether the parameter ``name`` is stored quantized (every 2-D one but the CTC head)."""
    return name.endswith((".w_ih", ".w_hh", ".weight", ".embedding")) and not name.startswith(
        "ctc."
    )


def is_prunable(name: str) -> bool:
    """Whether pruning may sparsify ``name``: the matrices the MAC array multiplies."""
    return name.endswith((".w_ih", ".w_hh")) or (
        name.startswith("joint.") and name.endswith(".weight")
    )
