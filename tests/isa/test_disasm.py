import textwrap
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenpu.formats import WeightFormat
from edgenpu.formats import encode as encode_weights
from edgenpu.isa import (
    SPECS,
    DType,
    Instruction,
    Opcode,
    OperandKind,
    Program,
    Segment,
    Space,
    Stream,
    Symbol,
    SymbolKind,
    encode,
)
from edgenpu.isa.asm import assemble
from edgenpu.isa.disasm import (
    ADDRESS_FIELDS,
    WIDTH,
    disassemble,
    disassemble_instruction,
    disassemble_word,
)
from edgenpu.precision import Precision
from tests.isa.isa_strategies import instructions, names


def word(ins: Instruction) -> int:
    return int.from_bytes(encode(ins), "little")


def assert_round_trip(program: Program) -> str:
    text = disassemble(program)
    again = assemble(text, "disassembly")
    assert again.to_bytes() == program.to_bytes(), text
    assert disassemble(again) == text  # a fixed point: nothing drifts on the second trip
    return text


EVERYTHING = """
; every instruction kind and every directive
.org 0x20
.bytes 0102 0304,
    0506
.align 128
.data x: i8[2, 3] = 1, -2, 3, 4, 5, -128
.data h: i16[3] @ 0x400 = -32768, 0, 32767
.data words: i32[2] = -1, 0x7fffffff
.data inputs: i8[16]
.output y: i32[4, 4]
.weights w8: int8 dense[3, 5] = 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, -128, 127, 0, 1, -1
.weights w4: int4 bitmask[40] = 0, 1, 0, -8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, -1
.weights s: int8 nm2_4[8] @ 0x1000 = 1, 0, 2, 0, 0, 0, 0, -3
.weights odd: int8 bitmask[4] raw = 01000000 00
.entry main
    nop stream=load, signal=compute
    load space=lut, sram=0x0, dram=words, rows=1, len=8, signal=compute
    load_wgt wgt=0x0, dram=w4, count=w4.count, format=bitmask, prec=int4, signal=compute
    matmul acc=0, w=0, x=0x10, rows=5, cols=3, n=2, x_stride=3, acc_stride=5, prec=int8,
        accumulate=1, wait=load
    vadd d=act.i16[0x40], a=act.i16[0x40], b=acc.i32[0x8], len=16, shift=3, period=4
    vsub d=acc.i32[0x0], a=acc.i32[0x0], b=act.i8[0x3], len=2
    vmul d=act.i8[0x0], a=act.i8[0x100], b=act.i8[0x200], len=7
    vmax d=act.i8[0x0], a=act.i8[0x100], b=act.i8[0x200], len=7
    vmin d=act.i8[0x0], a=act.i8[0x100], b=act.i8[0x200], len=7
    vcopy d=act.i8[0x300], a=acc.i32[0x0], len=4, shift=63
.entry tail
    vrelu d=act.i8[0x300], a=act.i8[0x300], len=4
    vclamp d=act.i16[0x2], a=act.i16[0x2], len=1, lo=-32768, hi=32767
    vlut d=act.i8[0x0], a=act.i8[0x0], len=256, table=3, signal=store
    nop stream=compute, wait=load+store, signal=load+store
    store space=acc, sram=0x10, dram=y, rows=4, len=4, stride=16, wait=compute, signal=compute
    store space=act, dram=y.end, rows=4095, len=65535, stride=0xffffff
    .word 0xffffffffffffffffffffffffffffffff
    .word 6
    .word 2 + (1 << 5)
    .word 8 + (3 << 9)
    halt
.entry last @ 1
"""


def test_round_trip_of_every_instruction_and_directive():
    program = assemble(EVERYTHING)
    assert {w & 0x1F for w in program.words} >= {op.value for op in Opcode}
    text = assert_round_trip(program)
    assert "warning" not in text
    assert ".weights odd: int8 bitmask[4] @ 0x" in text and " raw = 01000000 00" in text
    assert ".entry last @ 1" in text
    # Instruction lines are not wrapped, but these fit; `.word` comments may run long.
    assert all(len(line) <= WIDTH for line in text.splitlines() if ".word" not in line)


def test_illegal_words_are_kept_as_word_directives():
    words = (
        (1 << 128) - 1,  # unknown opcode 31
        Opcode.LOAD.value | 1 << 5,  # pop_prev on a load
        Opcode.VADD.value | 3 << 9,  # d_kind 3
        Opcode.HALT.value | 1 << 127,  # reserved bit
    )
    program = Program(words)
    text = assert_round_trip(program)
    assert text.splitlines()[2:] == [
        "    .word 0xffffffffffffffffffffffffffffffff ; illegal: unknown opcode 31",
        "    .word 0x00000000000000000000000000000022 ; illegal: load: pop_prev has no "
        "neighbour in the load stream",
        "    .word 0x00000000000000000000000000000608 ; illegal: vadd.d_kind: 3 is not a "
        "OperandKind",
        "    .word 0x80000000000000000000000000000000 ; illegal: halt: reserved bits 9..127 "
        "are not zero",
    ]


GOLDEN_SOURCE = """
.data x: i8[2, 3] = 1, -2, 3, 4, 5, -128
.output y: i16[4]
.weights w: int4 nm2_4[32] = 1, 0, 0, -8, 0, 2, 3, 0, 0, 0, 0, 0, 7, 0, 0, 7,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
.bytes c0ffee
.entry main
    load_wgt wgt=0x100, dram=w, count=w.count, format=nm2_4, prec=int4, signal=compute
    load space=act, dram=x, rows=2, len=3, stride=3, signal=compute
    matmul acc=4, w=0x100, x=0, rows=1, cols=32, n=1, prec=int4, wait=load
    vclamp d=act.i16[0x40], a=acc.i32[0x4], len=4, shift=2, lo=-100, hi=100, signal=store
    store space=act, dram=y, rows=1, len=8, wait=compute
    .word 0x80000000000000000000000000000001
    halt
"""

GOLDEN_TEXT = """\
; edgenpu program: 7 instructions, 3 segments, 4 symbols

.org 0x8c
.bytes c0ffee
.data x: i8[2, 3] @ 0x0 = 1, -2, 3, 4, 5, -128
.output y: i16[4] @ 0x40
.weights w: int4 nm2_4[32] @ 0x80 = 1, 0, 0, -8, 0, 2, 3, 0, 0, 0, 0, 0, 7, 0, 0, 7, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1

.entry main
    load_wgt signal=compute, wgt=0x100, dram=w, count=32, format=nm2_4, prec=int4
    load signal=compute, space=act, dram=x, rows=2, len=3, stride=3
    matmul wait=load, acc=0x4, w=0x100, rows=1, cols=32, n=1, prec=int4
    vclamp signal=store, d=act.i16[0x40], a=acc.i32[0x4], len=4, shift=2, lo=-100, hi=100
    store wait=compute, space=act, dram=y, rows=1, len=8
    .word 0x80000000000000000000000000000001 ; illegal: nop: reserved bits 11..127 are not zero
    halt
"""


def test_golden_disassembly():
    # Catches drift in the encoding as well as in the text: see STYLE.md, rule 6.
    assert disassemble(assemble(GOLDEN_SOURCE)) == GOLDEN_TEXT


@pytest.mark.parametrize(
    ("ins", "text"),
    [
        (Instruction.make(Opcode.HALT), "halt"),
        (Instruction.make(Opcode.NOP), "nop stream=load"),
        (
            Instruction.make(
                Opcode.NOP, stream=Stream.COMPUTE, pop_prev=1, push_next=1, push_prev=1
            ),
            "nop wait=load, signal=load+store, stream=compute",
        ),
        (
            Instruction.make(Opcode.LOAD, space=Space.ACC, sram=16, dram=0x40, rows=1, len=3),
            "load space=acc, sram=0x10, dram=0x40, rows=1, len=3",
        ),
        (
            Instruction.make(Opcode.VADD, b_kind=OperandKind.ACC_I32, b_addr=5, len=3),
            "vadd d=act.i8[0x0], a=act.i8[0x0], len=3, b=acc.i32[0x5]",
        ),
        (Instruction.make(Opcode.VCLAMP, lo=-5), "vclamp d=act.i8[0x0], a=act.i8[0x0], lo=-5"),
        (Instruction.make(Opcode.LOAD_WGT), "load_wgt format=dense, prec=int8"),
    ],
)
def test_disassemble_instruction(ins, text):
    assert disassemble_instruction(ins) == text
    assert disassemble_word(word(ins)) == text


def test_dram_fields_print_symbol_names():
    ins = Instruction.make(Opcode.STORE, dram=0x40, rows=2)
    assert disassemble_instruction(ins, {0x40: "out"}) == "store space=wgt, dram=out, rows=2"
    assert disassemble_instruction(ins, {0x80: "out"}) == "store space=wgt, dram=0x40, rows=2"
    at_zero = Instruction.make(Opcode.LOAD)
    assert disassemble_instruction(at_zero, {0: "x"}) == "load space=wgt, dram=x"


def test_address_fields_exist_in_the_spec():
    # The hex formatting table names fields; a rename in spec.py must not go unnoticed.
    fields = {f.name for s in SPECS.values() for f in s.fields}
    assert set(ADDRESS_FIELDS) <= fields


def test_non_canonical_weights_fall_back_to_raw():
    # A valid stream in hardware terms whose re-encoding differs: a listed zero value.
    stream = bytes([0b11, 0, 0, 0, 5, 0])
    symbol = Symbol(
        "w",
        SymbolKind.WEIGHTS,
        0x40,
        len(stream),
        (2, 2),
        precision=Precision.INT8,
        format=WeightFormat.BITMASK,
    )
    program = Program((), (Segment(0x40, stream),), (symbol,))
    text = assert_round_trip(program)
    assert ".weights w: int8 bitmask[2, 2] @ 0x40 raw = 03000000 0500" in text
    truncated = Program(
        (),
        (Segment(0x40, stream[:3]),),
        (
            symbol.__class__(
                "w",
                SymbolKind.WEIGHTS,
                0x40,
                3,
                (64,),
                precision=Precision.INT8,
                format=WeightFormat.DENSE,
            ),
        ),
    )
    assert " raw = 030000" in assert_round_trip(truncated)
    huge = Program(
        (),
        (Segment(0x40, stream),),
        (replace(symbol, shape=(1 << 31, 1 << 31), format=WeightFormat.BITMASK),),
    )
    assert " raw = 03000000 0500" in assert_round_trip(huge)  # and does not hang


def test_symbols_sharing_a_segment_are_declared_over_raw_bytes():
    program = Program(
        (),
        (Segment(0x100, bytes(range(16))),),
        (
            Symbol("lo", SymbolKind.DATA, 0x100, 8, (4,), dtype=DType.I16),
            Symbol("hi", SymbolKind.DATA, 0x108, 8, (8,), dtype=DType.I8),
            Symbol("res", SymbolKind.OUTPUT, 0x100, 16, (4,), dtype=DType.I32),
        ),
    )
    text = assert_round_trip(program)
    assert ".data lo: i16[4] @ 0x100\n" in text
    assert ".org 0x100\n.bytes 00010203 04050607 08090a0b 0c0d0e0f\n" in text


def test_symbol_order_with_entries_out_of_code_order():
    program = Program(
        (0, 0, 0),
        (),
        (
            Symbol("b", SymbolKind.ENTRY, 2),
            Symbol("d", SymbolKind.OUTPUT, 0x0, 1, (1,), dtype=DType.I8),
            Symbol("a", SymbolKind.ENTRY, 0),
            Symbol("c", SymbolKind.ENTRY, 2),
        ),
    )
    text = assert_round_trip(program)
    assert ".entry a @ 0" in text


def test_inexpressible_programs_warn_and_still_assemble():
    program = Program(
        (0,),
        (Segment(0x80, b"\x01"), Segment(0x0, bytes(8))),
        (
            Symbol("enc.0.w", SymbolKind.DATA, 0x0, 8, (8,), dtype=DType.I8),
            Symbol(
                "w",
                SymbolKind.WEIGHTS,
                0x2,
                4,
                (8,),
                precision=Precision.INT8,
                format=WeightFormat.DENSE,
            ),
            Symbol("ok", SymbolKind.OUTPUT, 0x10, 3, (4,), dtype=DType.I8),
        ),
    )
    text = disassemble(program)
    assert text.splitlines()[1:5] == [
        "; warning: segments are not in address order; reassembly sorts them",
        "; warning: symbol 'enc.0.w' is left out: its name is not an assembly identifier",
        "; warning: symbol 'w' is left out: its 4 bytes at 0x2 are not one segment of their own",
        "; warning: symbol 'ok' will not come back exactly: 3 bytes (reassembled: 4)",
    ]
    again = assemble(text)
    assert again.segments == (Segment(0x0, bytes(8)), Segment(0x80, b"\x01"))
    assert [s.name for s in again.symbols] == ["ok"]


def test_long_value_lists_wrap_below_the_width():
    values = ", ".join(str(-100 + i % 200) for i in range(1000))
    text = assert_round_trip(assemble(f".data big: i16[10, 100] = {values}\n.bytes {'ab' * 500}"))
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    start = next(i for i, line in enumerate(lines) if line.startswith(".data big"))
    block = lines[start : next(i for i in range(start, len(lines)) if not lines[i].endswith(","))]
    assert len(block) > 30
    assert all(line.startswith("    ") for line in block[1:])
    hex_block = lines[next(i for i, line in enumerate(lines) if line.startswith(".bytes")) :]
    assert len(hex_block) > 10


# -- random programs -------------------------------------------------------------------


@st.composite
def weight_values(draw, fmt: WeightFormat, precision: Precision, count: int) -> np.ndarray:
    values = np.array(
        draw(st.lists(st.integers(precision.min, precision.max), min_size=count, max_size=count)),
        dtype=np.int64,
    )
    if fmt is WeightFormat.NM2_4:
        padded = np.zeros(-(-count // 4) * 4, dtype=np.int64)
        padded[:count] = values
        padded.reshape(-1, 4)[:, 2:] = 0  # at most 2 non-zeros per group of 4
        values = padded[:count]
    return values


@st.composite
def programs(draw) -> Program:
    """Programs built directly (not by the assembler): random words and placed data."""
    words = draw(
        st.lists(st.one_of(instructions().map(word), st.integers(0, (1 << 128) - 1)), max_size=12)
    )
    segments, symbols, used = [], [], set()
    addr = 0
    for _ in range(draw(st.integers(0, 6))):
        addr += draw(st.integers(0, 70))
        name = draw(names.filter(lambda n, used=used: n not in used))
        used.add(name)
        kind = draw(st.sampled_from(["data", "output", "weights", "raw", "bytes", "inner"]))
        shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
        count = int(np.prod(shape))
        if kind in ("data", "output"):
            dtype = draw(st.sampled_from(list(DType)))
            info = np.iinfo(dtype.numpy)
            nbytes = count * dtype.size
            symbols.append(Symbol(name, SymbolKind[kind.upper()], addr, nbytes, shape, dtype))
            if kind == "data" and nbytes:
                values = draw(
                    st.lists(
                        st.integers(int(info.min), int(info.max)), min_size=count, max_size=count
                    )
                )
                segments.append(Segment(addr, np.array(values, dtype.numpy).tobytes()))
        elif kind in ("weights", "raw"):
            fmt = draw(st.sampled_from(list(WeightFormat)))
            precision = draw(st.sampled_from(list(Precision)))
            if kind == "weights":
                stream = encode_weights(draw(weight_values(fmt, precision, count)), fmt, precision)
            else:
                stream = draw(st.binary(min_size=0, max_size=24))
            nbytes = len(stream)
            symbols.append(
                Symbol(
                    name, SymbolKind.WEIGHTS, addr, nbytes, shape, precision=precision, format=fmt
                )
            )
            if stream:
                segments.append(Segment(addr, stream))
        else:
            data = draw(st.binary(min_size=1, max_size=40))
            nbytes = len(data)
            segments.append(Segment(addr, data))
            if kind == "inner":  # a data symbol over part of a segment it does not own
                start = draw(st.integers(0, nbytes - 1))
                n = draw(st.integers(0, nbytes - start))
                symbols.append(Symbol(name, SymbolKind.DATA, addr + start, n, (n,), DType.I8))
        addr += nbytes
    for _ in range(draw(st.integers(0, 3))):
        name = draw(names.filter(lambda n: n not in used))
        used.add(name)
        index = draw(st.integers(0, max(len(words), 1) - 1))
        symbols.insert(draw(st.integers(0, len(symbols))), Symbol(name, SymbolKind.ENTRY, index))
    return Program(tuple(words), tuple(segments), tuple(draw(st.permutations(symbols))))


@given(programs())
@settings(max_examples=200, deadline=None)
def test_random_programs_round_trip(program):
    program.validate()
    text = assert_round_trip(program)
    assert "warning" not in text


def test_disassembly_is_plain_text_assembly():
    # The text is what docs/assembly.md describes: no tabs, one statement per line.
    text = disassemble(assemble(EVERYTHING))
    assert "\t" not in text
    assert textwrap.dedent(text) == text


@st.composite
def arbitrary_programs(draw) -> Program:
    """Programs no assembler made: odd names, sizes and shapes, overlaps, missing attributes."""
    words = draw(st.lists(st.integers(0, (1 << 128) - 1), max_size=3))
    segments = draw(
        st.lists(st.builds(Segment, st.integers(0, 300), st.binary(max_size=20)), max_size=5)
    )
    symbol = st.builds(
        Symbol,
        st.one_of(names, st.sampled_from(["enc.0.w", "if", "1x", "", "x y"])),
        st.sampled_from(list(SymbolKind)),
        st.integers(0, 300),
        st.integers(0, 30),
        st.lists(st.integers(0, 5), max_size=2).map(tuple),
        st.none() | st.sampled_from(list(DType)),
        st.none() | st.sampled_from(list(Precision)),
        st.none() | st.sampled_from(list(WeightFormat)),
    )
    return Program(tuple(words), tuple(segments), tuple(draw(st.lists(symbol, max_size=6))))


@given(arbitrary_programs())
@settings(max_examples=300, deadline=None)
def test_any_program_disassembles_and_warnings_say_what_is_lost(program):
    text = disassemble(program)
    if "warning" not in text:
        assert assemble(text).to_bytes() == program.to_bytes()
    elif "will not assemble" not in text:
        assemble(text)
