"""Random *valid* programs, for differential testing of the simulators and the RTL.

A generated program covers every instruction, precision, weight format and operand kind the
config supports, with random sizes, addresses and data, and is race-free: its result does
not depend on how the hardware's three streams interleave. That is what lets the functional
simulator (which runs in program order) be the oracle for the RTL (which does not).

Race freedom is by construction. The program is cut into *phases* separated by a full token
barrier (every stream waits for every other). Within a phase, instructions of different
streams never touch overlapping memory where one of them writes; when the next instruction
would, a barrier is inserted first. Extra producer/consumer token pairs are sprinkled in
to exercise the queues without ever over- or under-flowing them.

Optionally the program stops at a known index with a known cause, to test trap reporting:
an instruction that traps is inserted (or, for ``end_of_program``, the final ``halt`` is
left out). Every cause of :class:`~edgenpu.isa.TrapCause` can be injected;
:func:`injectable_causes` says which a config allows (``unsupported`` needs a precision or
weight format the config lacks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenpu import formats
from edgenpu.config import HardwareConfig
from edgenpu.formats import WeightFormat
from edgenpu.isa import (
    INSTRUCTION_BITS,
    Instruction,
    Opcode,
    OperandKind,
    Program,
    Segment,
    Space,
    Stream,
    TrapCause,
    encode,
    stream_of,
)
from edgenpu.isa.access import Access, accesses, check
from edgenpu.precision import Precision, packed_size

__all__ = ["INJECTABLE", "GeneratedProgram", "injectable_causes", "random_program"]

#: Causes :func:`random_program` can inject in a program for any config.
INJECTABLE = (
    TrapCause.ILLEGAL_INSTRUCTION,
    TrapCause.ADDRESS_OUT_OF_RANGE,
    TrapCause.MISALIGNED,
    TrapCause.OPERAND_OVERLAP,
    TrapCause.TOKEN_UNDERFLOW,
    TrapCause.TOKEN_OVERFLOW,
    TrapCause.END_OF_PROGRAM,
)
_VECTOR_OPS = [op for op in Opcode if op.is_vector]
_WEIGHT_STREAMS = 6


@dataclass(frozen=True)
class GeneratedProgram:
    """A random program and, if a trap was injected, where and why it must stop."""

    program: Program
    trap_index: int | None = None
    trap_cause: TrapCause | None = None


def _barrier() -> list[Instruction]:
    make = Instruction.make
    return [
        make(Opcode.NOP, stream=Stream.LOAD, push_next=1),
        make(Opcode.NOP, stream=Stream.STORE, push_prev=1),
        make(Opcode.NOP, stream=Stream.COMPUTE, pop_prev=1, pop_next=1, push_prev=1, push_next=1),
        make(Opcode.NOP, stream=Stream.LOAD, pop_next=1),
        make(Opcode.NOP, stream=Stream.STORE, pop_prev=1),
    ]


class _Builder:
    """Emits instructions, tracking phase footprints and token counts."""

    def __init__(self, rng: np.random.Generator, config: HardwareConfig):
        self.rng, self.config = rng, config
        self.code: list[Instruction] = []
        self.footprint: dict[Stream, list[Access]] = {s: [] for s in Stream}
        self.tokens = dict.fromkeys(
            (
                (Stream.LOAD, Stream.COMPUTE),
                (Stream.COMPUTE, Stream.LOAD),
                (Stream.COMPUTE, Stream.STORE),
                (Stream.STORE, Stream.COMPUTE),
            ),
            0,
        )

    def _conflicts(self, stream: Stream, touched: list[Access]) -> bool:
        for other, seen in self.footprint.items():
            if other is stream:
                continue
            for a in touched:
                for b in seen:
                    if (
                        a.memory is b.memory
                        and a.start < b.stop
                        and b.start < a.stop
                        and (a.write or b.write)
                    ):
                        return True
        return False

    def barrier(self) -> None:
        # Drain tokens left by sprinkled pairs first: a token count cannot tell whose token
        # it is, so with an old token waiting, the barrier's pop would not wait for the
        # barrier's push.
        for (src, dst), count in self.tokens.items():
            flag = "pop_prev" if src < dst else "pop_next"
            self.code += [Instruction.make(Opcode.NOP, stream=dst, **{flag: 1})] * count
            self.tokens[(src, dst)] = 0
        self.code += _barrier()
        self.footprint = {s: [] for s in Stream}

    def emit(self, ins: Instruction) -> None:
        stream = stream_of(ins)
        touched = accesses(ins)
        if stream is not None and self._conflicts(stream, touched):
            self.barrier()
        ins = self._sprinkle_tokens(ins)
        self.code.append(ins)
        if stream is not None:
            self.footprint[stream] += touched

    def _sprinkle_tokens(self, ins: Instruction) -> Instruction:
        """Randomly pop tokens that are waiting and push new ones, within the queue depth."""
        stream = stream_of(ins)
        if stream is None or self.rng.random() < 0.6:
            return ins
        flags = {}
        depth = self.config.control.token_queue_depth
        for flag, (src, dst) in _queues(stream).items():
            if flag.startswith("pop") and self.tokens[(src, dst)] > 0 and self.rng.random() < 0.7:
                flags[flag] = 1
                self.tokens[(src, dst)] -= 1
            if (
                flag.startswith("push")
                and self.tokens[(src, dst)] < depth - 1
                and self.rng.random() < 0.5
            ):
                flags[flag] = 1
                self.tokens[(src, dst)] += 1
        return ins.replace(**flags) if flags else ins


def _queues(stream: Stream) -> dict[str, tuple[Stream, Stream]]:
    out = {}
    if stream is not Stream.LOAD:
        prev = Stream(stream - 1)
        out |= {"pop_prev": (prev, stream), "push_prev": (stream, prev)}
    if stream is not Stream.STORE:
        nxt = Stream(stream + 1)
        out |= {"pop_next": (nxt, stream), "push_next": (stream, nxt)}
    return out


class _Generator:
    def __init__(self, rng: np.random.Generator, config: HardwareConfig):
        self.rng, self.config = rng, config
        self.segments: list[Segment] = []
        self.weights: list[tuple[int, int, WeightFormat, Precision]] = []
        # DRAM layout: random bytes to load from, weight streams, then a scratch area to
        # store to. Kept small so a program's image is cheap to load into an RTL model.
        dram = min(config.dram.bytes, 1 << 16)
        self.data_size = dram // 4
        self.segments.append(Segment(0, rng.integers(0, 256, self.data_size, np.uint8).tobytes()))
        at = self.data_size
        for _ in range(_WEIGHT_STREAMS):
            fmt = WeightFormat(rng.choice(list(config.decompressor.formats)))
            prec = Precision(rng.choice(list(config.mac.precisions)))
            count = int(rng.integers(1, min(config.sram.weight_bytes, 640)))
            values = rng.integers(prec.min, prec.max + 1, count)
            values[rng.random(count) < rng.uniform(0, 0.9)] = 0
            if fmt is WeightFormat.NM2_4:
                padded = np.zeros(-(-count // 4) * 4, np.int64)
                padded[:count] = values
                padded.reshape(-1, 4)[:, 2:] = 0
                values = padded[:count]
            stream = formats.encode(values, fmt, prec)
            self.segments.append(Segment(at, stream))
            self.weights.append((at, count, fmt, prec))
            at += -(-len(stream) // 64) * 64
        self.scratch = (at, dram)

    def _span(self, size: int, length: int) -> int:
        """A random start so that ``length`` units fit in ``size``."""
        return int(self.rng.integers(0, size - length + 1))

    def instruction(self) -> Instruction:
        r, c = self.rng, self.config
        make = Instruction.make
        kind = r.choice(
            ["load", "load_wgt", "store", "matmul", "vector", "nop"],
            p=[0.18, 0.12, 0.12, 0.18, 0.36, 0.04],
        )
        if kind == "nop":
            return make(Opcode.NOP, stream=Stream(r.integers(0, 3)))
        if kind in ("load", "store"):
            space = Space(r.integers(0, 4)) if kind == "load" else Space(r.integers(0, 4))
            size = c.sram_size(space)
            unit = space.unit_bytes
            rows = int(r.integers(0, 5))
            length = int(r.integers(0, min(64, size // max(rows, 1)) + 1))
            stride = int(r.integers(0, 3)) * length * unit + int(r.integers(0, 9))
            lo, hi = (0, self.data_size) if kind == "load" else self.scratch
            span = max(rows - 1, 0) * stride + length * unit
            dram = lo + int(r.integers(0, max(hi - lo - span, 0) + 1))
            sram = self._span(size, rows * length)
            op = Opcode.LOAD if kind == "load" else Opcode.STORE
            return make(op, space=space, sram=sram, dram=dram, rows=rows, len=length, stride=stride)
        if kind == "load_wgt":
            addr, count, fmt, prec = self.weights[r.integers(0, len(self.weights))]
            count = int(r.integers(0, count + 1))  # a prefix of a stream is a valid stream
            wgt = self._span(c.sram.weight_bytes, packed_size(count, prec))
            return make(Opcode.LOAD_WGT, wgt=wgt, dram=addr, count=count, format=fmt, prec=prec)
        if kind == "matmul":
            prec = Precision(r.choice(list(c.mac.precisions)))
            rows, cols, n = (int(v) for v in r.integers(1, [33, 65, 5]))
            while packed_size(rows * cols, prec) > c.sram.weight_bytes:
                rows = max(1, rows // 2)
            x_stride = cols + int(r.integers(0, 4))
            acc_stride = rows + int(r.integers(0, 4))
            return make(
                Opcode.MATMUL,
                acc=self._span(c.sram.accumulator_words, (n - 1) * acc_stride + rows),
                w=self._span(c.sram.weight_bytes, packed_size(rows * cols, prec)),
                x=self._span(c.sram.activation_bytes, (n - 1) * x_stride + cols),
                rows=rows,
                cols=cols,
                n=n,
                x_stride=x_stride,
                acc_stride=acc_stride,
                prec=prec,
                accumulate=int(r.integers(0, 2)),
            )
        return self.vector()

    def vector(self) -> Instruction:
        r, c = self.rng, self.config
        op = _VECTOR_OPS[r.integers(0, len(_VECTOR_OPS))]
        n = int(r.integers(0, 49))
        fields: dict = {"len": n, "shift": int(r.choice([0, 0, 1, 7, 15, int(r.integers(0, 64))]))}
        names = ["d", "a"] + (
            ["b"] if op in (Opcode.VADD, Opcode.VSUB, Opcode.VMUL, Opcode.VMAX, Opcode.VMIN) else []
        )
        if "b" in names:
            fields["period"] = int(r.choice([0, 1, max(n // 3, 1), int(r.integers(0, 60))]))
        for name in names:
            kind = OperandKind(r.integers(0, 3))
            size = c.sram_size(kind.space) // kind.element_units
            fields[f"{name}_kind"] = kind
            fields[f"{name}_addr"] = self._span(size, n) * kind.element_units
        if op is Opcode.VCLAMP:
            lo, hi = sorted(int(v) for v in np.clip(r.integers(-40000, 40000, 2), -32768, 32767))
            fields |= {"lo": lo, "hi": hi}
        if op is Opcode.VLUT:
            fields["table"] = int(r.integers(0, c.sram.lut_tables))
        ins = Instruction.make(op, **fields)
        if check(ins, c) is not None:  # a random overlap: write in place instead
            ins = ins.replace(d_kind=fields["a_kind"], d_addr=fields["a_addr"])
            if check(ins, c) is not None:
                ins = ins.replace(len=0)
        return ins


def _unsupported(config: HardwareConfig) -> Instruction | None:
    """A ``load_wgt`` in a precision or format ``config`` does not support, if it lacks one."""
    precisions = [p for p in Precision if p not in config.mac.precisions]
    formats_ = [f for f in WeightFormat if f not in config.decompressor.formats]
    if not (precisions or formats_):
        return None
    return Instruction.make(
        Opcode.LOAD_WGT,
        count=1,
        prec=(precisions or list(config.mac.precisions))[0],
        format=(formats_ or list(config.decompressor.formats))[0],
    )


def injectable_causes(config: HardwareConfig) -> tuple[TrapCause, ...]:
    """The causes :func:`random_program` can inject for ``config``: :data:`INJECTABLE`, and
    ``unsupported`` when the config lacks a precision or a weight format."""
    return INJECTABLE + ((TrapCause.UNSUPPORTED,) if _unsupported(config) else ())


def _trapping(rng: np.random.Generator, config: HardwareConfig, cause: TrapCause) -> int:
    """A 128-bit word that traps with ``cause`` wherever it is placed in a program (for
    ``token_overflow``: after a barrier and a full queue, see :func:`random_program`)."""
    make = Instruction.make
    if cause is TrapCause.ILLEGAL_INSTRUCTION:
        word = int.from_bytes(encode(make(Opcode.HALT)), "little")
        return word | (1 << int(rng.integers(INSTRUCTION_BITS - 8, INSTRUCTION_BITS)))
    if cause is TrapCause.ADDRESS_OUT_OF_RANGE:
        size = config.sram.activation_bytes
        ins = make(Opcode.LOAD, space=Space.ACT, sram=size - 1, rows=1, len=2)
    elif cause is TrapCause.MISALIGNED:
        ins = make(
            Opcode.VCOPY, d_kind=OperandKind.ACT_I16, d_addr=1, a_kind=OperandKind.ACT_I8, len=1
        )
    elif cause is TrapCause.OPERAND_OVERLAP:
        ins = make(
            Opcode.VCOPY,
            d_kind=OperandKind.ACT_I8,
            d_addr=1,
            a_kind=OperandKind.ACT_I8,
            a_addr=0,
            len=2,
        )
    elif cause is TrapCause.UNSUPPORTED:
        ins = _unsupported(config)
    elif cause is TrapCause.TOKEN_OVERFLOW:
        # One token more than the load->compute queue holds.
        ins = make(Opcode.NOP, stream=Stream.LOAD, push_next=1)
    else:
        # Waits for a token in a queue that the barrier just before it left empty.
        ins = make(Opcode.NOP, stream=Stream.LOAD, pop_next=1)
    return int.from_bytes(encode(ins), "little")


def random_program(
    rng: np.random.Generator,
    config: HardwareConfig,
    length: int = 40,
    trap: TrapCause | None = None,
) -> GeneratedProgram:
    """A race-free random program of about ``length`` instructions, ending in ``halt``.

    With ``trap`` (one of :func:`injectable_causes`), the program is valid up to an
    instruction past the middle that traps with that cause; with ``end_of_program``, the
    program simply ends there, without a ``halt``.
    """
    if trap is not None and trap not in injectable_causes(config):
        raise ValueError(f"config {config.name} cannot trap with {trap.label}")
    gen = _Generator(rng, config)
    builder = _Builder(rng, config)
    for _ in range(length):
        builder.emit(gen.instruction())
    trap_index = None
    words_after: list[int] = []
    if trap is TrapCause.END_OF_PROGRAM:
        trap_index = len(builder.code)
    elif trap is not None:
        if trap in (TrapCause.TOKEN_UNDERFLOW, TrapCause.TOKEN_OVERFLOW):
            builder.barrier()  # leaves every queue empty
        if trap is TrapCause.TOKEN_OVERFLOW:
            fill = Instruction.make(Opcode.NOP, stream=Stream.LOAD, push_next=1)
            builder.code += [fill] * config.control.token_queue_depth
        trap_index = len(builder.code)
        words_after.append(_trapping(rng, config, trap))
        for _ in range(3):  # never executed: the trap is precise
            builder.emit(gen.instruction())
    if trap is not TrapCause.END_OF_PROGRAM:
        builder.emit(Instruction.make(Opcode.HALT))
    words = [int.from_bytes(encode(i), "little") for i in builder.code]
    if trap_index is not None:
        words[trap_index:trap_index] = words_after
    symbols = ()
    return GeneratedProgram(Program(tuple(words), tuple(gen.segments), symbols), trap_index, trap)
