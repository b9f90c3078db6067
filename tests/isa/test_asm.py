import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenpu.errors import AsmError
from edgenpu.formats import WeightFormat
from edgenpu.formats import encode as encode_weights
from edgenpu.isa import (
    DType,
    Instruction,
    Opcode,
    OperandKind,
    Segment,
    Space,
    Stream,
    Symbol,
    SymbolKind,
    decode,
    encode,
)
from edgenpu.isa.asm import assemble, assemble_file
from edgenpu.precision import Precision
from tests.isa.isa_strategies import instructions


def asm(text: str):
    return assemble(textwrap.dedent(text), "t.s")


def one(text: str) -> Instruction:
    (word,) = asm(text).words
    return decode(word)


def error(text: str) -> str:
    with pytest.raises(AsmError) as info:
        asm(text)
    assert info.type is AsmError
    return str(info.value)


def value_of(expr: str, prelude: str = "") -> int:
    program = asm(f"{prelude}\n.data probe: i32[1] @ 0x10000 = {expr}\n")
    (segment,) = [s for s in program.segments if s.addr == 0x10000]
    return int(np.frombuffer(segment.data, "<i4")[0])


# -- instructions ----------------------------------------------------------------------


@pytest.mark.parametrize("opcode", list(Opcode), ids=lambda op: op.label)
def test_every_mnemonic_assembles_with_fields_defaulting_to_zero(opcode):
    assert one(opcode.label) == Instruction.make(opcode)


def _raw_text(ins: Instruction, labels: bool) -> str:
    parts = []
    for name, value in ins.fields().items():
        text = value.label if labels and hasattr(value, "label") else str(int(value))
        parts.append(f"{name}={text}")
    return f"{ins.opcode.label} {', '.join(parts)}"


@given(ins=instructions(), labels=st.booleans())
@settings(max_examples=300)
def test_any_instruction_written_with_raw_fields_assembles_to_itself(ins, labels):
    assert one(_raw_text(ins, labels)) == ins


@pytest.mark.parametrize(
    ("sugar", "raw"),
    [
        ("vadd d=act.i16[0x40]", "vadd d_kind=act.i16, d_addr=0x40"),
        ("vadd d=act.i16[0x40]", "vadd d_kind=1, d_addr=64"),
        ("vmul a=acc.i32[7], b=act.i8[2 * 8]", "vmul a_kind=acc.i32, a_addr=7, b_addr=16"),
        ("vcopy d=act.i8[0]", "vcopy"),
        ("load signal=compute", "load push_next=1"),
        ("load_wgt wait=compute", "load_wgt pop_next=1"),
        ("matmul wait=load+store, signal=load", "matmul pop_prev=1, pop_next=1, push_prev=1"),
        ("vlut wait=store + load", "vlut pop_prev=1, pop_next=1"),
        ("store wait=compute, signal=compute", "store pop_prev=1, push_prev=1"),
        ("nop stream=store, signal=compute", "nop stream=2, push_prev=1"),
        ("nop wait=compute", "nop stream=load, pop_next=1"),
        ("nop stream=compute, wait=load, signal=store", "nop stream=1, pop_prev=1, push_next=1"),
    ],
)
def test_sugar_equals_raw_fields(sugar, raw):
    assert one(sugar) == one(raw)


def test_enum_labels():
    ins = one("load_wgt format=nm2_4, prec=int4")
    assert ins["format"] is WeightFormat.NM2_4
    assert ins["prec"] is Precision.INT4
    assert one("load space=lut")["space"] is Space.LUT
    assert one("nop stream=store")["stream"] is Stream.STORE
    assert one("vrelu d=acc.i32[3]")["d_kind"] is OperandKind.ACC_I32


def test_whitespace_and_comments():
    ins = one("  matmul   rows = 3 ,cols=4;comment, with=commas\n\n; only a comment\n")
    assert ins == Instruction.make(Opcode.MATMUL, rows=3, cols=4)


def test_mnemonics_are_case_sensitive():
    assert error("LOAD").startswith("t.s:1: unknown mnemonic 'LOAD' (did you mean load, ")


# -- expressions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("42", 42),
        ("-42", -42),
        ("0x7f", 127),
        ("-0x10", -16),
        ("0b101", 5),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("1 << 4", 16),
        ("256 >> 2", 64),
        ("-(3 - 5)", 2),
        ("+5", 5),
        ("1_000", 1000),
    ],
)
def test_expressions(expr, value):
    assert value_of(expr) == value


def test_symbol_values_and_attributes():
    prelude = """
        .data a: i16[3, 4] @ 0x100 = 0,0,0,0, 0,0,0,0, 0,0,0,0
        .weights w: int8 dense[5] = 1, 2, 3, 4, 5
        nop
        .entry e
        halt
    """
    assert value_of("a", prelude) == 0x100
    assert value_of("a.size", prelude) == 24
    assert value_of("a.count", prelude) == 12
    assert value_of("a.end", prelude) == 0x118
    assert value_of("w", prelude) == 0x140
    assert value_of("w.size + w.count", prelude) == 10
    assert value_of("e", prelude) == 1
    assert value_of("e.end - e + e.size", prelude) == 0


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("2 ** 3", "bad expression '2 ** 3': '2 ** 3' is not allowed"),
        ("abs(1)", "'abs(1)' is not allowed"),
        ("1.5", "1.5 is not an integer"),
        ("'a'", "'a' is not an integer"),
        ("True", "True is not an integer"),
        ("1 +", "bad expression '1 +'"),
        ("4 // 0", "division by zero in '4 // 0'"),
        ("4 % (1 - 1)", "division by zero"),
        ("1 << 1000", "shift by 1000 in '1 << 1000' (allowed: 0..256)"),
        ("a.bytes", "a.bytes: unknown symbol attribute (expected one of size, count, end)"),
        ("a[1]", "'a[1]' is not allowed"),
        ("b", "undefined symbol 'b'"),
        ("tabel", "undefined symbol 'tabel' (did you mean table?)"),
    ],
)
def test_bad_expressions(expr, fragment):
    message = error(f".data a: i8[1] = 0\n.output table: i8[1]\nmatmul rows={expr}")
    assert message.startswith("t.s:3: ")
    assert fragment in message


def test_forward_references_in_code_and_data():
    program = asm(
        """
        load space=act, dram=table, len=table.count
        .data pointers: i32[2] = table, table.end
        .data table: i8[4] @ 0x400 = 1, 2, 3, 4
        """
    )
    assert decode(program.words[0])["dram"] == 0x400
    assert decode(program.words[0])["len"] == 4
    assert Segment(0x0, np.array([0x400, 0x404], "<i4").tobytes()) in program.segments


def test_layout_values_only_see_symbols_defined_above():
    message = error(".data a: i8[1] @ b.end = 0\n.data b: i8[1] = 0")
    assert message == (
        "t.s:1: undefined symbol 'b' (layout values: addresses, shapes, .org, .align and "
        "weights may only use symbols defined above)"
    )
    program = asm(".data b: i8[2] = 0, 0\n.org b.end + 0x100\n.data a: i8[b.size] = 1, 2")
    assert program.symbol("a").addr == 0x140 and program.symbol("a").shape == (2,)


# -- errors ----------------------------------------------------------------------------


def _parse_error(enum, text: str) -> str:
    """The enum's own message for an unknown label (the assembler passes it on)."""
    with pytest.raises(ValueError) as info:
        enum.parse(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nop\nlod space=act", "t.s:2: unknown mnemonic 'lod' (did you mean load, load_wgt?)"),
        (
            "xyzzy",
            "t.s:1: unknown mnemonic 'xyzzy' (expected one of halt, nop, load, load_wgt, "
            "store, matmul, vadd, vsub, vmul, vmax, vmin, vcopy, vrelu, vclamp, vlut)",
        ),
        (".dta x: i8[1] = 1", "t.s:1: unknown directive '.dta' (did you mean .data?)"),
        (
            "load rows=1, colz=2",
            "t.s:1: unknown field 'colz' for load (fields: pop_prev, pop_next, push_prev, "
            "push_next, space, sram, dram, rows, len, stride; shorthands: wait, signal)",
        ),
        (
            "vsub q=1",
            "t.s:1: unknown field 'q' for vsub (fields: pop_prev, pop_next, push_prev, "
            "push_next, d_kind, d_addr, a_kind, a_addr, len, shift, b_kind, b_addr, period; "
            "shorthands: d, a, b, wait, signal)",
        ),
        ("matmul rows=5000", "t.s:1: matmul.rows: 5000 does not fit 12 bits [0, 4095]"),
        (
            "vclamp lo=-40000",
            "t.s:1: vclamp.lo: -40000 does not fit 16 signed bits [-32768, 32767]",
        ),
        ("vadd d_kind=3", "t.s:1: vadd.d_kind: 3 is not a OperandKind"),
        ("load space=dram", f"t.s:1: space: {_parse_error(Space, 'dram')}"),
        ("load_wgt format=rle", f"t.s:1: format: {_parse_error(WeightFormat, 'rle')}"),
        ("load dram=nowhere", "t.s:1: undefined symbol 'nowhere'"),
        ("load rows=1, rows=2", "t.s:1: load: rows= given twice"),
        ("vadd d=act.i8[0], d_addr=4", "t.s:1: vadd: field d_addr given twice (d= and d_addr=)"),
        (
            "vadd d=act.i4[0]",
            "t.s:1: d=act.i4[0]: expected a vector operand KIND[ADDR] "
            "(kinds: act.i8, act.i16, acc.i32)",
        ),
        ("load space=act rows=1", "t.s:1: 'space=act rows=1': missing ',' between fields"),
        ("load rows", "t.s:1: 'rows': expected FIELD=VALUE"),
        ("load rows=1,, len=2", "t.s:1: empty item between commas"),
        (
            "load wait=store",
            "t.s:1: wait=store: store is not a neighbour of the load stream (neighbours: compute)",
        ),
        (
            "store signal=load",
            "t.s:1: signal=load: load is not a neighbour of the store stream (neighbours: compute)",
        ),
        (
            "matmul wait=compute",
            "t.s:1: wait=compute: compute is not a neighbour of the compute "
            "stream (neighbours: load, store)",
        ),
        ("matmul wait=load+load", "t.s:1: wait=load+load: load named twice"),
        ("matmul signal=dma", f"t.s:1: signal=dma: {_parse_error(Stream, 'dma')}"),
        ("halt wait=load", "t.s:1: wait=load: halt belongs to no stream, so it has no neighbours"),
        (
            "matmul wait=load, pop_prev=1",
            "t.s:1: matmul: field pop_prev given twice (pop_prev= and wait=)",
        ),
        ("halt pop_prev=1", "t.s:1: halt: pop_prev is not allowed: it belongs to no stream"),
        (
            "nop\n.data x: i8[1] = 1\n\n.data x: i8[1] = 2",
            "t.s:4: duplicate symbol 'x' (first defined at line 2)",
        ),
        (
            ".entry main\nnop\n.entry main",
            "t.s:3: duplicate symbol 'main' (first defined at line 1)",
        ),
        (
            ".data x i8[4] = 1, 2, 3, 4",
            "t.s:1: bad .data directive 'x i8[4]' (expected "
            "'.data NAME: DTYPE[SHAPE] [@ ADDR] [= VALUES]')",
        ),
        (
            ".data 1x: i8[1] = 1",
            "t.s:1: bad symbol name '1x' (letters, digits and '_', not "
            "starting with a digit, not a Python keyword)",
        ),
        (".data if: i8[1] = 1", "t.s:1: bad symbol name 'if'"),
        (
            ".data x: i8[] = 1",
            "t.s:1: .data x: shape [] needs one or more comma-separated dimensions",
        ),
        (".data x: i8[4,] = 1", "t.s:1: .data x: shape [4,] needs one or more"),
        (".data x: u8[4] = 1", f"t.s:1: .data x: {_parse_error(DType, 'u8')}"),
        (".data x: i8[4] @ = 1", "t.s:1: .data x: missing address after '@'"),
        (".data x: i8[1] @ 0 junk = 1", "t.s:1: bad expression '0 junk'"),
        (".data x: i8[-1] = 1", "t.s:1: .data x: dimension -1 is not in [0, 2**32)"),
        (".data x: i8[4] = 1, 2, 3", "t.s:1: .data x: expected 4 values, got 3"),
        (".data x: i8[2, 2] = 1, 2,\n  3, 4, 5", "t.s:1: .data x: expected 4 values, got 5"),
        (".data x: i8[2] = 1,\n  200", "t.s:2: .data x: value 200 does not fit i8 [-128, 127]"),
        (
            ".data x: i16[1] = -32769",
            "t.s:1: .data x: value -32769 does not fit i16 [-32768, 32767]",
        ),
        (".data x: i8[1] raw = 00", "t.s:1: .data x: 'raw' is only for .weights"),
        (".output y: i32[4] = 1, 2, 3, 4", "t.s:1: .output y reserves space; it takes no values"),
        (
            ".weights w: int4 dense[2]",
            "t.s:1: .weights w needs its values ('= v, ...') or its stream ('raw = HEX')",
        ),
        (
            ".weights w: int4[2] = 1, 2",
            "t.s:1: .weights w: expected 'PREC FORMAT', got 'w: int4[2]'",
        ),
        (
            ".weights w: int2 dense[2] = 1, 2",
            f"t.s:1: .weights w: {_parse_error(Precision, 'int2')}",
        ),
        (".weights w: int4 dense[2] = 1, 2, 3", "t.s:1: .weights w: expected 2 values, got 3"),
        (
            ".weights w: int4 dense[2] = 1,\n 8",
            "t.s:2: .weights w: value 8 does not fit int4 [-8, 7]",
        ),
        (
            ".weights w: int8 nm2_4[4] = 1, 2, 3, 0",
            "t.s:1: .weights w: not 2:4 sparse: group 0 (elements 0..3) has 3 non-zeros",
        ),
        (".weights w: int8 dense[1] raw = 0g", "t.s:1: .weights: '0g' is not hex digits"),
        (".bytes abc", "t.s:1: .bytes: odd number of hex digits (3); bytes are 2 digits"),
        (".bytes 0x12", "t.s:1: .bytes: '0x12' is not hex digits"),
        (".bytes", "t.s:1: .bytes needs hex digits"),
        (
            ".data a: i8[4] = 1, 2, 3, 4\n.data b: i8[4] @ 2 = 1, 2, 3, 4",
            "t.s:2: .data b at 0x2..0x6 overlaps data placed at 0x0..0x4 by line 1",
        ),
        (
            ".data a: i8[4] = 1, 2, 3, 4\n.org 3\n.bytes 0000",
            "t.s:2: .org 0x3 goes back over data placed at 0x0..0x4 by line 1",
        ),
        (
            ".data x: i8[4] @ 0xfffffffe = 1, 2, 3, 4",
            "t.s:1: .data x at 0xfffffffe..0x100000002 does not fit the 32-bit DRAM address space",
        ),
        (
            ".output x: i8[1] @ -1",
            "t.s:1: .output x at -0x1..0x0 does not fit the 32-bit DRAM address space",
        ),
        (".org -1", "t.s:1: .org -0x1 is outside the 32-bit DRAM"),
        (".org", "t.s:1: .org needs a value"),
        (".org = 4", "t.s:1: .org takes no '='"),
        (".align 48", "t.s:1: .align 48: not a power of two"),
        (".align 0", "t.s:1: .align 0: not a power of two"),
        (
            "nop\n.entry end",
            "t.s:2: entry end at instruction 1 is outside the code (1 instructions)",
        ),
        (".entry e @ 5\nnop", "t.s:1: entry e at instruction 5 is outside the code"),
        (
            ".word 1 << 128",
            "t.s:1: .word 0x100000000000000000000000000000000 does not fit 128 bits",
        ),
        (".word -1", "t.s:1: .word -0x1 does not fit 128 bits"),
        (
            ".data x: i8[2] = 1,\n; comment only\n",
            "t.s:1: line ends with ',' but no line follows to continue it",
        ),
    ],
)
def test_errors_name_file_line_and_culprit(source, message):
    assert error(source).startswith(message)


def test_the_error_is_reported_once_without_a_chained_cause():
    with pytest.raises(AsmError) as info:
        asm("matmul rows=5000")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# -- data directives -------------------------------------------------------------------


def test_data_values_are_little_endian_by_dtype():
    program = asm(
        """
        .data a: i8[3] = -1, 2, 127
        .data b: i16[2] = -2, 0x1234
        .data c: i32[1, 1] = -0x12345678
        """
    )
    assert program.segments == (
        Segment(0x0, bytes([0xFF, 2, 127])),
        Segment(0x40, (-2).to_bytes(2, "little", signed=True) + b"\x34\x12"),
        Segment(0x80, (-0x12345678).to_bytes(4, "little", signed=True)),
    )
    assert program.symbols == (
        Symbol("a", SymbolKind.DATA, 0x0, 3, (3,), dtype=DType.I8),
        Symbol("b", SymbolKind.DATA, 0x40, 4, (2,), dtype=DType.I16),
        Symbol("c", SymbolKind.DATA, 0x80, 4, (1, 1), dtype=DType.I32),
    )


def _weights(fmt: WeightFormat, precision: Precision, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(precision.min, precision.max + 1, size=shape)
    values[rng.random(shape) < 0.5] = 0
    if fmt is WeightFormat.NM2_4:
        flat = values.reshape(-1, 4)
        flat[:, 1:3] = 0  # at most 2 of every 4
        values = flat.reshape(shape)
    return values


@pytest.mark.parametrize("fmt", list(WeightFormat), ids=lambda f: f.label)
@pytest.mark.parametrize("precision", list(Precision), ids=lambda p: p.label)
@pytest.mark.parametrize("shape", [(8, 40), (100,)])
def test_weights_match_the_format_encoder(fmt, precision, shape):
    values = _weights(fmt, precision, shape, seed=len(shape))
    dims = ", ".join(map(str, shape))
    text = f".weights w: {precision.label} {fmt.label}[{dims}] @ 0x100 = " + ",\n  ".join(
        ", ".join(str(v) for v in row) for row in values.reshape(-1, 20)
    )
    program = asm(text)
    stream = encode_weights(values, fmt, precision)
    assert program.segments == (Segment(0x100, stream),)
    assert program.symbols == (
        Symbol("w", SymbolKind.WEIGHTS, 0x100, len(stream), shape, precision=precision, format=fmt),
    )


def test_raw_weights_keep_the_exact_stream():
    # Not a canonical bitmask stream (a listed value is 0): raw takes it as it is.
    program = asm(".weights w: int8 bitmask[4] raw = 01000000, 00")
    assert program.segments == (Segment(0x0, bytes([1, 0, 0, 0, 0])),)
    assert program.symbols[0].nbytes == 5
    assert program.symbols[0].shape == (4,)
    assert program.symbols[0].format is WeightFormat.BITMASK


def test_output_and_valueless_data_reserve_without_bytes():
    program = asm(
        """
        .output y: i32[4, 2]
        .data inputs: i16[10]
        .data z: i8[1] = 5
        """
    )
    assert program.segments == (Segment(0x80, b"\x05"),)
    assert program.symbols[0] == Symbol("y", SymbolKind.OUTPUT, 0x0, 32, (4, 2), dtype=DType.I32)
    assert program.symbols[1] == Symbol("inputs", SymbolKind.DATA, 0x40, 20, (10,), DType.I16)
    # Reservations may overlap anything: that is how a buffer gets a DATA and an OUTPUT name.
    program = asm(".data s: i8[2] = 1, 2\n.output s_out: i8[2] @ s")
    assert program.symbol("s_out").addr == program.symbol("s").addr == 0


def test_placement_alignment_org_and_explicit_addresses():
    program = asm(
        """
        .data a: i8[3] = 1, 2, 3        ; 0x0
        .bytes ff ee                    ; right after a: no alignment
        .data b: i8[1] = 4              ; next 64-byte boundary
        .align 256
        .bytes 01
        .org 0x1000
        .output o: i8[100]              ; 0x1000, reserves 100
        .org 0x1010                     ; backwards, but over no placed bytes
        .bytes 0a
        .data c: i8[1] = 5              ; 0x1040
        .data d: i8[2] @ 0x2001 = 6, 7  ; exactly there
        .bytes 08                       ; 0x2003
        .weights w: int8 dense[1] = 9   ; 0x2040
        """
    )
    assert [(s.addr, s.data) for s in program.segments] == [
        (0x0, b"\x01\x02\x03"),
        (0x3, b"\xff\xee"),
        (0x40, b"\x04"),
        (0x100, b"\x01"),
        (0x1010, b"\x0a"),
        (0x1040, b"\x05"),
        (0x2001, b"\x06\x07"),
        (0x2003, b"\x08"),
        (0x2040, b"\x09"),
    ]
    assert [s.name for s in program.symbols] == ["a", "b", "o", "c", "d", "w"]


def test_one_segment_per_directive_even_when_adjacent():
    program = asm(".data a: i8[2] @ 0 = 1, 2\n.data b: i8[2] @ 2 = 3, 4\n.bytes 05")
    assert program.segments == (
        Segment(0, b"\x01\x02"),
        Segment(2, b"\x03\x04"),
        Segment(4, b"\x05"),
    )


def test_zero_sized_data_places_no_segment():
    program = asm(".data e: i8[0, 4] =\n.weights w: int4 dense[0] =\n.data f: i8[1] = 1")
    assert program.segments == (Segment(0x0, b"\x01"),)
    assert program.symbol("e").nbytes == 0 and program.symbol("w").nbytes == 0


def test_continuation_lines():
    program = asm(
        """
        .data a: i16[2, 3] = 1, 2, 3,  ; a row
            ; a comment line inside the list

            4, 5, 6
        vadd d=act.i16[0x40],
             a=act.i16[0x40],
             len=a.count
        .bytes 0102 0304,
            0506
        """
    )
    assert program.segments[0].data == np.arange(1, 7, dtype="<i2").tobytes()
    assert program.segments[1].data == bytes(range(1, 7))
    assert decode(program.words[0])["len"] == 6


def test_word_and_entries():
    program = asm(
        """
        .entry start
        nop
        .word 0xffffffffffffffffffffffffffffffff
        .entry late
        .word 2 + (3 << 9)
        .entry first @ 0
        halt
        """
    )
    assert program.words == (
        int.from_bytes(encode(Instruction.make(Opcode.NOP)), "little"),
        (1 << 128) - 1,
        2 + (3 << 9),
        0,
    )
    assert [(s.name, s.kind, s.addr) for s in program.symbols] == [
        ("start", SymbolKind.ENTRY, 0),
        ("late", SymbolKind.ENTRY, 2),
        ("first", SymbolKind.ENTRY, 0),
    ]


def test_entry_in_an_empty_program():
    assert asm(".entry main").symbols == (Symbol("main", SymbolKind.ENTRY, 0),)


def test_assemble_file_names_the_path(tmp_path):
    path = tmp_path / "k.s"
    path.write_text("nop\nmatmul rows=-1\n")
    with pytest.raises(AsmError, match=rf"^{path}:2: matmul.rows: -1 does not fit"):
        assemble_file(path)
    path.write_text("halt\n")
    assert assemble_file(str(path)).words == (0,)
    with pytest.raises(AsmError, match=r"missing\.s: cannot read"):
        assemble_file(tmp_path / "missing.s")


def test_the_examples_in_the_language_reference_assemble():
    doc = Path(__file__).resolve().parents[2] / "docs" / "assembly.md"
    blocks = re.findall(r"```asm\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        assemble(block, "docs/assembly.md")
    program = assemble(blocks[-1])
    assert [(s.name, s.addr, s.nbytes) for s in program.symbols] == [
        ("x", 0x0, 8),
        ("y", 0x40, 32),
        ("W1", 0x1000, 12),
        ("odd", 0x1040, 5),
        ("main", 0, 0),
    ]
    assert program.segments[-1] == Segment(0x1045, bytes.fromhex("deadbeef"))
