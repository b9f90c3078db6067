"""What each unit spends on one instruction, from the data it meets: its ``done`` cycle (the
latency the dispatcher waits for), where in its occupancy it waits (DRAM latency, the
decompressor's output rate) and what it moves and computes (:class:`~.counts.Counts`).

Every cycle comes from the unit's rules module (:mod:`.dma_rules`, :mod:`.decompressor_rules`,
:mod:`.mac_rules`, :mod:`.vector_rules`); this module only finds their inputs in the machine
state the instruction runs on (program order: ``docs/microarchitecture.md``, rule N2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.config import HardwareConfig
from edgenpu.isa import Instruction, Opcode
from edgenpu.precision import packed_size, unpack
from edgenpu.sim import functional
from edgenpu.sim.perf import counts, decompressor_rules, dma_rules, mac_rules, vector_rules
from edgenpu.sim.perf.counts import Counts

__all__ = ["Unit", "UnitCost", "unit_cost", "unit_of"]


class Unit(enum.Enum):
    """The processor's units, as the report names them."""

    DISPATCHER = "dispatcher"
    LOAD = "load"
    MAC_ARRAY = "mac_array"
    VECTOR_UNIT = "vector_unit"
    STORE = "store"


_UNITS = {
    Opcode.LOAD: Unit.LOAD,
    Opcode.LOAD_WGT: Unit.LOAD,
    Opcode.STORE: Unit.STORE,
    Opcode.MATMUL: Unit.MAC_ARRAY,
    **{op: Unit.VECTOR_UNIT for op in Opcode if op.is_vector},
}


def unit_of(ins: Instruction) -> Unit | None:
    """The unit that executes ``ins`` (None for ``nop`` and ``halt``)."""
    return _UNITS.get(ins.opcode)


@dataclass(frozen=True)
class UnitCost:
    """One instruction on its unit.

    ``done`` is the ``done`` cycle ``D`` from the command's transfer (the unit is occupied
    ``D + 1`` cycles when nothing holds its ``done``); of those, ``dram_wait`` cycles wait for
    DRAM read data (the latency ``L``, and for a misaligned ``load_wgt`` the second beat) and
    ``decompressor_wait`` for the decompressor's writes (blocks whose bytes arrived faster
    than the previous block was written out, rule D2).
    """

    done: int
    dram_wait: int = 0
    decompressor_wait: int = 0
    counts: Counts = Counts()


#: A ``nop``: no unit, no cycles of its own (the issue block completes it, rule T5).
NOP_COST = UnitCost(0)


def _load_wgt(ins: Instruction, state: functional.Machine, config: HardwareConfig) -> UnitCost:
    count, fmt, prec = ins["count"], ins["format"], ins["prec"]
    if not count:
        return UnitCost(1)  # W4: an empty stream requests nothing, done in cycle 1
    B, L = config.dram.bandwidth_bytes_per_cycle, config.dram.latency_cycles
    # The block sizes sum to the bytes the stream takes: one scan, no decode.
    sizes = formats.block_sizes(state.dram[ins["dram"] :], count, fmt, prec)
    consumed = int(sizes.sum())
    plan = decompressor_rules.schedule(
        sizes, count, B, config.decompressor.output_elements_per_cycle
    )
    start = dma_rules.weight_start(ins, B, L)  # W2; W4: done in S + D
    return UnitCost(
        start + plan.done,
        dram_wait=start - 2,
        decompressor_wait=plan.output_bound,
        counts=counts.weight_load(ins, consumed, B),
    )


def _matmul(ins: Instruction, state: functional.Machine, config: HardwareConfig) -> UnitCost:
    rows, cols, n, prec = ins["rows"], ins["cols"], ins["n"], ins["prec"]
    if not (rows and cols and n):
        return UnitCost(mac_rules.timing(np.zeros((0, 0)), np.zeros((0, 0)), prec, config).done)
    w = unpack(
        state.wgt[ins["w"] : ins["w"] + packed_size(rows * cols, prec)], rows * cols, prec
    ).reshape(rows, cols)
    act = state.act.view(np.int8)
    stride = ins["x_stride"]
    x = np.lib.stride_tricks.as_strided(
        act[ins["x"] :], shape=(n, cols), strides=(stride, 1), writeable=False
    )
    t = mac_rules.timing(w, x, prec, config)
    c = counts.matmul(ins, w, x, config.mac.lanes, t.windows, t.dense_windows, t.work, t.gated)
    return UnitCost(t.done, counts=c)


def unit_cost(ins: Instruction, state: functional.Machine, config: HardwareConfig) -> UnitCost:
    """What the unit executing ``ins`` on ``state`` spends, by the unit's own rules."""
    B, L = config.dram.bandwidth_bytes_per_cycle, config.dram.latency_cycles
    op = ins.opcode
    if op in (Opcode.LOAD, Opcode.STORE):
        R = dma_rules.beat_count(ins, B)
        wait = L if op is Opcode.LOAD and R else 0
        return UnitCost(dma_rules.done_cycle(op, R, L), dram_wait=wait, counts=counts.dma(ins, R))
    if op is Opcode.LOAD_WGT:
        return _load_wgt(ins, state, config)
    if op is Opcode.MATMUL:
        return _matmul(ins, state, config)
    if op.is_vector:
        lanes = config.vector.lanes
        return UnitCost(
            vector_rules.done_cycle(ins["len"], lanes), counts=counts.vector(ins, lanes)
        )
    if op is Opcode.NOP:
        return NOP_COST
    raise ValueError(f"no unit executes {op.label}")
