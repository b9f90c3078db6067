import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenpu.formats import WeightFormat
from edgenpu.isa import (
    INSTRUCTION_BITS,
    INSTRUCTION_BYTES,
    SPECS,
    IllegalInstruction,
    Instruction,
    Opcode,
    OperandKind,
    Space,
    Stream,
    decode,
    encode,
    stream_of,
)
from edgenpu.precision import Precision
from tests.isa.isa_strategies import instructions

UNUSED_OPCODES = sorted(set(range(32)) - {op.value for op in Opcode})


@pytest.mark.parametrize("opcode", list(Opcode), ids=lambda op: op.label)
@given(data=st.data())
@settings(max_examples=60)
def test_decode_inverts_encode(opcode, data):
    ins = data.draw(instructions(opcode))
    word = encode(ins)
    assert len(word) == INSTRUCTION_BYTES
    assert decode(word) == ins
    assert decode(int.from_bytes(word, "little")) == ins


@st.composite
def plausible_words(draw):
    """Words with a known opcode and random bits up to the spec's width: often legal."""
    op = draw(st.sampled_from(list(Opcode)))
    used = SPECS[op].used_bits
    extra = draw(st.sampled_from([0, 0, 0, 1 << draw(st.integers(used, INSTRUCTION_BITS - 1))]))
    return (draw(st.integers(0, (1 << used) - 1)) & ~0x1F) | op.value | extra


@given(st.one_of(st.integers(0, (1 << INSTRUCTION_BITS) - 1), plausible_words()))
@settings(max_examples=500)
def test_any_word_decodes_to_itself_or_is_illegal(word):
    try:
        ins = decode(word)
    except IllegalInstruction:
        return
    assert int.from_bytes(encode(ins), "little") == word


def test_field_layout_known_answer():
    # Pins the layout that docs/isa.md, the RTL and the simulators read: opcode in bits 4:0,
    # flags in 8:5, then the fields upwards in spec order.
    ins = Instruction.make(
        Opcode.LOAD,
        push_next=1,
        space=Space.ACT,
        sram=3,
        dram=0x12345678,
        rows=2,
        len=5,
        stride=7,
    )
    expected = 2 | 1 << 8 | 1 << 9 | 3 << 11 | 0x12345678 << 31 | 2 << 63 | 5 << 75 | 7 << 91
    assert int.from_bytes(encode(ins), "little") == expected


def test_signed_fields_sign_extend():
    ins = Instruction.make(Opcode.VCLAMP, lo=-32768, hi=-1)
    assert decode(encode(ins))["lo"] == -32768
    assert decode(encode(ins))["hi"] == -1


@pytest.mark.parametrize("opcode", [op for op in Opcode if SPECS[op].used_bits < 128])
def test_reserved_bits_are_illegal(opcode):
    used = SPECS[opcode].used_bits
    word = int.from_bytes(encode(Instruction.make(opcode)), "little") | 1 << (INSTRUCTION_BITS - 1)
    with pytest.raises(IllegalInstruction) as info:
        decode(word)
    assert str(info.value) == f"{opcode.label}: reserved bits {used}..127 are not zero"


@pytest.mark.parametrize("code", UNUSED_OPCODES)
def test_unknown_opcode_is_illegal(code):
    with pytest.raises(IllegalInstruction, match=rf"^unknown opcode {code}$"):
        decode(code)


@pytest.mark.parametrize(
    ("opcode", "field", "enum"),
    [
        (Opcode.VADD, "d_kind", OperandKind),
        (Opcode.VLUT, "a_kind", OperandKind),
        (Opcode.LOAD_WGT, "format", WeightFormat),
        (Opcode.NOP, "stream", Stream),
    ],
)
def test_value_outside_enum_is_illegal(opcode, field, enum):
    spec = SPECS[opcode]
    f = next(f for f in spec.fields if f.name == field)
    bad = max(enum) + 1
    assert bad < 1 << f.width  # the encoding has room for the bad value
    word = opcode.value | bad << spec.offsets()[field]
    with pytest.raises(IllegalInstruction) as info:
        decode(word)
    assert str(info.value) == f"{opcode.label}.{field}: {bad} is not a {enum.__name__}"


@pytest.mark.parametrize(
    ("opcode", "fields", "flag", "where"),
    [
        (Opcode.LOAD, {}, "pop_prev", "has no neighbour in the load stream"),
        (Opcode.LOAD_WGT, {}, "push_prev", "has no neighbour in the load stream"),
        (Opcode.STORE, {}, "pop_next", "has no neighbour in the store stream"),
        (Opcode.STORE, {}, "push_next", "has no neighbour in the store stream"),
        (Opcode.NOP, {"stream": Stream.LOAD}, "push_prev", "has no neighbour in the load stream"),
        (Opcode.NOP, {"stream": Stream.STORE}, "pop_next", "has no neighbour in the store stream"),
        (Opcode.HALT, {}, "pop_next", "is not allowed: it belongs to no stream"),
    ],
)
def test_token_flag_without_neighbour_is_illegal(opcode, fields, flag, where):
    spec = SPECS[opcode]
    base = int.from_bytes(encode(Instruction.make(opcode, **fields)), "little")
    message = f"{opcode.label}: {flag} {where}"
    with pytest.raises(IllegalInstruction) as info:
        decode(base | 1 << spec.offsets()[flag])
    assert str(info.value) == message
    with pytest.raises(IllegalInstruction) as info:
        Instruction.make(opcode, **fields, **{flag: 1})
    assert str(info.value) == message


def test_make_range_checks_name_field_value_and_range():
    with pytest.raises(IllegalInstruction) as info:
        Instruction.make(Opcode.MATMUL, rows=4096)
    assert str(info.value) == "matmul.rows: 4096 does not fit 12 bits [0, 4095]"
    with pytest.raises(IllegalInstruction) as info:
        Instruction.make(Opcode.VCLAMP, lo=40000)
    assert str(info.value) == "vclamp.lo: 40000 does not fit 16 signed bits [-32768, 32767]"


def test_make_rejects_unknown_field():
    with pytest.raises(IllegalInstruction, match=r"^halt has no field 'rows' \(fields: "):
        Instruction.make(Opcode.HALT, rows=1)


def test_decode_rejects_wrong_length_and_width():
    with pytest.raises(IllegalInstruction, match="an instruction is 16 bytes, not 15"):
        decode(bytes(15))
    with pytest.raises(IllegalInstruction, match="not a 128-bit word"):
        decode(1 << 128)


def test_enum_fields_decode_to_members():
    ins = decode(encode(Instruction.make(Opcode.LOAD_WGT, format=1, prec=1)))
    assert ins["format"] is WeightFormat.BITMASK
    assert ins["prec"] is Precision.INT4


@pytest.mark.parametrize(
    ("ins", "stream"),
    [
        (Instruction.make(Opcode.HALT), None),
        (Instruction.make(Opcode.NOP, stream=Stream.STORE), Stream.STORE),
        (Instruction.make(Opcode.LOAD_WGT), Stream.LOAD),
        (Instruction.make(Opcode.VLUT), Stream.COMPUTE),
    ],
)
def test_stream_of(ins, stream):
    assert stream_of(ins) is stream
