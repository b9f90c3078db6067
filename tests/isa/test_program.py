import struct

import pytest

from edgenpu.errors import ProgramError
from edgenpu.formats import WeightFormat
from edgenpu.isa import (
    DType,
    Instruction,
    Opcode,
    Program,
    Segment,
    Symbol,
    SymbolKind,
    encode,
)
from edgenpu.precision import Precision


def _program() -> Program:
    return Program(
        (
            int.from_bytes(encode(Instruction.make(Opcode.NOP)), "little"),
            (1 << 128) - 1,  # illegal words are kept, not refused
            0,
        ),
        (Segment(0x0, bytes(range(10))), Segment(0x40, b"\x01\x02"), Segment(0x80, b"")),
        (
            Symbol("x", SymbolKind.DATA, 0x0, 10, (5,), dtype=DType.I16),
            Symbol(
                "w",
                SymbolKind.WEIGHTS,
                0x40,
                2,
                (2, 2),
                precision=Precision.INT4,
                format=WeightFormat.NM2_4,
            ),
            Symbol("out", SymbolKind.OUTPUT, 0x100, 16, (2, 2), dtype=DType.I32),
            Symbol("main", SymbolKind.ENTRY, 2),
            Symbol("empty", SymbolKind.DATA, 0x200, 0, (0, 3), dtype=DType.I8),
        ),
    )


def _parts(program: Program) -> list[tuple[int, int, str]]:
    """(start, length, name) of every part of the container, as the reader names them."""
    parts, at = [], 0

    def part(n, name):
        nonlocal at
        parts.append((at, n, name))
        at += n

    part(20, "header")
    for i in range(len(program.words)):
        part(16, f"instruction {i}")
    for i, seg in enumerate(program.segments):
        part(8, f"segment {i}")
        part(len(seg.data), f"segment {i} data")
    for i, sym in enumerate(program.symbols):
        part(2, f"symbol {i}")
        part(len(sym.name.encode()), f"symbol {i} name")
        part(12, f"symbol {sym.name}")
        part(4 * len(sym.shape), f"symbol {sym.name} shape")
    return parts


def test_round_trip():
    program = _program()
    data = program.to_bytes()
    assert Program.from_bytes(data) == program
    assert Program.from_bytes(data).to_bytes() == data
    assert sum(n for _, n, _ in _parts(program)) == len(data)


def test_header_layout():
    data = _program().to_bytes()
    assert struct.unpack("<4sHHIII", data[:20]) == (b"ENPU", 1, 0, 3, 3, 5)


def test_truncation_at_every_length_names_the_part():
    program = _program()
    data = program.to_bytes()
    parts = _parts(program)
    for length in range(len(data)):
        start, n, name = next(p for p in parts if p[0] + p[1] > length)
        with pytest.raises(ProgramError) as info:
            Program.from_bytes(data[:length], "prog.bin")
        assert str(info.value) == (
            f"prog.bin: truncated in {name} at byte {start} (needs {n}, {length - start} left)"
        )


def test_bad_magic():
    data = b"ELF!" + _program().to_bytes()[4:]
    with pytest.raises(ProgramError, match=r"^p: not an edgenpu program \(magic b'ELF!'\)$"):
        Program.from_bytes(data, "p")


def test_bad_version():
    data = bytearray(_program().to_bytes())
    data[4] = 9
    with pytest.raises(ProgramError, match=r"^p: container version 9, expected 1$"):
        Program.from_bytes(bytes(data), "p")


def test_trailing_bytes():
    with pytest.raises(ProgramError, match=r"^p: 3 trailing bytes$"):
        Program.from_bytes(_program().to_bytes() + b"abc", "p")


def test_duplicate_symbol():
    program = Program((), (), (Symbol("a", SymbolKind.ENTRY, 0),) * 2)
    with pytest.raises(ProgramError, match=r"^p: symbol 'a' defined twice$"):
        Program.from_bytes(program.to_bytes(), "p")


def test_overlapping_segments():
    program = Program((), (Segment(0x10, bytes(8)), Segment(0x0, bytes(0x11))))
    with pytest.raises(ProgramError, match=r"^p: segments at 0x0 and 0x10 overlap$"):
        Program.from_bytes(program.to_bytes(), "p")


def test_adjacent_segments_are_fine():
    program = Program((), (Segment(0x0, bytes(0x10)), Segment(0x10, bytes(8))))
    assert Program.from_bytes(program.to_bytes()) == program


def test_entry_past_the_code():
    program = Program((0,), (), (Symbol("e", SymbolKind.ENTRY, 1),))
    with pytest.raises(ProgramError, match=r"^p: entry 'e' at 1 is past the code$"):
        Program.from_bytes(program.to_bytes(), "p")


def test_bad_symbol_kind_and_name():
    data = bytearray(
        Program((), (), (Symbol("a", SymbolKind.DATA, 0, 0, (1,), DType.I8),)).to_bytes()
    )
    kind_at = 20 + 2 + 1
    data[kind_at] = 9
    with pytest.raises(ProgramError, match=r"^p: symbol 'a': 9 is not a valid SymbolKind$"):
        Program.from_bytes(bytes(data), "p")
    data[kind_at] = 0
    data[22] = 0xFF  # the name byte
    with pytest.raises(ProgramError, match=r"^p: symbol 0: name is not UTF-8$"):
        Program.from_bytes(bytes(data), "p")


def test_accessors():
    program = _program()
    assert program.symbol("w").kind is SymbolKind.WEIGHTS
    assert [s.name for s in program.symbols_of(SymbolKind.DATA)] == ["x", "empty"]
    assert program.dram_extent == 0x200
    assert program.symbol("out").count == 4
    with pytest.raises(KeyError):
        program.symbol("nope")
    with pytest.raises(Exception, match="unknown opcode 31"):
        program.instructions()
