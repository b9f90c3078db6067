"""Reference for the dispatcher bench: expected outcomes, hand-written trap cases and the
timing rules of ``docs/microarchitecture.md`` ("Dispatch and tokens") in executable form.

What runs and how a program ends is ``edgenpu.sim.functional.dispatch``'s; this module only
adds *when*: :func:`timing` (defined once, in :mod:`edgenpu.sim.perf.dispatch_rules`) steps the
rules D1-D4 and T1-T5 cycle by cycle, with the execution units replaced by fixed latencies (a
unit finishes an instruction ``latency`` cycles after taking it, and takes the next one as
soon as it is offered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgenpu.config import HardwareConfig
from edgenpu.formats import max_encoded_size
from edgenpu.isa import (
    HEADER,
    INSTRUCTION_BITS,
    SPECS,
    Instruction,
    Opcode,
    OperandKind,
    Program,
    Space,
    Stream,
    TrapCause,
    encode,
    stream_of,
)
from edgenpu.precision import packed_size
from edgenpu.sim.functional import QUEUES, Dispatch, dispatch
from edgenpu.sim.perf.dispatch_rules import Timing, timing

__all__ = [
    "Case",
    "Expected",
    "Timing",
    "expected",
    "field_word",
    "hand_cases",
    "random_words",
    "timing",
    "word_of",
]


def word_of(ins: Instruction) -> int:
    """The 128-bit integer of ``ins``."""
    return int.from_bytes(encode(ins), "little")


def field_word(word: int, opcode: Opcode, name: str, value: int) -> int:
    """``word`` with field ``name`` of ``opcode``'s layout (or ``reserved``) set to ``value``
    without any checking: how an illegal word is made."""
    spec = SPECS[opcode]
    if name == "reserved":
        at, width = spec.used_bits, INSTRUCTION_BITS - spec.used_bits
    else:
        at, width = spec.offsets()[name], next(f.width for f in spec.all_fields if f.name == name)
    mask = ((1 << width) - 1) << at
    return (word & ~mask) | ((value << at) & mask)


@dataclass(frozen=True)
class Expected:
    """What the dispatcher must do with a program: the functional simulator's dispatch."""

    plan: Dispatch
    entry: int
    #: Per stream, ``(index, word)`` of every instruction its unit must receive, in order.
    delivered: Mapping[Stream, tuple[tuple[int, int], ...]]

    @property
    def cause(self) -> TrapCause:
        return self.plan.trap.cause if self.plan.trap else TrapCause.NONE

    @property
    def index(self) -> int | None:
        return self.plan.trap.index if self.plan.trap else None


def expected(
    program: Program,
    config: HardwareConfig,
    entry: int = 0,
    tokens: Mapping[tuple[Stream, Stream], int] | None = None,
) -> Expected:
    plan = dispatch(program, config, entry, dict(tokens) if tokens is not None else None)
    delivered: dict[Stream, list[tuple[int, int]]] = {s: [] for s in Stream}
    for i, ins in enumerate(plan.instructions):
        if ins.opcode is not Opcode.NOP:
            delivered[stream_of(ins)].append((entry + i, word_of(ins)))
    return Expected(plan, entry, {s: tuple(v) for s, v in delivered.items()})


# -- hand-written cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A short program with one intended outcome (``cause`` NONE: it must halt)."""

    name: str
    words: tuple[int, ...]
    cause: TrapCause
    entry: int = 0

    def program(self) -> Program:
        return Program(self.words, (), ())


def hand_cases(config: HardwareConfig) -> list[Case]:
    """One case per illegal-instruction kind and per trap cause the config can raise, and
    boundary cases that must *not* trap (a range ending exactly at a memory's end)."""
    make = Instruction.make
    halt = word_of(make(Opcode.HALT))
    nop = {s: word_of(make(Opcode.NOP, stream=s)) for s in Stream}
    out: list[Case] = []

    def case(name: str, word: int, cause: TrapCause, before: int = 2) -> None:
        lead = [nop[Stream(i % 3)] for i in range(before)]
        out.append(Case(name, (*lead, word, halt), cause))

    ill = TrapCause.ILLEGAL_INSTRUCTION
    known = {op.value for op in Opcode}
    width = HEADER[0].width
    for code in [c for c in range(1 << width) if c not in known][::6]:
        case(f"unknown opcode {code}", code, ill)
    # Every enum field of every opcode, one value past its enum (if the field has one).
    for op, spec in SPECS.items():
        base = word_of(make(op, **({"stream": Stream.LOAD} if op is Opcode.NOP else {})))
        for f in spec.all_fields[1:]:
            if f.enum is not None and len(f.enum) < (1 << f.width):
                bad = next(v for v in range(1 << f.width) if v not in {e.value for e in f.enum})
                case(f"{op.label}.{f.name}={bad}", field_word(base, op, f.name, bad), ill)
        if spec.used_bits < INSTRUCTION_BITS:
            case(f"{op.label} reserved bit", field_word(base, op, "reserved", 1), ill)
            top = base | 1 << (INSTRUCTION_BITS - 1)
            case(f"{op.label} top reserved bit", top, ill)
    # Token flags without a neighbour.
    for op, extra in [
        (Opcode.LOAD, {}),
        (Opcode.LOAD_WGT, {}),
        (Opcode.STORE, {}),
        (Opcode.HALT, {}),
        *((Opcode.NOP, {"stream": s}) for s in Stream),
    ]:
        for flag in ("pop_prev", "pop_next", "push_prev", "push_next"):
            base = word_of(make(op, **extra))
            try:
                make(op, **extra, **{flag: 1})
            except Exception:
                case(f"{op.label} {extra} {flag}", field_word(base, op, flag, 1), ill)

    dram = config.dram.bytes
    size = {s: config.sram_size(s) for s in Space}
    oob, ok = TrapCause.ADDRESS_OUT_OF_RANGE, TrapCause.NONE

    def both(name: str, ins_ok: Instruction, ins_bad: Instruction) -> None:
        case(f"{name} (fits)", word_of(ins_ok), ok)
        case(f"{name} (one past)", word_of(ins_bad), oob)

    # DMA: the DRAM span and the on-chip range, every space.
    for op in (Opcode.LOAD, Opcode.STORE):
        for space in Space:
            rows, length, stride = 3, 5, 37
            span = (rows - 1) * stride + length * space.unit_bytes
            fits = make(op, space=space, rows=rows, len=length, stride=stride, dram=dram - span)
            both(f"{op.label} {space.label} dram", fits, fits.replace(dram=dram - span + 1))
            fits = make(op, space=space, rows=rows, len=length, sram=size[space] - rows * length)
            both(f"{op.label} {space.label} sram", fits, fits.replace(sram=fits["sram"] + 1))
    # load_wgt: the worst-case stream of every format and precision, and the weight range.
    for fmt in config.decompressor.formats:
        for prec in config.mac.precisions:
            count = 70
            worst = max_encoded_size(count, fmt, prec)
            fits = make(Opcode.LOAD_WGT, count=count, format=fmt, prec=prec, dram=dram - worst)
            both(
                f"load_wgt {fmt.label} {prec.label} dram", fits, fits.replace(dram=dram - worst + 1)
            )
            wgt = size[Space.WGT] - packed_size(count, prec)
            fits = make(Opcode.LOAD_WGT, count=count, format=fmt, prec=prec, wgt=wgt)
            both(f"load_wgt {fmt.label} {prec.label} wgt", fits, fits.replace(wgt=wgt + 1))
    # matmul: weights (both precisions), inputs and outputs.
    mm = dict(rows=5, cols=7, n=3, x_stride=9, acc_stride=6)
    for prec in config.mac.precisions:
        w = size[Space.WGT] - packed_size(35, prec)
        fits = make(Opcode.MATMUL, prec=prec, w=w, **mm)
        both(f"matmul {prec.label} w", fits, fits.replace(w=w + 1))
    x = size[Space.ACT] - (2 * 9 + 7)
    fits = make(Opcode.MATMUL, x=x, **mm)
    both("matmul x", fits, fits.replace(x=x + 1))
    acc = size[Space.ACC] - (2 * 6 + 5)
    fits = make(Opcode.MATMUL, acc=acc, **mm)
    both("matmul acc", fits, fits.replace(acc=acc + 1))
    # Vector operands: every kind, and b spanning only its period.
    for kind in OperandKind:
        units = kind.element_units
        last = (size[kind.space] // units - 10) * units
        fits = make(Opcode.VCOPY, d_kind=kind, d_addr=last, a_kind=kind, a_addr=last, len=10)
        bad = fits.replace(d_addr=last + units, a_addr=last + units)
        both(f"vcopy {kind.label}", fits, bad)
    b_last = size[Space.ACT] - 4
    fits = make(
        Opcode.VADD,
        len=20,
        period=4,
        b_kind=OperandKind.ACT_I8,
        b_addr=b_last,
        d_kind=OperandKind.ACC_I32,
        a_kind=OperandKind.ACC_I32,
        a_addr=100,
        d_addr=100,
    )
    both("vadd b period", fits, fits.replace(period=5))
    tables = config.sram.lut_tables
    fits = make(Opcode.VLUT, len=1, table=tables - 1, a_addr=8)
    if tables < 4:
        both("vlut table", fits, fits.replace(table=tables))
    case("vlut len 0 any table", word_of(fits.replace(table=3, len=0)), ok)
    # Misaligned: any act.i16 operand at an odd address, even with len 0.
    mis = TrapCause.MISALIGNED
    i16 = OperandKind.ACT_I16
    case("vadd d odd", word_of(make(Opcode.VADD, d_kind=i16, d_addr=3, len=1, a_addr=8)), mis)
    case("vadd a odd", word_of(make(Opcode.VADD, a_kind=i16, a_addr=5, len=1, b_addr=40)), mis)
    case("vadd b odd len 0", word_of(make(Opcode.VADD, b_kind=i16, b_addr=1)), mis)
    case("misaligned before oob", word_of(make(Opcode.VCOPY, d_kind=i16, d_addr=1, len=60000)), mis)
    # Overlap.
    ov = TrapCause.OPERAND_OVERLAP
    act8 = OperandKind.ACT_I8
    case("vcopy partial", word_of(make(Opcode.VCOPY, d_addr=1, a_addr=0, len=2)), ov)
    case("vcopy in place", word_of(make(Opcode.VCOPY, d_addr=4, a_addr=4, len=8)), ok)
    case("vcopy kind differs", word_of(make(Opcode.VCOPY, a_kind=i16, d_kind=act8, len=2)), ov)
    case("vadd b partial", word_of(make(Opcode.VADD, d_addr=10, b_addr=12, a_addr=100, len=4)), ov)
    case(
        "vadd b beyond period",
        word_of(make(Opcode.VADD, d_addr=10, b_addr=12, period=2, a_addr=100, len=4)),
        ov,
    )
    case(
        "vadd b period clear",
        word_of(make(Opcode.VADD, d_addr=10, b_addr=14, period=2, a_addr=100, len=4)),
        ok,
    )
    case(
        "vector different memories",
        word_of(make(Opcode.VADD, d_kind=OperandKind.ACC_I32, d_addr=0, a_addr=0, b_addr=0, len=4)),
        ok,
    )
    case("matmul outputs overlap", word_of(make(Opcode.MATMUL, **{**mm, "acc_stride": 4})), ov)
    case("matmul n=1 stride 0", word_of(make(Opcode.MATMUL, **{**mm, "n": 1, "acc_stride": 0})), ok)
    # Tokens: underflow and overflow of every queue.
    depth = config.control.token_queue_depth
    for src, dst in QUEUES:
        push_flag = "push_next" if src < dst else "push_prev"
        pop_flag = "pop_prev" if src < dst else "pop_next"
        pop = word_of(make(Opcode.NOP, stream=dst, **{pop_flag: 1}))
        push = word_of(make(Opcode.NOP, stream=src, **{push_flag: 1}))
        name = f"{src.label}->{dst.label}"
        out.append(Case(f"underflow {name}", (push, pop, pop, halt), TrapCause.TOKEN_UNDERFLOW))
        out.append(Case(f"exactly full {name}", (push,) * depth + (pop,) * depth + (halt,), ok))
        out.append(
            Case(f"overflow {name}", (push,) * (depth + 1) + (halt,), TrapCause.TOKEN_OVERFLOW)
        )
    # The end of the program.
    eop = TrapCause.END_OF_PROGRAM
    out.append(Case("no halt", (nop[Stream.LOAD], nop[Stream.STORE]), eop))
    out.append(Case("entry at the end", (halt, halt), eop, entry=2))
    out.append(Case("entry past the end", (halt, halt), eop, entry=5))
    out.append(Case("entry skips a trap", (6, halt), ok, entry=1))
    return out


def random_words(rng: np.random.Generator, words: list[int], n: int) -> list[int]:
    """``n`` words mutated from ``words``: one field (or the reserved bits) set to a random
    value, often an extreme one, so that every check sees passing and failing values."""
    out = []
    for _ in range(n):
        word = int(words[rng.integers(0, len(words))])
        code = word & ((1 << HEADER[0].width) - 1)
        op = Opcode(code) if code in {o.value for o in Opcode} else Opcode.HALT
        fields = [*SPECS[op].all_fields[1:]]
        for _ in range(int(rng.integers(1, 3))):
            if not fields:
                break
            f = fields[rng.integers(0, len(fields))]
            choice = rng.integers(0, 4)
            value = (
                0
                if choice == 0
                else (1 << f.width) - 1
                if choice == 1
                else int(rng.integers(0, 1 << min(f.width, 62)))
            )
            word = field_word(word, op, f.name, value)
        if rng.random() < 0.05:
            word = field_word(word, op, "reserved", 1) if SPECS[op].used_bits < 128 else word
        out.append(word)
    return out
