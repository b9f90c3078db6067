"""One instruction statement -> :class:`~edgenpu.isa.encoding.Instruction`.

``MNEMONIC key=value, ...`` with the keys of the opcode's spec, plus two shorthands: a vector
operand ``d=act.i16[0x40]`` sets ``d_kind`` and ``d_addr``, and ``wait=``/``signal=`` name the
neighbouring streams to pop from / push to, which this module turns into the header's
``pop_*``/``push_*`` flags relative to the instruction's own stream.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from edgenpu.isa.asm_expr import ExprError, evaluate
from edgenpu.isa.asm_syntax import (
    DIRECTIVES,
    TOKEN_KEYS,
    Item,
    Statement,
    neighbours,
    operand_names,
    parse_operand,
)
from edgenpu.isa.encoding import IllegalInstruction, Instruction
from edgenpu.isa.program import Symbol
from edgenpu.isa.spec import SPECS, Field, Opcode, OperandKind, Stream

__all__ = ["build_instruction", "mnemonic_error"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def mnemonic_error(statement: Statement) -> str:
    """The message for a keyword that is neither a mnemonic nor a directive."""
    word = statement.keyword
    if word.startswith("."):
        choices = list(DIRECTIVES)
        what = "directive"
    else:
        choices = [op.label for op in Opcode]
        what = "mnemonic"
    # Keywords are lower-case; compare lower-cased so that `LOAD` still finds `load`.
    close = difflib.get_close_matches(word.lower(), choices, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"expected one of {', '.join(choices)}"
    return f"unknown {what} {word!r} ({hint})"


def build_instruction(statement: Statement, symbols: Mapping[str, Symbol]) -> Instruction:
    """The instruction ``statement`` describes, with every symbol known.

    Raises
    ------
    AsmError
        Unknown mnemonic or field, a field given twice, a bad value, a token shorthand
        naming a stream that is not a neighbour, or a value the encoding rejects.
    """
    try:
        opcode = Opcode.parse(statement.keyword)
    except ValueError:
        raise statement.error(mnemonic_error(statement)) from None
    spec = SPECS[opcode]
    fields = {f.name: f for f in spec.all_fields[1:]}
    operands = operand_names(spec)
    values: dict[str, int] = {}
    given_by: dict[str, str] = {}
    tokens: list[tuple[Item, str, str]] = []
    seen: set[str] = set()

    def put(item: Item, name: str, value: int, key: str) -> None:
        if name in values:
            raise statement.error(
                f"{opcode.label}: field {name} given twice ({given_by[name]}= and {key}=)",
                item.line,
            )
        values[name], given_by[name] = value, key

    for item in statement.items():
        key, sep, text = (part.strip() for part in item.text.partition("="))
        if not sep or not key:
            raise statement.error(f"{item.text!r}: expected FIELD=VALUE", item.line)
        if "=" in text:
            raise statement.error(f"{item.text!r}: missing ',' between fields", item.line)
        if key in seen:
            raise statement.error(f"{opcode.label}: {key}= given twice", item.line)
        seen.add(key)
        if key in TOKEN_KEYS:
            tokens.append((item, key, text))
        elif key in operands:
            kind, addr = _operand(statement, item, key, text, symbols)
            put(item, f"{key}_kind", kind, key)
            put(item, f"{key}_addr", addr, key)
        elif key in fields:
            put(item, key, _field_value(statement, item, fields[key], text, symbols), key)
        else:
            shorthands = [*operands, *TOKEN_KEYS]
            raise statement.error(
                f"unknown field {key!r} for {opcode.label} (fields: {', '.join(fields)}; "
                f"shorthands: {', '.join(shorthands)})",
                item.line,
            )

    if tokens:
        stream = _own_stream(opcode, values)
        for item, key, text in tokens:
            for other in _token_streams(statement, item, opcode, stream, key, text):
                put(item, f"{TOKEN_KEYS[key]}_{neighbours(stream)[other]}", 1, key)
    try:
        return Instruction.make(opcode, **values)
    except IllegalInstruction as e:
        raise statement.error(str(e)) from None


def _value(statement: Statement, item: Item, text: str, symbols: Mapping[str, Symbol]) -> int:
    try:
        return evaluate(text, symbols)
    except ExprError as e:
        raise statement.error(str(e), item.line) from None


def _operand(
    statement: Statement, item: Item, key: str, text: str, symbols: Mapping[str, Symbol]
) -> tuple[OperandKind, int]:
    parsed = parse_operand(text)
    if parsed is None:
        kinds = ", ".join(k.label for k in OperandKind)
        raise statement.error(
            f"{key}={text}: expected a vector operand KIND[ADDR] (kinds: {kinds})", item.line
        )
    kind, addr = parsed
    return kind, _value(statement, item, addr, symbols)


def _field_value(
    statement: Statement, item: Item, f: Field, text: str, symbols: Mapping[str, Symbol]
) -> int:
    if f.enum is not None:
        for member in f.enum:
            if member.label == text:
                return member
        # A bare word that is not a symbol was meant as a label: name the choices.
        if _IDENTIFIER.match(text) and text not in symbols:
            try:
                f.enum.parse(text)
            except ValueError as e:
                raise statement.error(f"{f.name}: {e}", item.line) from None
    return _value(statement, item, text, symbols)


def _own_stream(opcode: Opcode, values: Mapping[str, int]) -> Stream | None:
    if opcode is not Opcode.NOP:
        return SPECS[opcode].stream
    try:
        return Stream(values.get("stream", 0))
    except ValueError:
        return None  # Instruction.make reports the bad stream value.


def _token_streams(
    statement: Statement,
    item: Item,
    opcode: Opcode,
    stream: Stream | None,
    key: str,
    text: str,
) -> list[Stream]:
    near = neighbours(stream)
    if not near:
        raise statement.error(
            f"{key}={text}: {opcode.label} belongs to no stream, so it has no neighbours",
            item.line,
        )
    out = []
    for name in (part.strip() for part in text.split("+")):
        try:
            other = Stream.parse(name)
        except ValueError as e:
            raise statement.error(f"{key}={text}: {e}", item.line) from None
        if other not in near:
            raise statement.error(
                f"{key}={text}: {other.label} is not a neighbour of the {stream.label} stream "
                f"(neighbours: {', '.join(s.label for s in near)})",
                item.line,
            )
        if other in out:
            raise statement.error(f"{key}={text}: {other.label} named twice", item.line)
        out.append(other)
    return out
