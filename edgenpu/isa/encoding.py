"""Instructions as values, and their 128-bit encoding, derived from :mod:`.spec`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from edgenpu.isa.spec import (
    HEADER,
    INSTRUCTION_BITS,
    INSTRUCTION_BYTES,
    SPECS,
    Field,
    InstructionSpec,
    Opcode,
    Stream,
)

__all__ = ["IllegalInstruction", "Instruction", "decode", "encode", "stream_of"]

_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")


# Position of each field (after the opcode) in Instruction.values, per opcode.
_FIELD_INDEX = {
    op: {f.name: i for i, f in enumerate(spec.all_fields[1:])} for op, spec in SPECS.items()
}


class IllegalInstruction(ValueError):
    """A bit pattern or field value that is not a legal instruction; the message says why."""


@dataclass(frozen=True)
class Instruction:
    """One instruction: its opcode and a value for every other field of its spec.

    Build one with :meth:`make`; read fields with ``ins["rows"]``. Enum-valued fields hold
    enum members.
    """

    opcode: Opcode
    values: tuple[int, ...]

    @property
    def spec(self) -> InstructionSpec:
        return SPECS[self.opcode]

    @classmethod
    def make(cls, opcode: Opcode, **fields: int) -> Instruction:
        """An instruction with the given fields; omitted fields are zero.

        Raises
        ------
        IllegalInstruction
            For an unknown field, a value out of range, or an illegal token flag.
        """
        spec = SPECS[opcode]
        names = [f.name for f in spec.all_fields[1:]]
        for name in fields:
            if name not in names:
                raise IllegalInstruction(
                    f"{opcode.label} has no field {name!r} (fields: {', '.join(names)})"
                )
        values = tuple(_checked(f, fields.get(f.name, 0), opcode) for f in spec.all_fields[1:])
        ins = cls(opcode, values)
        _check_flags(ins)
        return ins

    def __getitem__(self, name: str) -> Any:
        try:
            return self.values[_FIELD_INDEX[self.opcode][name]]
        except KeyError:
            raise KeyError(f"{self.opcode.label} has no field {name!r}") from None

    def fields(self) -> dict[str, int]:
        """Every field but the opcode, by name, in layout order."""
        return {f.name: v for f, v in zip(self.spec.all_fields[1:], self.values, strict=True)}

    def replace(self, **fields: int) -> Instruction:
        return Instruction.make(self.opcode, **{**self.fields(), **fields})


def stream_of(ins: Instruction) -> Stream | None:
    """The stream an instruction runs in (``None`` for HALT)."""
    if ins.opcode is Opcode.NOP:
        return ins["stream"]
    return ins.spec.stream


def _checked(f: Field, value: int, opcode: Opcode) -> int:
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise IllegalInstruction(f"{opcode.label}.{f.name}: not an integer: {value!r}")
    if f.enum is not None:
        try:
            return f.enum(value)
        except ValueError:
            raise IllegalInstruction(
                f"{opcode.label}.{f.name}: {value} is not a {f.enum.__name__}"
            ) from None
    if not f.min <= value <= f.max:
        raise IllegalInstruction(
            f"{opcode.label}.{f.name}: {value} does not fit {f.width} "
            f"{'signed ' if f.signed else ''}bits [{f.min}, {f.max}]"
        )
    return value


def _check_flags(ins: Instruction) -> None:
    stream = stream_of(ins)
    flags = {name: ins[name] for name in _FLAGS}
    if stream is None:
        bad = [n for n, v in flags.items() if v]
    else:
        bad = []
        if stream is Stream.LOAD:
            bad += [n for n in ("pop_prev", "push_prev") if flags[n]]
        if stream is Stream.STORE:
            bad += [n for n in ("pop_next", "push_next") if flags[n]]
    if bad:
        why = (
            f"has no neighbour in the {stream.label} stream"
            if stream is not None
            else "is not allowed: it belongs to no stream"
        )
        raise IllegalInstruction(f"{ins.opcode.label}: {', '.join(bad)} {why}")


def encode(ins: Instruction) -> bytes:
    """The 16-byte little-endian encoding of ``ins``."""
    word, at = 0, 0
    for f, v in zip(ins.spec.all_fields, (ins.opcode, *ins.values), strict=True):
        word |= (int(v) & ((1 << f.width) - 1)) << at
        at += f.width
    return word.to_bytes(INSTRUCTION_BYTES, "little")


def decode(data: bytes | int) -> Instruction:
    """Decode one instruction from 16 little-endian bytes (or the 128-bit integer).

    Raises
    ------
    IllegalInstruction
        Unknown opcode, a field value outside its enum, an impossible token flag, or
        non-zero reserved bits.
    """
    if isinstance(data, int):
        word = data
    else:
        if len(data) != INSTRUCTION_BYTES:
            raise IllegalInstruction(
                f"an instruction is {INSTRUCTION_BYTES} bytes, not {len(data)}"
            )
        word = int.from_bytes(data, "little")
    return _decode_word(word)


@functools.lru_cache(maxsize=4096)
def _decode_word(word: int) -> Instruction:
    """:func:`decode` of a 128-bit integer, remembered: instructions are immutable, and the
    simulators and the performance model decode the same program words again and again."""
    if not 0 <= word < 1 << INSTRUCTION_BITS:
        raise IllegalInstruction(f"not a {INSTRUCTION_BITS}-bit word: {word:#x}")
    opcode_field = HEADER[0]
    code = word & ((1 << opcode_field.width) - 1)
    try:
        opcode = Opcode(code)
    except ValueError:
        raise IllegalInstruction(f"unknown opcode {code}") from None
    spec = SPECS[opcode]
    values, at = [], 0
    for f in spec.all_fields:
        raw = (word >> at) & ((1 << f.width) - 1)
        at += f.width
        if f.signed and raw >> (f.width - 1):
            raw -= 1 << f.width
        if f is not opcode_field:
            values.append(raw)
    if word >> at:
        raise IllegalInstruction(
            f"{opcode.label}: reserved bits {at}..{INSTRUCTION_BITS - 1} are not zero"
        )
    return Instruction.make(
        opcode, **{f.name: v for f, v in zip(spec.all_fields[1:], values, strict=True)}
    )
