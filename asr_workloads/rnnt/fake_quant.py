"""Quantization-aware training: fake quantization and the grid regularizer.

Both apply THE weight rule of :mod:`..weight_quant` to torch tensors (``xp=torch``), so a
trained model's weights are exactly what the bundled checkpoint and the compiler will use.

* :func:`fake_quantize` snaps a weight to its per-row grid in the forward pass and lets the
  gradient through unchanged (straight-through estimator), so the loss sees the quantized
  model while the float "shadow" weight keeps accumulating small updates.
* :func:`grid_regularizer` acts on the weight *updates* themselves: a loss term that pulls
  each weight toward its nearest grid point, so that by the end of training the float
  weights sit close to the grid and rounding them changes little (see BACKGROUND.md,
  "quantization-aware training").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ..weight_quant import channel_scales, dequantize, weight_precision

__all__ = ["fake_quantize", "grid_regularizer"]


def _check_matrix(w: torch.Tensor) -> None:
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"weights are quantized per row and must be 2-D, not {shape}")


class _SnapToGrid(torch.autograd.Function):
    """Forward: the dequantized weight, bit for bit; backward: the identity."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, precision: str) -> torch.Tensor:
        return dequantize(w, precision, torch)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def fake_quantize(w: torch.Tensor, precision: str) -> torch.Tensor:
    """``w`` snapped to its per-row int8/int4 grid, with a straight-through gradient.

    The forward value equals ``weight_quant.dequantize(w, precision, torch)`` exactly (not
    ``w + (q - w).detach()``, which can be off by a rounding step), so an exported model
    computes with the very numbers the training forward pass used.

    Parameters
    ----------
    w : torch.Tensor
        A 2-D weight, one output channel per row.
    precision : str
        ``"int8"`` or ``"int4"``.
    """
    weight_precision(precision)
    _check_matrix(w)
    return _SnapToGrid.apply(w, precision)


def grid_regularizer(
    params: Iterable[torch.Tensor] | Mapping[str, torch.Tensor], precision: str
) -> torch.Tensor:
    """Mean squared distance of the weights to their nearest grid point, in grid steps.

    For each 2-D weight ``w`` with per-row scale ``s`` (the grid step), the term is
    ``((w - q) / s) ** 2`` with ``q`` the dequantized ``w``, both ``q`` and ``s`` detached:
    the gradient moves each weight toward its own grid point and does not chase the grid
    (which moves with the row's peak). Dividing by ``s`` measures the distance in grid
    steps, so int8 and int4 and layers of any magnitude are on one scale; the value lies in
    ``[0, 1/4]`` (a weight is at most half a step from the grid, except past a clipped
    range, which the peak-based scale never produces).

    Parameters
    ----------
    params : iterable of torch.Tensor, or mapping of names to them
        2-D weights (typically ``RNNT.quantized_parameters()``: the masked float weights of
        the quantized parameters).
    precision : str
        ``"int8"`` or ``"int4"``.

    Returns
    -------
    torch.Tensor
        A scalar: the squared distance averaged over all elements of all ``params``.
    """
    weight_precision(precision)
    if isinstance(params, Mapping):
        params = params.values()
    total = None
    count = 0
    for w in params:
        _check_matrix(w)
        with torch.no_grad():
            scale = channel_scales(w, precision, torch)
            snapped = dequantize(w, precision, torch)
        term = ((w - snapped) / scale).square().sum()
        total = term if total is None else total + term
        count += w.numel()
    if total is None:
        raise ValueError("grid_regularizer needs at least one weight, got none")
    return total / count
