"""Tiling: how big each kernel's weight tiles are, which weights stay resident in WGT, and
whether an LSTM's input projection is hoisted, from the config's SRAM sizes.

The choices are made by budget here and then verified by placing the buffers
(:mod:`.allocate`); the compiler retries with a less ambitious :class:`Ambition` when they
do not fit (:mod:`edgenpu.compiler.compile`).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.asr_workloads.weight_quant import weight_precision
from edgenpu.config import HardwareConfig
from edgenpu.precision import packed_size

from ..quant.qir import QKernel, QLinear, QLstm
from .lstm import LstmPlan

__all__ = ["Ambition", "KernelPlan", "plan_kernel"]

#: ISA field limits the tiles must respect (rows 12 bits, vector len 16 bits).
MAX_ROWS = 4095
MAX_VECTOR = 65535


@dataclass(frozen=True)
class Ambition:
    """How much of the SRAMs a plan may count on; lowered step by step when a plan does not
    fit. ``slot_divisor``: each of the two weight slots gets WGT / this."""

    hoist: bool = True
    resident: bool = True
    slot_divisor: int = 8


@dataclass(frozen=True)
class KernelPlan:
    """Tile sizes of a kernel: its weight slot size, each LSTM's plan and each linear's tile
    rows, by step name."""

    slot_bytes: int
    lstm: dict
    linear_rows: dict


def _packed(rows: int, cols: int, precision: str) -> int:
    return packed_size(rows * cols, weight_precision(precision))


def _lstm_plan(
    step: QLstm, rows: int, config: HardwareConfig, ambition: Ambition, frame_major: bool
):
    hidden, inputs = step.hidden, step.w_ih.shape[1]
    cols = max(hidden, inputs)
    precision = "int8" if "int8" in (step.w_ih.precision, step.w_hh.precision) else "int4"
    slot = config.sram.weight_bytes // ambition.slot_divisor
    acc_words = config.sram.accumulator_words
    hoisted = ambition.hoist and not frame_major and rows > 1
    resident_constants = 12 * hidden <= acc_words // 2

    def fits(h: int) -> bool:
        r = 4 * h
        acc = r * (1 + (rows if hoisted else 1)) + (12 * hidden if resident_constants else 6 * r)
        return (
            _packed(r, cols, precision) <= slot
            and acc <= acc_words
            and r <= MAX_ROWS
            and r * rows <= MAX_VECTOR
        )

    tile = next((h for h in range(hidden, 0, -1) if fits(h)), 0)
    if tile == 0:
        return None, slot
    step_weights = _packed(4 * hidden, hidden, step.w_hh.precision)
    if not hoisted:
        step_weights += _packed(4 * hidden, inputs, step.w_ih.precision)
    resident = ambition.resident and step_weights + 2 * slot <= config.sram.weight_bytes
    return LstmPlan(tile, hoisted, resident, resident_constants), _packed(4 * tile, cols, precision)


def _act_lower_bound(kernel: QKernel, lstm: dict, frame_major: bool) -> int:
    """ACT bytes that must be live at once for the LSTM layers (a quick test that spares
    lowering a plan that cannot fit): a layer's input and output rows, its state and, when
    hoisted, its projected gates; frame-major over more than one frame also keeps every
    layer's rows for the whole chunk."""
    rows, extras = 0, []
    for step in kernel.steps:
        if isinstance(step, QLstm):
            x, y = kernel.tensor(step.x), kernel.tensor(step.y)
            plan = lstm[step.name]
            gates = 2 * x.shape[0] * 4 * step.hidden if plan.hoisted else 0
            extra = 3 * step.hidden + gates + 25 * plan.hidden_tile
            extras.append((x.nbytes + y.nbytes, extra))
            rows += x.nbytes + y.nbytes
    if not extras:
        return 0
    chunk = kernel.tensor(kernel.inputs[0]).shape[0]
    if frame_major and chunk > 1:
        return rows + max(extra for _, extra in extras)
    return max(r + extra for r, extra in extras)


def plan_kernel(
    kernel: QKernel, config: HardwareConfig, ambition: Ambition, frame_major: bool
) -> KernelPlan | None:
    """Tile sizes for ``kernel``, or None when even one row per tile does not fit."""
    lstm, linear, slot = {}, {}, 1
    wgt = config.sram.weight_bytes
    resident_total = 0
    for step in kernel.steps:
        if isinstance(step, QLstm):
            rows = kernel.tensor(step.x).shape[0]
            plan, tile_bytes = _lstm_plan(step, rows, config, ambition, frame_major)
            if plan is None:
                return None
            lstm[step.name] = plan
            slot = max(slot, tile_bytes)
            if plan.resident:
                resident_total += _packed(4 * step.hidden, step.hidden, step.w_hh.precision)
        elif isinstance(step, QLinear):
            outputs, inputs = step.weights.shape
            n = kernel.tensor(step.x).shape[0]
            budget = wgt // ambition.slot_divisor
            acc_words = config.sram.accumulator_words
            rows = next(
                (
                    r
                    for r in range(min(outputs, MAX_ROWS), 0, -1)
                    if _packed(r, inputs, step.weights.precision) <= budget
                    and r * (n + 4) <= acc_words
                ),
                0,
            )
            if rows == 0:
                return None
            linear[step.name] = rows
            slot = max(slot, _packed(rows, inputs, step.weights.precision))
    if _act_lower_bound(kernel, lstm, frame_major) > config.sram.activation_bytes:
        return None
    if frame_major and resident_total + 2 * slot > wgt:
        # Every layer steps every frame: residency pays only if all of them stay.
        lstm = {
            name: LstmPlan(p.hidden_tile, p.hoisted, False, p.resident_constants)
            for name, p in lstm.items()
        }
    return KernelPlan(slot, lstm, linear)
