"""The instruction set: its one definition and everything derived from it.

``spec`` defines opcodes and fields; ``encoding`` turns instructions into 128-bit words and
back; ``semantics`` says what each instruction touches and when it traps; ``program`` is the
binary container; ``asm``/``disasm`` are the text forms; ``reference`` writes docs/isa.md.
"""

from edgenpu.isa.encoding import IllegalInstruction, Instruction, decode, encode, stream_of
from edgenpu.isa.program import DType, Program, Segment, Symbol, SymbolKind
from edgenpu.isa.spec import (
    ACC_ADDR_BITS,
    DRAM_ADDR_BITS,
    HEADER,
    INSTRUCTION_BITS,
    INSTRUCTION_BYTES,
    LUT_ENTRIES,
    LUT_TABLES,
    SPECS,
    SRAM_ADDR_BITS,
    Field,
    InstructionSpec,
    Opcode,
    OperandKind,
    Space,
    Stream,
    TrapCause,
    spec_for,
)

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
    "DType",
    "Field",
    "IllegalInstruction",
    "Instruction",
    "InstructionSpec",
    "Opcode",
    "OperandKind",
    "Program",
    "Segment",
    "Space",
    "Stream",
    "Symbol",
    "SymbolKind",
    "TrapCause",
    "decode",
    "encode",
    "spec_for",
    "stream_of",
]
