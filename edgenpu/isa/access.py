"""What each instruction touches, and the static rules that make it trap.

Every trap but a token one is a property of one instruction and the hardware config, so it
can be detected when the instruction is *dispatched*, before any later instruction runs.
Token traps are counted in program order (see :mod:`edgenpu.isa.spec`), so they are static
too. That makes traps precise on the hardware as in the simulators: every instruction
before the trapping one completes, none after it starts.

The checks run in this order and the first failure is the trap:

* ``unsupported``: a weight precision or format the config does not have.
* ``misaligned``: an ``act.i16`` vector operand at an odd byte address.
* ``address_out_of_range``: any byte or word an instruction may touch lies past the end of
  its memory. For ``load_wgt`` that is the *worst-case* stream length of its format and
  count, since the actual length is only known once the stream is read.
* ``operand_overlap``: a vector destination overlaps a source without being exactly the
  same range and kind (in-place is allowed), or the output vectors of a ``matmul`` with
  ``n > 1`` overlap (``acc_stride < rows``).

Token traps (``token_underflow``, ``token_overflow``), an undecodable word
(``illegal_instruction``) and running past the last instruction (``end_of_program``) are
found by the dispatcher itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.config import HardwareConfig
from edgenpu.formats import max_encoded_size
from edgenpu.isa.encoding import Instruction
from edgenpu.isa.spec import LUT_ENTRIES, Opcode, OperandKind, Space, TrapCause
from edgenpu.labelled import LabelledEnum
from edgenpu.precision import packed_size

__all__ = ["Access", "Memory", "Trap", "accesses", "check", "memory_size", "vector_operands"]


class Memory(LabelledEnum):
    """Every memory an instruction can touch: the on-chip spaces (same values) and DRAM."""

    WGT = Space.WGT.value
    ACT = Space.ACT.value
    ACC = Space.ACC.value
    LUT = Space.LUT.value
    DRAM = 4

    @classmethod
    def of(cls, space: Space) -> Memory:
        return cls(space.value)

    @property
    def unit_bytes(self) -> int:
        return 4 if self is Memory.ACC else 1


@dataclass(frozen=True)
class Access:
    """A contiguous range ``[start, stop)`` in a memory's addressing unit."""

    memory: Memory
    start: int
    stop: int
    write: bool

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Trap:
    """Why an instruction cannot run, with a message naming the field and address."""

    cause: TrapCause
    message: str


@dataclass(frozen=True)
class VectorOperand:
    """A vector instruction operand: where it lives and how many elements it spans."""

    name: str
    kind: OperandKind
    addr: int
    elements: int

    @property
    def access(self) -> tuple[Memory, int, int]:
        stop = self.addr + self.elements * self.kind.element_units
        return Memory.of(self.kind.space), self.addr, stop


def vector_operands(ins: Instruction) -> list[VectorOperand]:
    """The destination then the sources of a vector instruction.

    Operand ``b`` spans only ``period`` elements when it wraps (it is re-read, not
    re-fetched from further on).
    """
    n = ins["len"]
    out = [
        VectorOperand("d", ins["d_kind"], ins["d_addr"], n),
        VectorOperand("a", ins["a_kind"], ins["a_addr"], n),
    ]
    if "b_kind" in ins.fields():
        period = ins["period"]
        out.append(VectorOperand("b", ins["b_kind"], ins["b_addr"], min(n, period or n)))
    return out


def _dma_dram(ins: Instruction, write: bool) -> Access:
    # One range from the first to the last byte; rows may leave gaps in it, which is fine
    # for range checks and is how a DMA descriptor is bounds-checked in hardware.
    rows, length, stride = ins["rows"], ins["len"], ins["stride"]
    span = (rows - 1) * stride + length * ins["space"].unit_bytes
    return Access(Memory.DRAM, ins["dram"], ins["dram"] + span, write)


def accesses(ins: Instruction) -> list[Access]:
    """Every memory range ``ins`` reads or writes (empty ranges omitted)."""
    op = ins.opcode
    out: list[Access] = []
    if op in (Opcode.LOAD, Opcode.STORE):
        if ins["rows"] and ins["len"]:
            sram = Memory.of(ins["space"])
            on_chip = Access(sram, ins["sram"], ins["sram"] + ins["rows"] * ins["len"], False)
            load = op is Opcode.LOAD
            out = [_dma_dram(ins, write=not load), Access(sram, on_chip.start, on_chip.stop, load)]
    elif op is Opcode.LOAD_WGT:
        if ins["count"]:
            worst = max_encoded_size(ins["count"], ins["format"], ins["prec"])
            out = [
                Access(Memory.DRAM, ins["dram"], ins["dram"] + worst, False),
                Access(
                    Memory.WGT,
                    ins["wgt"],
                    ins["wgt"] + packed_size(ins["count"], ins["prec"]),
                    True,
                ),
            ]
    elif op is Opcode.MATMUL:
        rows, cols, n = ins["rows"], ins["cols"], ins["n"]
        if rows and cols and n:
            w_bytes = packed_size(rows * cols, ins["prec"])
            out = [
                Access(Memory.WGT, ins["w"], ins["w"] + w_bytes, False),
                Access(Memory.ACT, ins["x"], ins["x"] + (n - 1) * ins["x_stride"] + cols, False),
                Access(
                    Memory.ACC, ins["acc"], ins["acc"] + (n - 1) * ins["acc_stride"] + rows, True
                ),
            ]
    elif op.is_vector and ins["len"]:
        for operand in vector_operands(ins):
            memory, start, stop = operand.access
            out.append(Access(memory, start, stop, operand.name == "d"))
        if op is Opcode.VLUT:
            table = ins["table"] * LUT_ENTRIES
            out.append(Access(Memory.LUT, table, table + LUT_ENTRIES, False))
    return out


def memory_size(memory: Memory, config: HardwareConfig) -> int:
    """A memory's size in its addressing unit (ACC: words) on ``config``."""
    if memory is Memory.DRAM:
        return config.dram.bytes
    return config.sram_size(Space(memory.value))


def check(ins: Instruction, config: HardwareConfig) -> Trap | None:
    """The trap ``ins`` raises on ``config``, or ``None`` if it may run."""
    op = ins.opcode
    if op in (Opcode.MATMUL, Opcode.LOAD_WGT) and ins["prec"] not in config.mac.precisions:
        return Trap(
            TrapCause.UNSUPPORTED,
            f"precision {ins['prec'].label} is not supported by config {config.name}",
        )
    if op is Opcode.LOAD_WGT and ins["format"] not in config.decompressor.formats:
        return Trap(
            TrapCause.UNSUPPORTED,
            f"weight format {ins['format'].label} is not supported by config {config.name}",
        )
    if op.is_vector:
        for operand in vector_operands(ins):
            if operand.kind is OperandKind.ACT_I16 and operand.addr % 2:
                return Trap(
                    TrapCause.MISALIGNED,
                    f"operand {operand.name}: act.i16 address {operand.addr:#x} is odd",
                )
    for a in accesses(ins):
        size = memory_size(a.memory, config)
        if a.stop > size:
            return Trap(
                TrapCause.ADDRESS_OUT_OF_RANGE,
                f"{a.memory.label} range {a.start:#x}..{a.stop:#x} exceeds its "
                f"{size:#x} {'words' if a.memory is Memory.ACC else 'bytes'}",
            )
    return _overlap(ins)


def _overlap(ins: Instruction) -> Trap | None:
    op = ins.opcode
    if op is Opcode.MATMUL and ins["n"] > 1 and ins["acc_stride"] < ins["rows"]:
        return Trap(
            TrapCause.OPERAND_OVERLAP,
            f"output vectors overlap: acc_stride {ins['acc_stride']} < rows {ins['rows']}",
        )
    if op.is_vector and ins["len"]:
        # A streaming vector unit reads element i before it writes element i, so writing in
        # place over an identical source range is safe; any other overlap would make the
        # result depend on the pipeline's depth.
        d, *sources = vector_operands(ins)
        d_mem, d_start, d_stop = d.access
        for s in sources:
            mem, start, stop = s.access
            same = (start, stop, s.kind) == (d_start, d_stop, d.kind)
            if mem is d_mem and start < d_stop and d_start < stop and not same:
                return Trap(
                    TrapCause.OPERAND_OVERLAP,
                    f"destination {d_mem.label} {d_start:#x}..{d_stop:#x} partly overlaps "
                    f"operand {s.name} {start:#x}..{stop:#x}",
                )
    return None
