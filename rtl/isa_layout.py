"""Amaranth ``data`` layouts of instructions, generated from :mod:`edgenpu.isa.spec`.

The RTL decoder views a 128-bit instruction word through :data:`INSTRUCTION_LAYOUT`; units
receive their commands as :func:`command_layout` structs. No width or offset is written
here: both come from the one ISA definition.
"""

from __future__ import annotations

from amaranth import Shape, signed, unsigned
from amaranth.lib import data

from edgenpu.isa import INSTRUCTION_BITS, SPECS, Field, Opcode

__all__ = ["INSTRUCTION_LAYOUT", "command_layout", "field_shape", "instruction_layout"]


def field_shape(f: Field) -> Shape:
    """The field's shape: its exact width, signed if the ISA says so.

    Enum-valued fields stay plain unsigned numbers of the field's width (wider than the
    enum needs), because an instruction word may carry a value outside the enum; the
    decoder must see it to report the illegal instruction.
    """
    return signed(f.width) if f.signed else unsigned(f.width)


def instruction_layout(opcode: Opcode) -> data.StructLayout:
    """The whole 128-bit word of ``opcode``: header, fields, then ``reserved`` bits."""
    spec = SPECS[opcode]
    members = {f.name: field_shape(f) for f in spec.all_fields}
    members["reserved"] = unsigned(INSTRUCTION_BITS - spec.used_bits)
    layout = data.StructLayout(members)
    assert layout.size == INSTRUCTION_BITS
    return layout


#: A 128-bit instruction word viewed as any opcode's layout (``word.matmul.rows``...).
INSTRUCTION_LAYOUT = data.UnionLayout({op.label: instruction_layout(op) for op in Opcode})


def command_layout(*opcodes: Opcode) -> data.StructLayout:
    """What a unit needs to execute any of ``opcodes``: their fields (no header), by name.

    With several opcodes, an ``opcode`` member comes first and the fields are the union of
    theirs; a field name shared by several opcodes must have the same shape in each.
    """
    if not opcodes:
        raise TypeError("command_layout needs at least one opcode")
    members: dict[str, Shape] = {}
    if len(opcodes) > 1:
        members["opcode"] = field_shape(SPECS[opcodes[0]].all_fields[0])
    for op in opcodes:
        for f in SPECS[op].fields:
            shape = field_shape(f)
            if members.setdefault(f.name, shape) != shape:
                raise TypeError(f"field {f.name!r} has different shapes across {opcodes}")
    return data.StructLayout(members)
