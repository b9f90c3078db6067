"""ONNX export of a trained RNN-T: three graphs, as PyTorch's exporter writes them.

* ``encoder.onnx``: ``features (1, T, input_dim)`` (normalised, stacked outside the graph)
  -> ``frames (1, T', H_enc)``; one ``LSTM`` node per layer, time reduction as
  ``Pad`` + ``Reshape``;
* ``predictor.onnx``: ``token (1, 1)`` int64 and ``h{l}, c{l} (1, 1, H_l)`` per layer ->
  ``output (1, H_pred)`` and the new states; the embedding is a ``Gather``;
* ``joint.onnx``: ``frame (N, H_enc)``, ``prediction (N, H_pred)`` -> ``logits (N, V)``.

Masks and fake quantization are folded into plain float weights first (the weights the
model computes with), so the graphs hold no training machinery. The TorchScript exporter
(``dynamo=False``) at opset 17 is used: it emits ONNX ``LSTM`` nodes for ``nn.LSTM``.
The branching encoder is not exported (its per-frame gate holds the expensive branch's
state, which one ``LSTM`` node cannot express); its bundle is the deployable form.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_output
from .model_config import ModelConfig
from .rnnt.model import RNNT

__all__ = ["OPSET", "PARTS", "ExportError", "export_onnx"]

OPSET = 17
PARTS = ("encoder", "predictor", "joint")


class ExportError(ValueError):
    """A model that cannot be exported (names the reason)."""


def _lstm(weights: dict[str, torch.Tensor], prefix: str) -> nn.LSTM:
    """An ``nn.LSTM`` layer holding the effective weights of ``prefix`` (one bias)."""
    w_ih, w_hh = weights[f"{prefix}.w_ih"], weights[f"{prefix}.w_hh"]
    lstm = nn.LSTM(w_ih.shape[1], w_hh.shape[1], batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w_ih)
        lstm.weight_hh_l0.copy_(w_hh)
        lstm.bias_ih_l0.copy_(weights[f"{prefix}.bias"])
        lstm.bias_hh_l0.zero_()
    return lstm


def _linear(weights: dict[str, torch.Tensor], prefix: str) -> nn.Linear:
    w = weights[f"{prefix}.weight"]
    linear = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(w)
        linear.bias.copy_(weights[f"{prefix}.bias"])
    return linear


class _Encoder(nn.Module):
    def __init__(self, config: ModelConfig, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.reduce = list(config.encoder.reduce)
        self.layers = nn.ModuleList(
            _lstm(weights, f"encoder.{i}") for i in range(len(config.encoder.hidden))
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for reduce, lstm in zip(self.reduce, self.layers, strict=True):
            if reduce > 1:
                frames = x.shape[1]
                pad = (reduce - frames % reduce) % reduce
                x = nn.functional.pad(x, (0, 0, 0, pad))
                x = x.reshape(1, -1, reduce * x.shape[2])
            x, _ = lstm(x)
        return x


class _Predictor(nn.Module):
    def __init__(self, config: ModelConfig, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(weights["predictor.embedding"])
        self.layers = nn.ModuleList(
            _lstm(weights, f"predictor.{i}") for i in range(len(config.predictor.hidden))
        )

    def forward(self, token: torch.Tensor, *state: torch.Tensor):
        x = self.embedding(token)
        new_state = []
        for i, lstm in enumerate(self.layers):
            x, (h, c) = lstm(x, (state[2 * i], state[2 * i + 1]))
            new_state += [h, c]
        return (x[:, 0], *new_state)


class _Joint(nn.Module):
    def __init__(self, config: ModelConfig, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.encoder = _linear(weights, "joint.encoder")
        self.predictor = _linear(weights, "joint.predictor")
        self.output = _linear(weights, "joint.output")
        self.activation = torch.tanh if config.joint.activation == "tanh" else torch.relu

    def forward(self, frame: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.encoder(frame) + self.predictor(prediction)))


def _export(
    module: nn.Module,
    args: tuple,
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> None:
    with atomic_output(path) as temp, warnings.catch_warnings():
        # The tracer's notes on nn.LSTM's shape checks and on batch sizes other than 1:
        # every graph here runs one utterance, so they do not apply.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch")
        # The TorchScript exporter is chosen on purpose (ONNX LSTM nodes, no dynamo).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            args,
            temp,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def export_onnx(model: RNNT, out_dir: str | Path) -> dict[str, Path]:
    """Write ``encoder.onnx``, ``predictor.onnx`` and ``joint.onnx`` for ``model``.

    Returns the path of each part. Raises :class:`ExportError` for a branching encoder.
    """
    import onnx

    config = model.config
    if config.branching is not None:
        raise ExportError(
            "ONNX export of a branching encoder is not supported (its gate holds the "
            "expensive branch's state per frame); use its bundle"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = model.effective_parameters()
    paths = {part: out_dir / f"{part}.onnx" for part in PARTS}
    with torch.no_grad():
        _export(
            _Encoder(config, weights),
            (torch.zeros(1, 6, config.input_dim),),
            paths["encoder"],
            ["features"],
            ["frames"],
            {"features": {1: "T"}, "frames": {1: "T_out"}},
        )
        state_names = [f"{k}{i}" for i in range(len(config.predictor.hidden)) for k in "hc"]
        state = [torch.zeros(1, 1, h) for h in config.predictor.hidden for _ in "hc"]
        _export(
            _Predictor(config, weights),
            (torch.zeros(1, 1, dtype=torch.int64), *state),
            paths["predictor"],
            ["token", *state_names],
            ["output", *[f"{n}_out" for n in state_names]],
            {},
        )
        _export(
            _Joint(config, weights),
            (torch.zeros(1, config.encoder_dim), torch.zeros(1, config.predictor_dim)),
            paths["joint"],
            ["frame", "prediction"],
            ["logits"],
            {"frame": {0: "N"}, "prediction": {0: "N"}, "logits": {0: "N"}},
        )
    for path in paths.values():
        onnx.checker.check_model(onnx.load(path), full_check=True)
    return paths
