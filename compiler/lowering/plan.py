"""Tiling: how big each kernel's weight tiles are, which weights stay resident in WGT, and
whether an LSTM's input projection is hoisted, from the config's SRAM sizes.

The choices are made by budget here and then verified by placing the buffers
(:mod:`.allocate`); the compiler retries with a less ambitious :class:`Ambition` when they
do not fit (:mod:`edgenpu.compiler.compile`).
"""

from __future__ import annotations

import dataclasses
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


def _lstm_tiles(
    step: QLstm, rows: int, config: HardwareConfig, ambition: Ambition, frame_major: bool
):
    """The largest hidden tile that fits a weight slot and ACC: an :class:`LstmPlan` with no
    resident tiles yet, its weight tile bytes, and the WGT bytes one tile's step weights
    take (None if not even one unit fits)."""
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
        return None
    step_bytes = _packed(4 * tile, hidden, step.w_hh.precision)
    if not hoisted:
        step_bytes += _packed(4 * tile, inputs, step.w_ih.precision)
    plan = LstmPlan(tile, hoisted, 0, resident_constants)
    return plan, _packed(4 * tile, cols, precision), step_bytes


def _with_residency(plans: dict, step_bytes: dict, tiles: dict, budget: int, shared: bool) -> dict:
    """Each layer's leading tiles kept resident while ``budget`` WGT bytes allow: per layer
    (layer-major: a layer's resident tiles die with it) or shared by all (frame-major)."""
    out, left = {}, budget
    for name, plan in plans.items():
        room = left if shared else budget
        count = min(tiles[name], max(room, 0) // step_bytes[name])
        if shared:
            left -= count * step_bytes[name]
        out[name] = dataclasses.replace(plan, resident_tiles=count)
    return out


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
    step_bytes, tiles = {}, {}
    wgt = config.sram.weight_bytes
    for step in kernel.steps:
        if isinstance(step, QLstm):
            rows = kernel.tensor(step.x).shape[0]
            found = _lstm_tiles(step, rows, config, ambition, frame_major)
            if found is None:
                return None
            lstm[step.name], tile_bytes, step_bytes[step.name] = found
            tiles[step.name] = -(-step.hidden // found[0].hidden_tile)
            slot = max(slot, tile_bytes)
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
    if ambition.resident:
        lstm = _with_residency(lstm, step_bytes, tiles, wgt - 2 * slot, shared=frame_major)
    return KernelPlan(slot, lstm, linear)
