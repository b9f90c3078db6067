"""The statistical mode: the performance model without data, from sparsity ratios.

For sweeps over workloads whose weights and activations do not exist yet (or are too many to
run), each instruction's unit cost is its *expected* cost when every weight is non-zero with
probability ``weight_density`` and every activation with ``activation_density``,
independently; the rest (dispatch, streams, tokens, attribution, report) is the exact
model's. Only two rules depend on data:

- the decompressor (rules D1-D4): a block's bytes follow its number of non-zeros (bitmask;
  dense and 2:4 blocks have fixed sizes), so ``load_wgt`` costs the expectation of the
  gather/write recurrence over the binomial number of non-zeros per block;
- the MAC array (rules A2-A3): a window's cycles are the maximum over its lanes of
  ``ceil(work / M')``; activations are broadcast to all lanes, so the expectation is taken
  over the window's non-zero activations first, then over each lane's non-zero weights
  among them.

Expected cycles are rounded to whole cycles per instruction. ``load``, ``store`` and vector
instructions cost what they cost in the exact model: their cycles do not depend on data.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.formats import BLOCK, WeightFormat, bitmask, nm
from edgenpu.isa import Instruction, Opcode, Program
from edgenpu.precision import Precision, packed_size
from edgenpu.sim import functional
from edgenpu.sim.perf import dma_rules, mac_rules
from edgenpu.sim.perf.compose import compose
from edgenpu.sim.perf.counts import Counts, metadata_bytes
from edgenpu.sim.perf.report import PerfReport
from edgenpu.sim.perf.units import NOP_COST, UnitCost, unit_cost, unit_of

__all__ = ["estimate", "expected_cost"]


@functools.cache
def _binomial(n: int, p: float) -> tuple[float, ...]:
    """``P(X = k)`` for ``k = 0 .. n``, ``X ~ Binomial(n, p)``."""
    return tuple(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1))


@functools.cache
def _window_cycles(pairs: int, lanes: int, per_cycle: int, pw: float, px: float) -> float:
    """Expected ``max(1, max over lanes ceil(work / M'))`` for a window of ``pairs`` columns,
    each column's activation a work operand with probability ``px`` (shared by the lanes)
    and each lane's weight with ``pw`` (independent)."""
    expected = 0.0
    for active, p_active in enumerate(_binomial(pairs, px)):
        if p_active == 0.0:
            continue
        cdf, total = [], 0.0
        for p in _binomial(active, pw):
            total += p
            cdf.append(min(total, 1.0))
        # E[max(1, Y)] = 1 + sum over c >= 1 of P(Y > c), Y the slowest lane's cycles.
        cycles = 1.0
        for c in range(1, -(-active // per_cycle)):
            cycles += 1.0 - cdf[min(c * per_cycle, active)] ** lanes
        expected += p_active * cycles
    return expected


def _matmul(ins: Instruction, config: HardwareConfig, dw: float, dx: float) -> UnitCost:
    rows, cols, n, prec = ins["rows"], ins["cols"], ins["n"], Precision(ins["prec"])
    if not (rows and cols and n):
        return UnitCost(1)  # A4: an empty matmul is done in cycle 1
    L, M, S = config.mac.lanes, config.mac.macs_per_lane, config.zero_skip.lookahead
    mp = M * (8 // prec.bits)
    K = S * mp
    pw = dw if config.zero_skip.weights else 1.0
    px = dx if config.zero_skip.activations else 1.0
    windows = 0.0
    for start in range(0, rows, L):
        lanes = min(L, rows - start)
        for w in range(0, cols, K):
            windows += _window_cycles(min(K, cols - w), lanes, mp, pw, px)
    windows *= n
    N = round(windows)
    pairs = rows * cols * n
    work = pairs * pw * px
    active = round(pairs * dw * dx)
    gated = round(work) - active
    last = cols - (-(-cols // K) - 1) * K
    dense = -(-rows // L) * n * ((-(-cols // K) - 1) * S + max(1, -(-last // mp)))
    counts = Counts(
        sram_read_wgt=n * packed_size(rows * cols, prec),
        sram_read_act=-(-rows // L) * n * cols,
        sram_read_acc=4 * n * rows if ins["accumulate"] else 0,
        sram_write_acc=4 * n * rows,
        mac_active_int8=active if prec is Precision.INT8 else 0,
        mac_active_int4=active if prec is Precision.INT4 else 0,
        mac_gated=gated,
        mac_skipped=pairs - round(work),
        mac_windows=N,
        mac_dense_windows=dense,
    )
    return UnitCost(mac_rules.PIPELINE_DEPTH + N - 1, counts=counts)


def _block_bytes(fmt: WeightFormat, prec: Precision, elements: int, nonzero: int) -> int:
    if fmt is WeightFormat.BITMASK:
        return bitmask.MASK_BYTES + packed_size(nonzero, prec)
    if fmt is WeightFormat.NM2_4:
        return nm.block_bytes(prec)
    return packed_size(elements, prec)


def _load_wgt(ins: Instruction, config: HardwareConfig, dw: float) -> UnitCost:
    count, fmt, prec = ins["count"], WeightFormat(ins["format"]), Precision(ins["prec"])
    if not count:
        return UnitCost(1)  # W4
    B, L = config.dram.bandwidth_bytes_per_cycle, config.dram.latency_cycles
    OUT = config.decompressor.output_elements_per_cycle
    full, last = divmod(count, BLOCK)
    blocks = [BLOCK] * full + ([last] if last else [])

    @functools.cache
    def gather(elements: int) -> tuple[tuple[float, int], ...]:
        """``(probability, gather cycles, bytes)`` of a block of ``elements``, over its
        binomial number of non-zeros (one certain case for dense and 2:4 blocks)."""
        if fmt is not WeightFormat.BITMASK:
            size = _block_bytes(fmt, prec, elements, 0)
            return ((1.0, -(-size // B), size),)
        out = []
        for k, p in enumerate(_binomial(elements, dw)):
            size = _block_bytes(fmt, prec, elements, k)
            out.append((p, -(-size // B), size))
        return tuple(out)

    @functools.cache
    def handoff(elements: int, prev_beats: int) -> tuple[float, float]:
        """Expected ``max(g_i, w_(i-1))`` and ``max(0, w_(i-1) - g_i)`` (rule D2)."""
        cases = gather(elements)
        return (
            sum(p * max(g, prev_beats) for p, g, _ in cases),
            sum(p * max(0, prev_beats - g) for p, g, _ in cases),
        )

    # D4: D = 2 + g_0 + sum(max(g_i, w_(i-1)) for i >= 1) + w_last
    done = 2 + sum(p * g for p, g, _ in gather(blocks[0])) + -(-blocks[-1] // OUT)
    waited = 0.0
    for i in range(1, len(blocks)):
        step, wait = handoff(blocks[i], -(-blocks[i - 1] // OUT))
        done += step
        waited += wait
    stream = sum(sum(p * size for p, _, size in gather(e)) for e in blocks)
    start = dma_rules.weight_start(ins, B, L)
    meta = metadata_bytes(fmt, count)
    consumed = round(stream)
    counts = Counts(
        dram_read_weights=consumed - meta,
        dram_read_metadata=meta,
        dram_read_beats=-(-(ins["dram"] % B + consumed) // B),
        sram_write_wgt=packed_size(count, prec),
        decompressed_bytes=consumed,
    )
    return UnitCost(
        start + round(done), dram_wait=start - 2, decompressor_wait=round(waited), counts=counts
    )


def expected_cost(
    ins: Instruction, config: HardwareConfig, weight_density: float, activation_density: float
) -> UnitCost:
    """The expected unit cost of ``ins`` at the given densities (fractions non-zero)."""
    op = ins.opcode
    if op is Opcode.MATMUL:
        return _matmul(ins, config, weight_density, activation_density)
    if op is Opcode.LOAD_WGT:
        return _load_wgt(ins, config, weight_density)
    if unit_of(ins) is None:
        return NOP_COST
    # load, store and vector instructions: cycles and counts do not depend on the data.
    return unit_cost(ins, _NO_DATA, config)


#: A machine with no memories: what the data-independent rules are given.
_NO_DATA = functional.Machine(*(np.zeros(0, np.uint8) for _ in range(5)), tokens={})


def estimate(
    program: Program,
    config: HardwareConfig,
    entry: int | str = 0,
    *,
    weight_density: float,
    activation_density: float,
    ranges: Sequence[tuple[str, int, int]] | None = None,
) -> PerfReport:
    """The statistical model of ``program``: :func:`edgenpu.sim.perf.run`'s report with each
    ``load_wgt`` and ``matmul`` costing its expectation at ``weight_density`` and
    ``activation_density`` (fractions of non-zero weights and activations, 0..1).

    Raises
    ------
    ValueError
        A density outside 0..1.
    ProgramError
        ``entry`` names no entry point.
    """
    for name, value in (
        ("weight_density", weight_density),
        ("activation_density", activation_density),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    start = functional.resolve_entry(program, entry)
    tokens = dict.fromkeys(functional.QUEUES, 0)
    plan = functional.dispatch(program, config, start, tokens)
    unit_costs = [
        expected_cost(ins, config, weight_density, activation_density) for ins in plan.instructions
    ]
    return compose(program, config, start, plan, unit_costs, tokens, ranges)
