"""The instruction set, defined once.

Every instruction is 128 bits. Bits are numbered from the least significant; the layout of
an instruction is its header (opcode, then the four dependency-token flags) followed by its
own fields packed upwards in the order listed here. Bits above the last field are reserved
and must be zero.

Everything else is derived from this file: the encoder/decoder, the assembler and
disassembler, the functional simulator's decoder, the performance model, the RTL decoder's
``data.Struct`` layouts and ``docs/isa.md``. No width or opcode value is written anywhere else.

Execution model (VTA-style decoupled access/execute). Each instruction belongs to one of
three *streams*: ``load`` (DRAM -> on-chip memories), ``compute`` (MAC array, vector unit)
and ``store`` (on-chip -> DRAM). The streams run concurrently and synchronise only through
four dependency-token queues between neighbours (load <-> compute <-> store). An
instruction may *pop* a token from its ``prev``/``next`` neighbour before it starts and
*push* one to its ``prev``/``next`` neighbour when it finishes. A program is valid when it
runs in program order without popping an empty queue or pushing a full one; such a program
cannot deadlock on the hardware, whatever the streams' relative speeds: the earliest
unfinished instruction always finds at least the tokens it found in program order, and at
least as much room.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenpu.formats import WeightFormat
from edgenpu.labelled import LabelledEnum
from edgenpu.precision import Precision

__all__ = [
    "ACC_ADDR_BITS",
    "DRAM_ADDR_BITS",
    "HEADER",
    "INSTRUCTION_BITS",
    "INSTRUCTION_BYTES",
    "LUT_ENTRIES",
    "LUT_TABLES",
    "SPECS",
    "SRAM_ADDR_BITS",
    "Field",
    "InstructionSpec",
    "Opcode",
    "OperandKind",
    "Space",
    "Stream",
    "TrapCause",
    "spec_for",
]

INSTRUCTION_BITS = 128
INSTRUCTION_BYTES = INSTRUCTION_BITS // 8

#: Byte addresses into the weight, activation and LUT memories.
SRAM_ADDR_BITS = 20
#: Word (int32) addresses into the accumulator memory.
ACC_ADDR_BITS = 18
#: Byte addresses into DRAM.
DRAM_ADDR_BITS = 32
#: A lookup table maps every int8 value to an int8 value.
LUT_ENTRIES = 256
#: The vector unit holds at most this many tables (the ``table`` field's range).
LUT_TABLES = 4


class Stream(LabelledEnum):
    """The three decoupled instruction streams, in pipeline order."""

    LOAD = 0
    COMPUTE = 1
    STORE = 2


class Space(LabelledEnum):
    """On-chip memories. Addresses count bytes, except in ACC where they count int32 words."""

    WGT = 0
    ACT = 1
    ACC = 2
    LUT = 3

    @property
    def unit_bytes(self) -> int:
        return 4 if self is Space.ACC else 1


class OperandKind(LabelledEnum):
    """Where a vector operand lives and its element type."""

    ACT_I8 = 0
    ACT_I16 = 1
    ACC_I32 = 2

    @property
    def label(self) -> str:
        return {0: "act.i8", 1: "act.i16", 2: "acc.i32"}[self.value]

    @property
    def space(self) -> Space:
        return Space.ACC if self is OperandKind.ACC_I32 else Space.ACT

    @property
    def bits(self) -> int:
        return (8, 16, 32)[self.value]

    @property
    def element_units(self) -> int:
        """Address units one element occupies in its space (ACC counts words)."""
        return 1 if self is OperandKind.ACC_I32 else self.bits // 8


class TrapCause(LabelledEnum):
    """Why a program stopped. The RTL reports the same codes."""

    NONE = 0
    ILLEGAL_INSTRUCTION = 1
    UNSUPPORTED = 2
    ADDRESS_OUT_OF_RANGE = 3
    MISALIGNED = 4
    OPERAND_OVERLAP = 5
    TOKEN_UNDERFLOW = 6
    TOKEN_OVERFLOW = 7
    END_OF_PROGRAM = 8


@dataclass(frozen=True)
class Field:
    """One instruction field.

    Parameters
    ----------
    name : str
        The name used in assembly (``name=value``) and in the RTL struct.
    width : int
        Bits.
    doc : str
        One line for the reference table.
    enum : type, optional
        The enum its values come from; any value outside the enum is an illegal
        instruction.
    signed : bool
        Two's complement.
    """

    name: str
    width: int
    doc: str
    enum: type[LabelledEnum] | None = None
    signed: bool = False

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


class Opcode(LabelledEnum):
    """Instruction opcodes; the value is the 5-bit encoding."""

    HALT = 0
    NOP = 1
    LOAD = 2
    LOAD_WGT = 3
    STORE = 4
    MATMUL = 5
    VADD = 8
    VSUB = 9
    VMUL = 10
    VMAX = 11
    VMIN = 12
    VCOPY = 16
    VRELU = 17
    VCLAMP = 18
    VLUT = 19

    @property
    def is_vector(self) -> bool:
        """Runs on the vector unit."""
        return Opcode.VADD <= self <= Opcode.VLUT


#: Every instruction starts with these: the opcode, then the dependency-token flags.
HEADER: tuple[Field, ...] = (
    Field("opcode", 5, "operation", enum=Opcode),
    Field("pop_prev", 1, "wait for and take a token from the previous stream"),
    Field("pop_next", 1, "wait for and take a token from the next stream"),
    Field("push_prev", 1, "give a token to the previous stream when done"),
    Field("push_next", 1, "give a token to the next stream when done"),
)


@dataclass(frozen=True)
class InstructionSpec:
    """An opcode's stream, fields (after the header) and one-line meaning."""

    opcode: Opcode
    stream: Stream | None
    fields: tuple[Field, ...]
    doc: str

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return HEADER + self.fields

    def offsets(self) -> dict[str, int]:
        """Bit offset of each field, header included."""
        out, at = {}, 0
        for f in self.all_fields:
            out[f.name] = at
            at += f.width
        return out

    @property
    def used_bits(self) -> int:
        return sum(f.width for f in self.all_fields)


def _operand(name: str, role: str) -> tuple[Field, Field]:
    return (
        Field(f"{name}_kind", 2, f"{role}: memory and element type", enum=OperandKind),
        Field(f"{name}_addr", SRAM_ADDR_BITS, f"{role}: address (ACT bytes, ACC words)"),
    )


_DMA_FIELDS = (
    Field("space", 2, "on-chip memory", enum=Space),
    Field("sram", SRAM_ADDR_BITS, "first on-chip address (ACC: words)"),
    Field("dram", DRAM_ADDR_BITS, "first DRAM byte address"),
    Field("rows", 12, "rows to move"),
    Field("len", 16, "elements per row, in the on-chip memory's unit"),
    Field("stride", 24, "DRAM bytes between row starts; on chip, rows are contiguous"),
)
_VECTOR_COMMON = (
    *_operand("d", "destination"),
    *_operand("a", "first source"),
    Field("len", 16, "elements"),
    Field("shift", 6, "rounding right shift applied to the result before saturation"),
)
_VECTOR_BINARY = (
    *_VECTOR_COMMON,
    *_operand("b", "second source"),
    Field("period", 16, "b index wraps every `period` elements (0: never)"),
)

SPECS: dict[Opcode, InstructionSpec] = {
    s.opcode: s
    for s in (
        InstructionSpec(Opcode.HALT, None, (), "stop once every stream has drained"),
        InstructionSpec(
            Opcode.NOP,
            None,
            (Field("stream", 2, "stream that executes the token operations", enum=Stream),),
            "token operations only, in the named stream",
        ),
        InstructionSpec(
            Opcode.LOAD,
            Stream.LOAD,
            _DMA_FIELDS,
            "DRAM -> any on-chip memory, `rows` x `len` elements, strided in DRAM",
        ),
        InstructionSpec(
            Opcode.LOAD_WGT,
            Stream.LOAD,
            (
                Field("wgt", SRAM_ADDR_BITS, "first weight SRAM byte address"),
                Field("dram", DRAM_ADDR_BITS, "DRAM byte address of the compressed stream"),
                Field("count", 21, "dense weights to produce"),
                Field("format", 2, "compressed format of the stream", enum=WeightFormat),
                Field("prec", 1, "weight precision", enum=Precision),
            ),
            "DRAM -> decompressor -> WGT: `count` dense weights, zeros filled back in",
        ),
        InstructionSpec(
            Opcode.STORE,
            Stream.STORE,
            _DMA_FIELDS,
            "any on-chip memory -> DRAM, `rows` x `len` elements, strided in DRAM",
        ),
        InstructionSpec(
            Opcode.MATMUL,
            Stream.COMPUTE,
            (
                Field("acc", ACC_ADDR_BITS, "output: first ACC word"),
                Field("w", SRAM_ADDR_BITS, "weights: WGT byte address of a packed row-major tile"),
                Field("x", SRAM_ADDR_BITS, "inputs: ACT byte address of the first int8 vector"),
                Field("rows", 12, "weight rows (outputs per vector)"),
                Field("cols", 12, "weight columns (inputs per vector)"),
                Field("n", 8, "input vectors"),
                Field("x_stride", 12, "ACT bytes between input vectors"),
                Field("acc_stride", 12, "ACC words between output vectors"),
                Field("prec", 1, "weight precision", enum=Precision),
                Field("accumulate", 1, "add to the ACC contents instead of overwriting"),
            ),
            "acc[j][i] (+)= sum_k W[i][k] * x[j][k], int32 wrapping",
        ),
        InstructionSpec(Opcode.VADD, Stream.COMPUTE, _VECTOR_BINARY, "d = sat((a + b) >> shift)"),
        InstructionSpec(Opcode.VSUB, Stream.COMPUTE, _VECTOR_BINARY, "d = sat((a - b) >> shift)"),
        InstructionSpec(Opcode.VMUL, Stream.COMPUTE, _VECTOR_BINARY, "d = sat((a * b) >> shift)"),
        InstructionSpec(Opcode.VMAX, Stream.COMPUTE, _VECTOR_BINARY, "d = sat(max(a, b) >> shift)"),
        InstructionSpec(Opcode.VMIN, Stream.COMPUTE, _VECTOR_BINARY, "d = sat(min(a, b) >> shift)"),
        InstructionSpec(Opcode.VCOPY, Stream.COMPUTE, _VECTOR_COMMON, "d = sat(a >> shift)"),
        InstructionSpec(
            Opcode.VRELU, Stream.COMPUTE, _VECTOR_COMMON, "d = sat(max(a >> shift, 0))"
        ),
        InstructionSpec(
            Opcode.VCLAMP,
            Stream.COMPUTE,
            (
                *_VECTOR_COMMON,
                Field("lo", 16, "lower bound", signed=True),
                Field("hi", 16, "upper bound", signed=True),
            ),
            "d = sat(min(max(a >> shift, lo), hi))",
        ),
        InstructionSpec(
            Opcode.VLUT,
            Stream.COMPUTE,
            (
                *_VECTOR_COMMON,
                Field("table", 2, "lookup table: LUT bytes 256*table .. 256*table + 255"),
            ),
            "d = sat(LUT[table][sat_i8(a >> shift) + 128])",
        ),
    )
}


def spec_for(opcode: Opcode) -> InstructionSpec:
    """The specification of ``opcode``."""
    return SPECS[opcode]


def _check_definition() -> None:
    # A definition error is a bug in this file; fail at import rather than mis-encode.
    assert set(SPECS) == set(Opcode), "every opcode needs a spec"
    for spec in SPECS.values():
        names = [f.name for f in spec.all_fields]
        assert len(names) == len(set(names)), f"{spec.opcode.label}: duplicate field"
        assert spec.used_bits <= INSTRUCTION_BITS, f"{spec.opcode.label}: too wide"
        for f in spec.all_fields:
            if f.enum is not None:
                assert max(f.enum) < (1 << f.width), f"{spec.opcode.label}.{f.name}: narrow"


_check_definition()
