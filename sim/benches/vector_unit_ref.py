"""What the vector unit must do: random instructions, their data, expected memory and cycles.

The expected memory contents come from the functional simulator itself
(:func:`edgenpu.sim.functional.execute` on the same instruction and memories), never from a
re-derivation of the arithmetic; :func:`timing` is the rules of ``docs/microarchitecture.md``
("Vector unit") in executable form, defined once in :mod:`edgenpu.sim.perf.vector_rules`.
:class:`Memories` is the SRAM model both benches use (the cocotb one and the
Amaranth-simulator tests): the unit's ports against flat byte arrays, with the one-cycle read
latency of ``rtl/ports.py``. No cocotb imports here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

from edgenpu.config import HardwareConfig
from edgenpu.isa import LUT_ENTRIES, Instruction, Opcode, OperandKind, Space
from edgenpu.isa.access import check, vector_operands
from edgenpu.isa.disasm import disassemble_instruction
from edgenpu.sim.functional import ExecStats, Machine, execute
from edgenpu.sim.perf.vector_rules import PIPELINE_DEPTH, Timing, timing

__all__ = [
    "BINARY",
    "PIPELINE_DEPTH",
    "UNARY",
    "Case",
    "Memories",
    "Timing",
    "apply_fills",
    "command_payload",
    "coverage_cases",
    "empty_machine",
    "expected_memories",
    "make_case",
    "random_cases",
    "timing",
]

BINARY = (Opcode.VADD, Opcode.VSUB, Opcode.VMUL, Opcode.VMAX, Opcode.VMIN)
UNARY = (Opcode.VCOPY, Opcode.VRELU, Opcode.VCLAMP, Opcode.VLUT)
KINDS = tuple(OperandKind)
SHIFTS = (0, 1, 7, 31, 63)


@dataclass
class Case:
    """One vector instruction and the data it runs on.

    ``fills`` are ``(space, byte offset, bytes)`` written into the memories before the
    instruction (its sources and, for ``vlut``, its table); everything else keeps whatever
    earlier cases left there.
    """

    ins: Instruction
    fills: list[tuple[Space, int, bytes]] = field(default_factory=list)
    label: str = "case"

    def describe(self) -> str:
        return f"{self.label}: {disassemble_instruction(self.ins)}"


def empty_machine(config: HardwareConfig, rng: np.random.Generator | None = None) -> Machine:
    """The on-chip memories of ``config``, random bytes if ``rng`` is given (zeros
    otherwise), with no DRAM (the vector unit has none)."""

    def memory(size: int) -> np.ndarray:
        if rng is None:
            return np.zeros(size, np.uint8)
        return rng.integers(0, 256, size=size, dtype=np.uint8)

    return Machine(
        dram=np.zeros(0, np.uint8),
        wgt=np.zeros(0, np.uint8),
        act=memory(config.sram.activation_bytes),
        acc=memory(config.sram.accumulator_bytes),
        lut=memory(config.sram.lut_bytes),
        tokens={},
    )


def expected_memories(case: Case, machine: Machine) -> Machine:
    """A copy of ``machine`` after the functional simulator has executed ``case.ins``."""
    state = Machine(
        dram=machine.dram,
        wgt=machine.wgt,
        act=machine.act.copy(),
        acc=machine.acc.copy(),
        lut=machine.lut.copy(),
        tokens=dict(machine.tokens),
    )
    execute(case.ins, state, ExecStats())
    return state


def command_payload(layout: data.StructLayout, ins: Instruction) -> dict[str, int]:
    """``ins`` as the unit's ``cmd`` payload of ``layout``: the opcode and every field the
    layout has (fields of other vector opcodes are 0)."""
    fields = ins.fields()
    return {
        name: ins.opcode.value if name == "opcode" else int(fields.get(name, 0))
        for name, _ in layout
    }


def apply_fills(case: Case, machine: Machine) -> None:
    """Write ``case.fills`` into ``machine``'s memories."""
    for space, at, raw in case.fills:
        machine.space(space)[at : at + len(raw)] = np.frombuffer(raw, np.uint8)


# -- memories -------------------------------------------------------------------------------


class Memories:
    """The ACT, ACC and LUT SRAMs as the vector unit's ports see them.

    Port contract (``rtl/ports.py``): a read issued in cycle *c* returns data in cycle *c* + 1,
    elements past the memory's end read as 0; a write in cycle *c* is visible to reads issued
    from cycle *c* + 1 on (a read in the same cycle sees the old contents).

    Parameters
    ----------
    machine : Machine
        Its ``act``, ``acc`` and ``lut`` arrays are the memories, updated in place.
    lanes : int
        The unit's ``V``.
    """

    def __init__(self, machine: Machine, lanes: int) -> None:
        self.machine = machine
        self.lanes = lanes

    def read(self, port: str, addr: int) -> int:
        """The data word a read of ``port`` (``act_a``, ``acc_b``, ``lut``...) at ``addr``
        returns, element 0 in the low bits."""
        if port.startswith("act"):
            memory, start, size = self.machine.act, addr, 2 * self.lanes
        elif port.startswith("acc"):
            memory, start, size = self.machine.acc, 4 * addr, 4 * self.lanes
        else:
            memory, start, size = self.machine.lut, addr, 1
        chunk = bytes(memory[start : start + size])
        return int.from_bytes(chunk, "little")  # bytes past the end are zeros

    def write(self, port: str, addr: int, data: int, mask: int) -> None:
        """A write of ``port`` (``act_w`` or ``acc_w``): enabled elements only."""
        if port == "act_w":
            memory, start, unit, width = self.machine.act, addr, 1, 2 * self.lanes
        else:
            memory, start, unit, width = self.machine.acc, 4 * addr, 4, self.lanes
        raw = data.to_bytes(width * unit, "little")
        for e in range(width):
            if mask >> e & 1:
                at = start + e * unit
                if at + unit > memory.size:
                    raise AssertionError(f"{port}: write past the memory's end at {addr:#x}")
                memory[at : at + unit] = np.frombuffer(raw[e * unit : (e + 1) * unit], np.uint8)


# -- stimulus ---------------------------------------------------------------------------------


def _kind_range(kind: OperandKind) -> tuple[int, int]:
    return -(1 << (kind.bits - 1)), (1 << (kind.bits - 1)) - 1


def _values(kind: OperandKind, count: int, style: str, rng: np.random.Generator) -> np.ndarray:
    lo, hi = _kind_range(kind)
    if style == "extreme":
        pool = np.array([lo, lo + 1, -1, 0, 1, hi - 1, hi], dtype=np.int64)
        return rng.choice(pool, size=count)
    if style == "small":
        return rng.integers(-300, 301, size=count)
    return rng.integers(lo, hi + 1, size=count, dtype=np.int64)


def _encode(kind: OperandKind, values: np.ndarray) -> bytes:
    lo, hi = _kind_range(kind)
    dtype = {8: "<i1", 16: "<i2", 32: "<i4"}[kind.bits]
    return np.clip(values, lo, hi).astype(dtype).tobytes()


def _fills_for(ins: Instruction, rng: np.random.Generator, style: str):
    fills = []
    for operand in vector_operands(ins)[1:]:
        if not operand.elements:
            continue
        if style == "corners":
            # Every pairing of the range's ends, a against b: int32 min * min = 2**62 and
            # min * max are the largest products the 64-bit intermediate must hold.
            lo, hi = _kind_range(operand.kind)
            pattern = [lo, lo, hi, hi, -1, lo + 1] if operand.name == "a" else [lo, hi] * 3
            values = np.resize(np.array(pattern, dtype=np.int64), operand.elements)
        else:
            values = _values(operand.kind, operand.elements, style, rng)
        space = operand.kind.space
        at = operand.addr * (4 if space is Space.ACC else 1)
        fills.append((space, at, _encode(operand.kind, values)))
    if ins.opcode is Opcode.VLUT:
        table = rng.integers(0, 256, size=LUT_ENTRIES, dtype=np.uint8)
        fills.append((Space.LUT, ins["table"] * LUT_ENTRIES, table.tobytes()))
    return fills


def _address(
    config: HardwareConfig, kind: OperandKind, elements: int, rng: np.random.Generator
) -> int:
    """A random in-range address for ``elements`` of ``kind`` (even for act.i16)."""
    units = kind.element_units * max(elements, 1)
    size = config.sram_size(kind.space) // (4 if kind.space is Space.ACC else 1)
    top = max(0, size - units)
    addr = int(rng.integers(0, top + 1))
    return addr & ~1 if kind is OperandKind.ACT_I16 else addr


def _pick_length(config: HardwareConfig, rng: np.random.Generator) -> int:
    V = config.vector.lanes
    large = min(40 * V, config.sram.accumulator_words // 4)
    choices = [0, 1, V - 1 or 1, V, V + 1, 2 * V + 3, int(rng.integers(1, 4 * V + 1)), large]
    return int(choices[int(rng.integers(len(choices)))])


def _pick_period(length: int, rng: np.random.Generator) -> int:
    odd = int(rng.integers(0, max(1, length // 2))) * 2 + 1
    choices = [
        0,
        1,
        2,
        3,
        odd,
        length,
        length + int(rng.integers(1, 50)),
        int(rng.integers(0, length + 1)),
    ]
    return min(int(choices[int(rng.integers(len(choices)))]), (1 << 16) - 1)


def make_case(
    config: HardwareConfig,
    rng: np.random.Generator,
    *,
    opcode: Opcode | None = None,
    kinds: tuple[OperandKind, ...] | None = None,
    length: int | None = None,
    shift: int | None = None,
    period: int | None = None,
    in_place: str | None = None,
    style: str | None = None,
    label: str = "random",
) -> Case:
    """A random instruction that passes the dispatch checks, with data for its sources.

    Unspecified fields are drawn at random: lengths from 0, 1, around ``V`` and large;
    shifts from 0/1/7/31/63 and at random; periods 0, 1, odd, ``len`` and past it. ``kinds``
    is ``(d, a)`` or ``(d, a, b)``; ``in_place`` ``"a"`` or ``"b"`` makes that source the
    destination's exact range; ``style`` (``uniform``, ``extreme``, ``small``, ``corners``)
    shapes the data.
    """
    opcode = opcode or (BINARY + UNARY)[int(rng.integers(len(BINARY) + len(UNARY)))]
    binary = opcode in BINARY
    style = style or ("uniform", "extreme", "small")[int(rng.integers(3))]
    for _ in range(1000):
        ks = kinds or tuple(KINDS[int(rng.integers(3))] for _ in range(3 if binary else 2))
        n = _pick_length(config, rng) if length is None else length
        fields = {
            "len": n,
            "shift": int(rng.choice(SHIFTS + (int(rng.integers(0, 64)),)))
            if shift is None
            else shift,
            "d_kind": ks[0],
            "a_kind": ks[1],
            "d_addr": _address(config, ks[0], n, rng),
            "a_addr": _address(config, ks[1], n, rng),
        }
        if binary:
            p = _pick_period(n, rng) if period is None else period
            b_elements = min(n, p or n)
            fields |= {"b_kind": ks[2], "b_addr": _address(config, ks[2], b_elements, rng)}
            fields["period"] = p
        if opcode is Opcode.VCLAMP:
            lo, hi = sorted(int(v) for v in rng.integers(-(1 << 15), 1 << 15, size=2))
            if rng.random() < 0.15:
                lo, hi = hi + 1 if hi < (1 << 15) - 1 else hi, lo  # lo > hi: the result is hi
            fields |= {"lo": lo, "hi": hi}
        if opcode is Opcode.VLUT:
            fields["table"] = int(rng.integers(0, config.sram.lut_tables))
        if in_place in ("a", "b") and f"{in_place}_kind" in fields:
            fields[f"{in_place}_kind"] = fields["d_kind"]
            fields[f"{in_place}_addr"] = fields["d_addr"]
        ins = Instruction.make(opcode, **fields)
        if check(ins, config) is None:
            return Case(ins, _fills_for(ins, rng, style), label)
    raise RuntimeError(f"no legal {opcode.label} instruction found for {fields}")


def coverage_cases(config: HardwareConfig, rng: np.random.Generator) -> list[Case]:
    """The systematic part of a run: every binary opcode with each of the 27 (d, a, b) kind
    combinations, every unary one with each of the 9 (d, a), each shift of 0/1/7/31/63 on
    every opcode, in-place runs over ``a`` and ``b``, periods 1, odd, ``len``, past ``len``,
    lengths 0, 1, ``V +- 1``, large and the longest that fits (65535 in the default config),
    and extreme data (int32 min/max products)."""
    V = config.vector.lanes
    cases = []
    for op in BINARY:
        for ks in itertools.product(KINDS, repeat=3):
            cases.append(make_case(config, rng, opcode=op, kinds=ks, label="kinds"))
    for op in UNARY:
        for ks in itertools.product(KINDS, repeat=2):
            cases.append(make_case(config, rng, opcode=op, kinds=ks, label="kinds"))
    for op in BINARY + UNARY:
        for s in SHIFTS:
            cases.append(make_case(config, rng, opcode=op, shift=s, label=f"shift {s}"))
        cases.append(make_case(config, rng, opcode=op, in_place="a", label="in place a"))
        for n in (0, 1, V - 1 or 1, V + 1, 17 * V + 3):
            cases.append(make_case(config, rng, opcode=op, length=n, label=f"len {n}"))
    acc = (OperandKind.ACC_I32,) * 3
    for op in BINARY:
        cases.append(make_case(config, rng, opcode=op, in_place="b", period=0, label="in place b"))
        for p in (1, 2, 3, V - 1 or 1, V + 1, 2 * V + 1):
            cases.append(
                make_case(config, rng, opcode=op, length=5 * V + 3, period=p, label=f"period {p}")
            )
        for p in (5 * V + 3, 5 * V + 9):  # period == len, period > len: no wrap
            cases.append(
                make_case(config, rng, opcode=op, length=5 * V + 3, period=p, label=f"period {p}")
            )
        for s in (0, 31, 62, 63):
            cases.append(
                make_case(
                    config,
                    rng,
                    opcode=op,
                    kinds=acc,
                    shift=s,
                    period=0,
                    style="corners",
                    label=f"corners acc shift {s}",
                )
            )
            cases.append(
                make_case(
                    config,
                    rng,
                    opcode=op,
                    kinds=acc,
                    shift=s,
                    style="extreme",
                    label=f"extreme acc shift {s}",
                )
            )
    # The longest instruction that fits, up to the ``len`` field's maximum: the element
    # counters and b's element index at full width.
    i8, i32 = OperandKind.ACT_I8, OperandKind.ACC_I32
    longest = min((1 << 16) - 1, config.sram.activation_bytes)
    cases.append(
        make_case(
            config,
            rng,
            opcode=Opcode.VADD,
            kinds=(i8, i8, i32),
            length=longest,
            period=2 * V + 1,
            in_place="a",
            label="longest",
        )
    )
    return cases


def random_cases(config: HardwareConfig, rng: np.random.Generator, count: int) -> list[Case]:
    """``count`` instructions with every field at random, including in-place ones, and
    chained ones: ``a`` is the previous instruction's destination, not refilled, so the unit
    reads in the cycles right after its ``done`` what it has just written."""
    cases: list[Case] = []
    while len(cases) < count:
        case = make_case(config, rng, in_place=("a", "b", None, None)[int(rng.integers(4))])
        cases.append(case)
        prev = case.ins
        if len(cases) < count and prev["len"] and rng.random() < 0.3:
            chained = make_case(config, rng, length=prev["len"], label="chained")
            ins = chained.ins.replace(a_kind=prev["d_kind"], a_addr=prev["d_addr"])
            if check(ins, config) is None:
                # The first fill is a's (``len`` is not 0): left out, a is what prev wrote.
                fills = _fills_for(ins, rng, "uniform")[1:]
                cases.append(Case(ins, fills, "chained"))
    return cases
